// An asio acceptor for an inherited listener (herd::Worker::listeners()), TCP (v4, v6) and unix
// sockets alike, so that `-l 127.0.0.1:8080` and `-l unix:/run/app.sock` are served by the same
// code:
//
//     for (const herd::Listener& l : listeners())
//         accept(acceptors_.emplace_back(herd::make_acceptor(io_, l)));   // std::deque<herd::Acceptor>
//     ...
//     acceptor.async_accept([](boost::system::error_code ec, herd::Acceptor::protocol_type::socket s) {...});
//
// The acceptor owns the descriptor: closing it (in on_stop()) is how the worker stops listening.
#pragma once

#include <herd/worker.hpp>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

namespace herd {

/// Stream sockets of any family: what an inherited listener is.
using StreamProtocol = boost::asio::generic::stream_protocol;
using Acceptor = boost::asio::basic_socket_acceptor<StreamProtocol>;

/// An acceptor on `listener.fd`, which it takes over; throws boost::system::system_error.
inline Acceptor make_acceptor(boost::asio::io_context& io, const Listener& listener)
{
    switch (listener.family) {
    case ListenerFamily::ipv4: return Acceptor(io, StreamProtocol(AF_INET, IPPROTO_TCP), listener.fd);
    case ListenerFamily::ipv6: return Acceptor(io, StreamProtocol(AF_INET6, IPPROTO_TCP), listener.fd);
    case ListenerFamily::unix_socket: break;
    }
    return Acceptor(io, StreamProtocol(AF_UNIX, 0), listener.fd);
}

}  // namespace herd
