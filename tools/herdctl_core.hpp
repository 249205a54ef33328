// herdctl's pure core: the command line, the request line, and what to print for the answer.
//
// The manager's control socket (DESIGN.md §6) speaks one JSON object per line each way:
// herdctl sends one request, reads one answer and turns it into text and an exit code.
//
//   status, ready, metrics   {"command":"status"}                -> {"ok":true,"manager":{...},"workers":[...],"pools":[...]}
//   scale 8 | +2 | -1        {"command":"scale","workers":8}     -> {"ok":true,"target":8,"ready":8}
//                            {"command":"scale","delta":-1}
//   reload, upgrade          {"command":"reload"}                -> {"ok":true,"kind":"reload","generation":3,"took_ms":120.5}
//   stop [--now]             {"command":"stop","graceful":true}  -> {"ok":true,"exit_code":0}, then EOF
//   any failure                                                  -> {"ok":false,"error":"one sentence"}
//
// Several pools (DESIGN.md §7a): status, ready, metrics and stop take a POOL, scale POOL N adds
// "pool":"web" to the request; restart POOL, start POOL and plan POOL ["restart, wait"] answer
//   {"ok":true,"pool":"web","stage":"running","generation":3,"target":8,"ready":8} (stop POOL, scale POOL too)
//   {"ok":true,"pool":"web","restart":"transient","plan":{...}|null,...}         (plan)
//
// Nothing here does I/O: tools/herdctl.cpp connects, waits for the answer and prints.
// herdctl_request.cpp holds the command line and the connect diagnosis, herdctl_answer.cpp what to print
// for an answer, herdctl_metrics.cpp the OpenMetrics rendering; herdctl_fields.hpp reads the answer's fields.
#pragma once

#include <herd/config/options.hpp>

#include <boost/json/fwd.hpp>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herdctl {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

enum class Command { status, scale, reload, upgrade, stop, ready, metrics, restart, start, plan };

/// One run of herdctl: where to connect, what to send, how to show the answer.
struct Request {
    Command command = Command::status;
    std::string control;        // the manager's control socket
    bool json = false;          // print the answer as it came, on one line
    herd::Duration timeout{};   // for the whole exchange; 0: wait forever
    std::string line;           // the request: one JSON object and '\n'
    std::string pool;           // the pool it names; empty: the whole manager (or its only pool)
};

/// --help or --version: text for stdout, exit 0.
struct Info {
    std::string text;
};

/// What herdctl prints and how it exits.
struct Outcome {
    int exit_code = exit_ok;
    std::string out;   // for stdout
    std::string err;   // for stderr: empty, or one line starting with "herdctl: "
};

/// The arguments after argv[0]; `env_control` is $HERD_CONTROL ("" if unset). Throws herd::UsageError.
std::variant<Request, Info> parse_command_line(const std::vector<std::string>& args, std::string_view env_control);

/// The command's name on herdctl's command line ("reload").
std::string_view command_name(Command command);

/// The `scale` argument as request fields: "8" is {"workers":8}, "+2" and "-1" are {"delta":K}; throws herd::UsageError.
boost::json::object parse_scale(std::string_view text);

/// The manager's answer line for `request`: what to print and the exit code (a malformed answer fails).
Outcome interpret(const Request& request, std::string_view answer_line);

/// The status answer as a manager summary and a table of workers.
std::string render_status(const boost::json::object& answer);

/// The status answer as OpenMetrics text, ending with "# EOF".
std::string render_metrics(const boost::json::object& answer);

/// The one line that reports a finished scale, reload, upgrade, stop, restart or start, or a pool's plan.
std::string render_done(Command command, const boost::json::object& answer);

/// `ready`: whether the pool is at its target, and the line that says so ("not ready: 3 of 4 workers ready").
struct Readiness {
    bool ready = false;
    std::string line;
};
Readiness readiness(const boost::json::object& answer);

/// A duration for people: "40ms", "0.3s", "5s", "42s", "5m 3s", "1h 2m", "2d 3h".
std::string human_duration(double seconds);

/// An OpenMetrics label value: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);

/// What is at the control path when a connect to it failed (from stat(2), gathered by the shell).
enum class FileType { none, socket, regular, directory, fifo, device, other };
struct PathFacts {
    FileType type = FileType::none;   // none: stat failed with stat_error
    int stat_error = 0;
    unsigned uid = 0;                 // owner and permission bits, when stat worked
    unsigned mode = 0;
    bool parent_exists = true;        // the directory the path names exists
};

/// Why a connect to `path` failed with `error` (errno), said for an operator: a missing path, a file
/// that is no socket (naming what it is), a permission error, a socket with no manager behind it.
std::string connect_failure(std::string_view path, int error, const PathFacts& facts);

/// The one line herdctl prints on stderr for an error: "herdctl: <message>\n".
std::string error_line(std::string_view message);

}  // namespace herdctl
