// The pools of a command line and its config file (DESIGN.md §7a): one pool `main` without
// [pool.NAME] sections, exactly as one pool always was; else one pool per [pool.NAME] section, in
// file order.
//
//     workers = 2                  # the top: every pool's defaults (the command line wins here)
//     restart-strategy = rest      # manager-wide options only at the top
//     [pool]                       # every pool's defaults, over the command line and the top
//     graceful-timeout = 10s
//     [pool.web]                   # one pool, over all of the above
//     command = app --port 0       # or `worker = web` (a Worker type of this binary)
//     listen = :8080               # a repeated option set here replaces what the pool inherited
//
// Every error is one line naming the file, the line and the key (UsageError, exit code 2).
#pragma once

#include <herd/config/config_file.hpp>
#include <herd/config/options.hpp>

#include <string>
#include <vector>

namespace herd {

/// What the pools start from besides CommandLine::options (the command line and the file's top).
struct PoolDefaults {
    Supervision supervision;                // restart, plan, ... of the command line and the file's top
    std::vector<std::string> app_options;   // the application's own options: the whole binary's, top only
    std::string plan_count_at;              // where plan-count was given: "" (command line) or "config file F, line N: "
};

/// Why `key` may not stand at the top of the config file, or "" (it may, or it is unknown there):
/// `command` and `worker` are one pool's; exec mode's own options are a server binary's exec pools'.
std::string misplaced_at_top(const std::string& key, bool exec);

/// What a pool's workers run, in one line: its command (each argument quoted where needed) or
/// `worker NAME`. Two pools run the same program when these are equal.
std::string program_of(const PoolSpec& pool);

/// Fill cl.pools from `file`'s sections (null: no --config); without [pool.NAME] sections, the one
/// pool `main` whose options, [pool] applied, become cl.options too. Named pools are validated
/// (messages start with "pool NAME: "); `main` is left to validate(cl.options) as before.
/// Throws UsageError.
void add_pools(CommandLine& cl, const ConfigFile* file, const PoolDefaults& defaults, const OptionsExtension& ext);

}  // namespace herd
