// Signals become data: the table from signal to manager command (DESIGN.md §3).
// The manager waits on them with asio's signal_set; handlers only record, the loop acts.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace herd {

enum class Command { fast_stop, graceful_stop, scale_up, scale_down, reopen_logs, reload, upgrade, reap };

/// What the manager does on a signal (nullopt: nothing).
std::optional<Command> command_for(int signal);

/// Every signal the manager handles.
std::vector<int> manager_signals();

/// "TTIN", "QUIT", ... (without the SIG prefix).
std::string signal_name(int signal);

}  // namespace herd
