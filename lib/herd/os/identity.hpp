// --user and --group: resolved in the manager at start (and on HUP), taken on by each worker in
// the child before any code of the application (fork mode) or the exec of the program (exec mode).
#pragma once

#include <herd/config/options.hpp>

#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace herd {

/// Who a worker runs as: nothing to change when neither --user nor --group is given.
struct Identity {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::vector<gid_t> groups;   // --user's supplementary groups
    bool supplementary = false;  // set `groups` (else, with a gid, clear them)
};

/// Look --user and --group up; a name that does not exist is a UsageError (exit 2), not a crash
/// loop of workers.
Identity resolve_identity(const Options& options);

/// Become `identity` in a child: supplementary groups, group, user, in that order; returns 0 or
/// the errno of the step that failed. Async-signal-safe (exec mode calls it between fork and
/// exec). Setting groups is allowed to fail with EPERM (not root): setgid then decides.
int take_identity(const Identity& identity) noexcept;

}  // namespace herd
