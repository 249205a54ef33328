// The control protocol's answers about pools (DESIGN.md §6 and §7a), pure: status grouped by pool,
// the answers of the operations on one pool, and the sentences for a request that names no pool or
// one the manager does not run. The manager describes each pool with a PoolView (borrowed for one
// answer); a manager of one pool passes one view named "main".
//
// Status: {"ok":true,"manager":{...},"workers":[...],"pools":[{...},...]}. `pools` is every pool in
// order (or the one a status request names), each with its name, stage, restart type, plan and
// position, target, rollout, exits, restart counters and its workers. `manager` and `workers` keep
// the shape of a manager of one pool, so that clients of that shape read the whole manager:
// target, ready, exits and failures are summed over the pools, at_target holds when every pool is at
// its target and none rolls, generation is the highest, rollout the pre-flight check or else the
// first pool's, restart_limit the first pool's, backoff_s the longest; `workers` are every pool's
// workers in pool order, each naming its pool.
#pragma once

#include <herd/core/supervision.hpp>
#include <herd/manager/control.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herd::control {

/// Where a pool stands in its restart plan (the supervisor counts it).
struct PlanPosition {
    std::size_t next = 0;   // the step the next unexpected exit takes, from 0
    unsigned run = 1;       // the plan's run, from 1 (RestartPlan::count runs in all)
    friend bool operator==(const PlanPosition&, const PlanPosition&) = default;
};

/// One pool as the control socket shows it.
struct PoolView {
    std::string_view name;
    const PoolState& state;
    const Options& options;
    const History& history;              // its exits by slot (the manager's rollouts are in another)
    std::string_view stage = "running";  // waiting, starting, running, stopping, stopped, failed
    Supervision supervision{};           // restart type, plan, what the restart limit does
    PlanPosition position{};             // with a plan: where it stands
    unsigned held = 0;                   // slots a `wait` step holds until `restart POOL`
};

/// Status of the manager and `pools` (every pool, or the one a request named).
std::string status_answer(const std::vector<PoolView>& pools, const ManagerFacts& facts, const History& history,
                          TimePoint now);

/// scale with a pool, restart, start, stop with a pool, once finished:
/// {"ok":true,"pool":"web","stage":"running","generation":3,"target":8,"ready":8}
std::string pool_answer(const PoolView& pool);

/// plan: {"ok":true,"pool":"web","restart":"transient","plan":{...}|null,"on_restart_limit":"backoff",
/// "restart_limit":"10/10 s"}; `plan` is {"steps":"restart, restart 5s, wait","count":3|"infinity",
/// "next":"restart 5s","run":1}.
std::string plan_answer(const PoolView& pool);

/// "permanent", "transient", "temporary"
std::string_view restart_text(RestartType type);
/// "backoff", "wait", "stop"
std::string_view on_restart_limit_text(OnRestartLimit what);
/// "restart", "restart 5s", "wait", "stop", "delete": a step as the config file writes it.
std::string step_text(const PlanStep& step);
/// "restart, restart 5s, wait"
std::string plan_text(const RestartPlan& plan);

/// The pool a request is about, as an index into `names` (the manager's pools, in order): the pool
/// it names, or the only one. Otherwise the error sentence: "unknown pool 'x' (this manager runs
/// cache, web)", "scale needs a pool: this manager runs cache, web". (A status or a stop without a
/// pool is about the whole manager: no pool to pick.)
std::variant<std::size_t, std::string> pick_pool(const Request& request, const std::vector<std::string>& names);

}  // namespace herd::control
