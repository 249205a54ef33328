// The supervisor's vocabulary with the shell: the events the manager of several pools learns
// (folded in by apply) and the actions it takes (decided by plan). Pure values; supervisor.hpp
// says what each one means.
#pragma once

#include <herd/core/events.hpp>
#include <herd/core/supervision.hpp>
#include <herd/core/supervisor_state.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace herd {

// Events: what the manager learns.
struct PoolEvent { std::size_t pool; Event event; };       // a worker's event, or today's pool events
struct ShutdownRequested { bool graceful; };               // QUIT (graceful), TERM or INT (fast)
struct StartPool { std::size_t pool; };                    // herdctl start POOL
struct StopPool { std::size_t pool; bool graceful = true; };   // herdctl stop POOL
struct RestartPool { std::size_t pool; };                  // herdctl restart POOL
struct ChangePlan { std::size_t pool; std::optional<RestartPlan> plan; };   // herdctl plan POOL "..."
struct ScalePool { std::size_t pool; Scale scale; };       // herdctl scale POOL N
struct PoolReported { std::size_t pool; PoolStage stage; };   // the shell logged this stage
using SupervisorEvent = std::variant<PoolEvent, ShutdownRequested, StartPool, StopPool, RestartPool, ChangePlan,
                                     ScalePool, PoolReported>;

// Actions: what the manager does.
struct PoolAction {                      // today's action, for this pool
    std::size_t pool;
    Action action;
    friend bool operator==(const PoolAction&, const PoolAction&) = default;
};
struct PoolStarted {                     // its workers are spawned now (stage starting)
    std::size_t pool;
    friend bool operator==(const PoolStarted&, const PoolStarted&) = default;
};
struct PoolReady {                       // all its workers are ready (stage running)
    std::size_t pool;
    friend bool operator==(const PoolReady&, const PoolReady&) = default;
};
struct PoolStopped {                     // no worker left after a stop (stage stopped)
    std::size_t pool;
    friend bool operator==(const PoolStopped&, const PoolStopped&) = default;
};
struct PoolFailed {                      // the pool failed: the manager stops, then exits 3
    std::size_t pool;
    std::string why;                     // "worker 123 crashed (exit code 1) after its plan ran 3 times"
    friend bool operator==(const PoolFailed&, const PoolFailed&) = default;
};
using SupervisorAction = std::variant<PoolAction, PoolStarted, PoolReady, PoolStopped, PoolFailed, Exit>;
using SupervisorActions = std::vector<SupervisorAction>;

}  // namespace herd
