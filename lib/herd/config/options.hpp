// Options: the command line every herd server has (DESIGN.md §2), parsed with
// Boost.Program_options from argv and an INI-style config file (the command line wins). The
// values themselves (herd::Options) are public, in <herd/options.hpp>; parsing is herd's own.
//
// Every value is kept as text by Program_options and converted here, so that a bad value
// is reported as one line naming the option and the value (UsageError, exit code 2).
#pragma once

#include <herd/core/supervision.hpp>
#include <herd/options.hpp>

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
Options exec_defaults();

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
CommandLine parse_command_line(int argc, const char* const argv[], const OptionsExtension& ext = {});

/// Check relations between options (e.g. heartbeat interval below the timeout); throws UsageError.
void validate(const Options& options);

/// "250ms", "2s", "1.5s", "3m", "1h" or a bare number of seconds; throws std::invalid_argument.
Duration parse_duration(std::string_view text);

/// "TERM", "SIGTERM", "term" or a number: a signal that ends a process by default; throws
/// std::invalid_argument.
int parse_signal(std::string_view text);

/// "required", "auto" or "off"; throws std::invalid_argument.
HeartbeatMode parse_heartbeat_mode(std::string_view text);
std::string to_string(HeartbeatMode mode);

/// "10/10s": a count and a window; throws std::invalid_argument.
RestartLimit parse_restart_limit(std::string_view text);

/// "512M", "2G", "1.5G", "100K" (binary units, K = 1024) or a bare number of bytes; throws
/// std::invalid_argument.
std::uint64_t parse_size(std::string_view text);

/// A size the way log lines show it: "512 MiB", "1.5 GiB", "800 B".
std::string format_size(std::uint64_t bytes);


}  // namespace herd
