// Options: the command line every herd server has (DESIGN.md §2), parsed with
// Boost.Program_options from argv and an INI-style config file (the command line wins).
//
// Every value is kept as text by Program_options and converted here, so that a bad value
// is reported as one line naming the option and the value (UsageError, exit code 2).
#pragma once

#include <herd/core/supervision.hpp>
#include <herd/export.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace boost::program_options {
class options_description;
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

/// Every option of DESIGN.md §2, with its default.
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
    // Exec mode only (herd -- COMMAND; see exec_defaults()):
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

/// A malformed option, value or config file: one line naming it; exit code 2.
class HERD_API UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What an application adds to the standard command line.
struct OptionsExtension {
    std::string program;      // shown in --help and --version
    std::string version;      // shown in --version
    std::string usage;        // first line of --help, e.g. "hello-http [options]"
    std::function<void(boost::program_options::options_description&)> add_options;
    bool accepts_command = false;   // exec mode: `-- COMMAND [ARGS...]`, --ready-after and --stop-signal
    Options defaults;               // what an option not given is (exec mode: exec_defaults())
    std::vector<std::string> worker_types;   // what `worker = NAME` may name; empty: any (checked later)
};

/// The defaults of exec mode: --ready-after 1s, --stop-signal TERM (a program may not know QUIT),
/// --heartbeat auto (a program may know nothing of herd), --stderr-level info (a program's
/// stderr is often all it writes).
HERD_API Options exec_defaults();

/// One pool of workers (DESIGN.md §7a): a `[pool.NAME]` section of the config file, or the one
/// pool `main` of a command line and a config file without one.
struct PoolSpec {
    std::string name;
    Options options;                    // the command line and the file's top, then [pool], then [pool.NAME]
    std::vector<std::string> command;   // an exec pool's program and arguments; empty for a Worker type's pool
    std::string worker;                 // a Worker type's name; empty for an exec pool and for `main`
    Supervision supervision;
    int line = 0;                       // where its section begins; 0: the command line made it
    friend bool operator==(const PoolSpec&, const PoolSpec&) = default;
};

/// The outcome of parsing a command line.
struct CommandLine {
    Options options;                    // the one pool's without [pool.NAME] sections; the defaults of every pool with them
    bool help = false;
    bool version = false;
    std::string help_text;
    std::vector<std::string> command;   // exec mode: what follows `--`
    Strategy strategy = Strategy::one;  // --restart-strategy
    std::vector<PoolSpec> pools;        // in file order; at least one (`main`) unless help or version was asked for
    std::vector<std::string> argv;      // the original arguments, argv[0] included
    std::shared_ptr<boost::program_options::variables_map> app_args;   // every option, the application's too
};

/// Parse argv (and --config FILE); throws UsageError naming the option and the value.
HERD_API CommandLine parse_command_line(int argc, const char* const argv[], const OptionsExtension& ext = {});

/// Check relations between options (e.g. heartbeat interval below the timeout); throws UsageError.
HERD_API void validate(const Options& options);

/// "250ms", "2s", "1.5s", "3m", "1h" or a bare number of seconds; throws std::invalid_argument.
HERD_API Duration parse_duration(std::string_view text);

/// "TERM", "SIGTERM", "term" or a number: a signal that ends a process by default; throws
/// std::invalid_argument.
HERD_API int parse_signal(std::string_view text);

/// "required", "auto" or "off"; throws std::invalid_argument.
HeartbeatMode parse_heartbeat_mode(std::string_view text);
std::string to_string(HeartbeatMode mode);

/// "10/10s": a count and a window; throws std::invalid_argument.
HERD_API RestartLimit parse_restart_limit(std::string_view text);

/// "512M", "2G", "1.5G", "100K" (binary units, K = 1024) or a bare number of bytes; throws
/// std::invalid_argument.
HERD_API std::uint64_t parse_size(std::string_view text);

/// A size the way log lines show it: "512 MiB", "1.5 GiB", "800 B".
HERD_API std::string format_size(std::uint64_t bytes);

/// A duration the way log lines and status show it: "250 ms" below a second, "1.5 s", "90 s", "3600 s" from there.
HERD_API std::string format_duration(Duration d);

}  // namespace herd
