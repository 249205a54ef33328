// A new configuration for a running supervisor (HUP with several pools, DESIGN.md §7a): pools
// are matched by name. Pure, as the supervisor is.
#pragma once

#include <herd/core/supervisor.hpp>

#include <string>
#include <vector>

namespace herd {

/// One pool as a configuration gives it.
struct PoolConfig {
    std::string name;
    Options options;
    Supervision supervision;
    std::string program;   // what its workers run: a new one replaces them, as new options do
};

/// What reconfigure() did, by pool index (indices as they are after the call).
struct Reconfigured {
    std::vector<std::size_t> added;       // new names: each starts once every pool ahead of it is ready
    std::vector<std::size_t> removed;     // names no longer given: stopping gracefully
    std::vector<std::size_t> changed;     // other options or program (workers replaced rolling), or supervision
    std::vector<std::size_t> unchanged;   // every worker kept
};

/// Fold a configuration in. A new pool joins at the end of the order (its place in the file
/// counts from the next start); a removed pool stops gracefully and stays, stopped, until
/// the shell forgets it (is_gone); a changed pool takes its new options, supervision and size, and
/// rolls as a reload does when its options changed (a stopped one only takes them); a pool given
/// again after it was removed starts again.
Reconfigured reconfigure(Supervisor& supervisor, const std::vector<PoolConfig>& pools, TimePoint now);

/// Is this pool one a configuration removed, now stopped with no worker left?
bool is_gone(const Pool& pool);

/// Is a reload that added these pools (by name) complete? No pool rolls for a reload, and each
/// added pool is past starting: ready, or stopped, failed or removed since.
bool reload_complete(const Supervisor& supervisor, const std::vector<std::string>& added);

/// The pool a new one starts after: the last one ahead of it that no configuration removed.
std::optional<std::size_t> started_after(const Supervisor& supervisor, std::size_t pool);

}  // namespace herd
