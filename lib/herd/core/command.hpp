// What an operator asks of the manager, by a signal (DESIGN.md §3) or through the control socket
// (§6): one word and one type for both. A signal is a request without a client and without a
// pool; the manager acts on both the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herd {

enum class Command {
    status,        // control socket only
    scale,         // TTIN (+1) and TTOU (-1) scale the first pool; `scale [POOL] N`
    reload,        // HUP
    upgrade,       // USR2
    stop,          // QUIT (graceful), TERM and INT (fast); `stop [POOL]`
    restart,       // a pool, rolling
    start,         // a stopped pool
    plan,          // show or change a pool's restart plan
    reopen_logs,   // USR1 (signal only)
};

/// The control protocol's name: "status", "scale", ... ("reopen-logs" for USR1's).
std::string_view to_string(Command command);
/// A command the control protocol takes by name (every one but reopen_logs).
std::optional<Command> command_from(std::string_view name);

/// One request: the command and what it says.
struct Request {
    Command command = Command::status;
    std::optional<unsigned> workers = std::nullopt;   // scale: exact target
    int delta = 0;                                    // scale: relative
    bool graceful = true;                             // stop
    std::optional<std::string> pool = std::nullopt;   // status, scale, stop: that pool only; restart, start, plan: always
    std::optional<std::string> plan = std::nullopt;   // plan: the new plan as the config file writes it
    friend bool operator==(const Request&, const Request&) = default;
};

}  // namespace herd
