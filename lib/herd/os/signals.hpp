// Signals become data: the table from signal to the request it makes of the manager (DESIGN.md
// §3), the same requests the control socket takes. The manager reads them from a signalfd;
// nothing runs in a signal handler.
#pragma once

#include <herd/core/command.hpp>

#include <optional>
#include <string>
#include <vector>

namespace herd {

/// The request a signal makes (nullopt: none; SIGCHLD asks the manager to reap, which is no request).
std::optional<Request> request_for(int signal);

/// Every signal the manager handles.
std::vector<int> manager_signals();

/// "TTIN", "QUIT", ... (without the SIG prefix).
std::string signal_name(int signal);

}  // namespace herd
