// USR2's pre-flight check in flight: the new binary run with --check, its stderr and a time bound.
// Internal to the manager (manager.cpp owns it, manager_rollout.cpp runs it).
#pragma once

#include <herd/manager.hpp>

#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>

namespace herd {

/// The new binary must accept our arguments and our hand-over version.
struct Manager::Preflight {
    explicit Preflight(boost::asio::io_context& io) : err(io), timer(io) {}
    boost::asio::readable_pipe err;
    boost::asio::steady_timer timer;
    std::unique_ptr<boost::process::v2::process> process;
    std::array<char, 1024> buffer{};
    std::string output;
    std::optional<int> exit_code;
    bool output_done = false;
    bool timed_out = false;
};

}  // namespace herd
