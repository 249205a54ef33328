// herd::Options: the values of the standard options a server runs with, as a Worker (options())
// or a hook reads them. Parsing the command line and the config file is herd's own business; an
// application adds options of its own with <herd/option_types.hpp> and reads them with args().
#pragma once

#include <herd/export.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace boost::program_options {
class variables_map;
}

namespace herd {

using Duration = std::chrono::milliseconds;

/// More than `count` unexpected worker exits within `window` make the manager back off.
struct RestartLimit {
    unsigned count = 10;
    Duration window = std::chrono::seconds(10);
    friend bool operator==(const RestartLimit&, const RestartLimit&) = default;
};

/// Exec mode's --heartbeat: when a program's silence gets it retired (--heartbeat-timeout).
enum class HeartbeatMode {
    required,   // always: ready at the first record only, killed at --boot-timeout without one (herd::Worker)
    automatic,  // "auto": from the program's first record on; ready at it or after --ready-after
    off,        // never: ready after --ready-after (or at a first record), never retired for silence
};

/// Every option as parsed, the application's too, for Worker::args(). Options compare by herd's
/// own values: two parses of the same text are equal.
struct AppArgs {
    std::shared_ptr<const boost::program_options::variables_map> map;
    friend bool operator==(const AppArgs&, const AppArgs&) { return true; }
};

/// Every standard option (docs/reference.md, "Options"), with its default: what Worker::options() gives a
/// worker and the values a pool runs with. A plain struct of values, read-only to an application;
/// herd fills it from the command line and the config file.
struct Options {
    unsigned workers = 4;
    std::vector<std::string> listen;
    Duration heartbeat_interval = std::chrono::seconds(1);
    Duration heartbeat_timeout = std::chrono::seconds(10);   // 0: heartbeats are not watched
    Duration boot_timeout = std::chrono::seconds(30);
    Duration graceful_timeout = std::chrono::seconds(30);
    Duration kill_timeout = std::chrono::seconds(5);
    Duration max_worker_age{0};                               // 0: off
    double max_worker_age_jitter = 0.10;                      // fraction of max_worker_age
    std::uint64_t max_requests = 0;                           // 0: off
    std::uint64_t max_requests_jitter = 0;
    std::uint64_t max_worker_memory = 0;                      // bytes of a worker's own memory; 0: off
    Duration max_worker_memory_window = std::chrono::seconds(10);   // ... it may stay over that for this long
    unsigned spare = 1;
    RestartLimit restart_limit;
    Duration upgrade_timeout = std::chrono::seconds(60);
    // Exec mode only (herd -- COMMAND):
    std::optional<Duration> ready_after;                      // unless heartbeats are required: ready after running this long
    int stop_signal = SIGQUIT;                                // asks a worker to finish and exit (retire, graceful stop)
    HeartbeatMode heartbeat = HeartbeatMode::required;        // --heartbeat-timeout 0 is `off` in every mode
    std::string pid_file;
    std::string control;
    std::string log_level = "info";
    std::string log_file;
    std::string stdout_level = "info";                        // a worker's stdout lines are logged at this level
    std::string stderr_level = "warn";                        // ... its stderr lines at this one (exec mode: info)
    std::string user;
    std::string group;
    std::string name;                                         // empty: the binary's name
    std::string config;
    bool daemon = false;
    bool check = false;
    unsigned adopt_check = 0;                                 // with --check: hand-over version to confirm
    AppArgs app_args;                                         // what Worker::args() gives; a reload brings new ones

    friend bool operator==(const Options&, const Options&) = default;
};

/// A malformed option, value or config file: one line naming it; exit code 2. A notifier of an
/// application's option may throw it for a message of its own (InvalidOptionValue adds the name).
class HERD_API UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A duration the way herd's log lines and status show it: "250 ms" below a second, "1.5 s",
/// "90 s", "3600 s" from there (an application's log lines can match them).
HERD_API std::string format_duration(Duration d);

}  // namespace herd
