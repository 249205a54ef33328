// One connection to the control socket (control_server.hpp): its socket, the bytes read and
// the answer being written, its stage and since when, its run of bad requests and its warnings'
// budget. Shared by the server's accept loop and deadlines (control_server.cpp) and a
// connection's reading and answering (control_session.cpp).
#pragma once

#include <herd/manager/control_server.hpp>

#include <boost/asio/local/stream_protocol.hpp>

#include <array>
#include <cstdint>
#include <string>

namespace herd::control {

struct Server::Session {
    Session(std::uint64_t i, boost::asio::local::stream_protocol::socket s, TimePoint now) : id(i), socket(std::move(s)), since(now) {}
    std::uint64_t id;
    boost::asio::local::stream_protocol::socket socket;
    std::array<char, 4096> chunk{};
    std::string input;            // bytes read and not yet handled: part of a line, or lines in a row
    std::string output;           // the answer being written
    Peer peer;
    Stage stage = Stage::idle;
    TimePoint since;              // in this stage since then
    bool reading = false;         // a read is under way
    unsigned bad_in_row = 0;      // bad requests since the last good one
    LogBudget budget{2, std::chrono::seconds(1)};   // this connection's bad-request warnings
};

}  // namespace herd::control
