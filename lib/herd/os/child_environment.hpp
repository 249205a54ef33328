// A program's environment in exec mode: the manager's, less what is the manager's own, plus what
// tells the program its sockets (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, the systemd way), its
// heartbeat pipe, slot, generation and pool (HERD_POOL). Built in the manager before fork; only LISTEN_PID's digits
// are written in the child (exec_ops.cpp), into room reserved here.
#pragma once

#include <herd/worker/worker.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// LISTEN_PID's entry is this prefix and `pid_digits` blanks, for the child to write its pid over.
constexpr std::string_view listen_pid_prefix = "LISTEN_PID=";
constexpr std::size_t pid_digits = 20;

/// A program's environment: the manager's, less what is the manager's own, plus what tells the
/// program its sockets, heartbeat pipe, slot, generation and pool.
struct ChildEnvironment {
    std::vector<std::string> vars;                // "KEY=VALUE"
    std::size_t listen_pid = std::string::npos;   // LISTEN_PID's entry: the pid is written in the child
};
ChildEnvironment child_environment(const char* const* parent, const std::vector<Listener>& listeners,
                                   int heartbeat_fd, int slot, unsigned generation, std::string_view pool);

/// In a forked worker: forget the variables that are the manager's own (NOTIFY_SOCKET,
/// WATCHDOG_USEC, WATCHDOG_PID), which exec mode never passes on either: a worker (or a library in
/// it) that talked to systemd would announce itself as the service.
void forget_manager_variables() noexcept;

/// A listener's name in LISTEN_FDNAMES: systemd's own name for a socket herd adopted, else the
/// address as given with every ':' (the list's separator) made '_': "127.0.0.1_8080".
std::string fd_name(const Listener& listener);

}  // namespace herd
