// The supervisor's state: where each pool stands (PoolStage, Pool) and the ordered pools the
// manager of several pools decides from (Supervisor). Pure values, made by make_pool and
// make_supervisor (supervisor.cpp); the rules that change them are in supervisor.hpp.
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/pool_state.hpp>
#include <herd/core/supervision.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// Where a pool is in its life.
enum class PoolStage {
    waiting,    // not started yet: a pool ahead of it is not ready yet
    starting,   // its workers are spawned; not all ready yet
    running,    // has been at its target since it started (it may dip below it again)
    stopping,   // asked to stop; workers still leaving
    stopped,    // no worker left after a stop: StopPool, a shutdown, or a strategy stopped it (temporary)
    failed,     // has failed (see supervisor.hpp); it is stopped in its turn and keeps this stage
};

/// "waiting", "starting", ...
std::string_view to_string(PoolStage stage);

/// One pool: its options, how it is supervised, its workers, where it stands.
struct Pool {
    std::string name;
    Options options;                     // per-worker options of this pool; options.workers is its size
    Supervision supervision;
    std::string program;                 // what its workers run (`command =`, `worker =`); a new one replaces them
    PoolState state;
    PoolStage stage = PoolStage::waiting;
    PoolStage reported = PoolStage::waiting;   // the latest stage the shell logged (PoolReported)
    unsigned wanted = 0;                 // the target the operator set; closed slots come back to it
    std::size_t step = 0;                // the plan's next step
    unsigned runs = 0;                   // the plan's whole runs so far
    std::optional<TimePoint> last_restart;     // the latest exit that needed a restart
    bool restart_pending = false;        // the strategy restarts it once the pools ahead are at target
    std::string why;                     // failed: why
    bool removed = false;                // the configuration no longer names it (HUP): it stops, then goes
    friend bool operator==(const Pool&, const Pool&) = default;
};

/// A pool ready to be supervised: its target is options.workers.
Pool make_pool(std::string name, Options options, Supervision supervision = {});

/// Everything the manager of several pools decides from.
struct Supervisor {
    Strategy strategy = Strategy::one;
    Phase phase = Phase::running;        // the manager's: running, or shutting down (graceful, fast)
    std::vector<Pool> pools;             // in order
    std::optional<std::size_t> failed;   // the pool whose failure shuts the manager down (exit 3)

    std::optional<std::size_t> find(std::string_view name) const;   // a pool by name
    std::optional<std::size_t> pool_of(int pid) const;               // the pool of a live worker
    friend bool operator==(const Supervisor&, const Supervisor&) = default;
};

/// The supervisor of these pools, in this order; the first starts (and every next one already
/// at its target, as adopted pools after an upgrade are).
Supervisor make_supervisor(Strategy strategy, std::vector<Pool> pools);

}  // namespace herd
