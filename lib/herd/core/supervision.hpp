// How one pool is supervised among several (DESIGN.md §7a): the values of its restart type, its
// restart plan and what the restart limit does, and the manager-wide restart strategy. Values
// only; the decisions that use them are in supervisor.hpp, the parsers in config/.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

namespace herd {

// As in config/options.hpp, which includes this header for the pools of a command line.
using Duration = std::chrono::milliseconds;

/// Whether an exit needs a restart at all (OTP's restart type).
enum class RestartType {
    permanent,   // any exit ("always")
    transient,   // only an abnormal one: non-zero status, a signal, retired for no heartbeat ("on-failure")
    temporary,   // never: the slot closes, the pool shrinks ("never")
};

/// Which pools an exit that needs a restart touches (OTP's one_for_one, rest_for_one, one_for_all).
enum class Strategy {
    one,    // the worker is replaced
    rest,   // the worker is replaced and every pool after its pool restarts
    all,    // the worker is replaced and every other pool restarts
};

/// What a pool without a plan does when its unexpected exits pass --restart-limit.
enum class OnRestartLimit {
    backoff,   // spawns pause, longer each time (the single pool's rule)
    wait,      // empty slots are held until `herdctl restart POOL`
    stop,      // the pool has failed: the manager stops and exits 3
};

/// One element of a restart plan (the director library's plan).
struct PlanStep {
    enum class Kind {
        restart,   // refill the slot now, or after `delay`
        wait,      // hold the slot until `herdctl restart POOL`
        stop,      // the pool has failed
        close,     // close the slot: the pool shrinks ("delete")
    };
    Kind kind = Kind::restart;
    Duration delay{0};   // restart only
    friend bool operator==(const PlanStep&, const PlanStep&) = default;
};

/// `plan = restart, restart 5s, wait` and `plan-count = 3`: successive unexpected exits in a pool
/// take successive steps; after the last one the plan starts over, `count` runs in all (nullopt:
/// infinity), then the pool has failed. A whole --restart-limit window without an unexpected exit
/// starts the plan over with a fresh count.
struct RestartPlan {
    std::vector<PlanStep> steps;
    std::optional<unsigned> count;   // nullopt: infinity
    friend bool operator==(const RestartPlan&, const RestartPlan&) = default;
};

/// Everything about how one pool is supervised beside its per-worker options.
struct Supervision {
    RestartType restart = RestartType::permanent;
    std::optional<RestartPlan> plan;            // none: the restart limit and on_restart_limit decide
    OnRestartLimit on_restart_limit = OnRestartLimit::backoff;
    friend bool operator==(const Supervision&, const Supervision&) = default;
};

}  // namespace herd
