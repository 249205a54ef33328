// The standard options (DESIGN.md §2) as a table: one row per option, with its scope (the
// manager's or a pool's, DESIGN.md §7a), what --help shows and the setter that converts the text
// Program_options keeps into a field of Options.
// options.cpp builds the Program_options descriptions, the help text and the conversions from it.
#pragma once

#include <herd/config/options.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// How an option takes its value: once, any number of times (--listen), or none (--daemon).
enum class OptionKind { value, repeated, flag };

/// Where an option's value applies once one manager runs several pools (DESIGN.md §7a); with
/// one pool, as today, both scopes are set the same way.
enum class OptionScope {
    manager,   // the whole manager: the command line or the top of the config file
    pool,      // each pool: the command line and the top of the file give every pool's default,
               // [pool] and [pool.NAME] override it
};

/// One standard option.
struct OptionSpec {
    OptionScope scope;        // first, so that no row can leave it out
    const char* group;        // its heading in --help
    const char* names;        // Program_options style: "workers,w"
    const char* param;        // shown in --help: "N", "D", "PATH"
    std::string help;         // without the default
    std::string default_text; // empty: none shown
    OptionKind kind;
    void (*set)(Options&, const std::string&);   // throws std::invalid_argument; null: nothing to set
    bool command_line_only = false;
    bool exec_only = false;   // exec mode (herd -- COMMAND) only; in a server binary, its exec pools' only
    void (*supervise)(Supervision&, const std::string&) = nullptr;   // a pool's supervision (restart, plan, ...)
};

/// The levels --log-level takes, from the most to the least verbose.
inline constexpr std::string_view log_levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

/// "trace, debug, ..., off".
std::string join_levels();

/// "workers" for "workers,w".
std::string long_name(const OptionSpec& spec);

/// The options of this mode (`exec`: herd -- COMMAND), in --help order, `d` giving the defaults
/// shown in --help.
std::vector<OptionSpec> standard_specs(const Options& d, bool exec);

}  // namespace herd
