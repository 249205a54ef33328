// HUP with several pools: a new configuration folded into a running supervisor, by pool name.
#include <herd/core/reconfigure.hpp>

#include "supervisor_fixture.hpp"

using namespace herd;
using namespace herd::test;

namespace {

std::vector<PoolConfig> configs(const Supervisor& sup)
{
    std::vector<PoolConfig> out;
    for (const Pool& p : sup.pools) out.push_back({p.name, p.options, p.supervision, p.program});
    return out;
}

std::vector<int> pids(const Pool& p)
{
    std::vector<int> out;
    for (const auto& w : p.state.workers) out.push_back(w.pid);
    return out;
}

}  // namespace

TEST_CASE("the same configuration again changes nothing: every worker is kept")
{
    Shell s = running(Strategy::one, {{}, {}, {}});
    const Supervisor before = s.sup;
    const Reconfigured r = reconfigure(s.sup, configs(s.sup), t0 + 1s);
    CHECK(r.unchanged == std::vector<std::size_t>{0, 1, 2});
    CHECK(r.added.empty());
    CHECK(r.removed.empty());
    CHECK(r.changed.empty());
    CHECK(s.sup == before);
    CHECK(plan(s.sup, t0 + 1s).empty());
}

TEST_CASE("a changed pool rolls to a new generation; the pools around it keep every worker")
{
    Shell s = running(Strategy::one, {{}, {}, {}});
    const auto a_pids = pids(s.sup.pools[0]), c_pids = pids(s.sup.pools[2]);
    auto next = configs(s.sup);
    next[1].options.graceful_timeout = 5s;
    next[1].options.workers = 3;
    const Reconfigured r = reconfigure(s.sup, next, t0 + 1s);
    CHECK(r.changed == std::vector<std::size_t>{1});
    CHECK(r.unchanged == std::vector<std::size_t>{0, 2});
    REQUIRE(s.sup.pools[1].state.rollout);
    CHECK(s.sup.pools[1].state.rollout->kind == Reason::reload);
    CHECK(s.sup.pools[1].options.graceful_timeout == 5s);
    CHECK(s.sup.pools[1].state.target == 3);

    s.settle(t0 + 2s);
    CHECK(only<RolloutDone>(s.done, 1).size() == 1);
    CHECK(pids(s.sup.pools[0]) == a_pids);
    CHECK(pids(s.sup.pools[2]) == c_pids);
    CHECK(s.sup.pools[1].state.workers.size() == 3);
    for (const auto& w : s.sup.pools[1].state.workers) CHECK(w.generation == s.sup.pools[1].state.generation);
}

TEST_CASE("a new program alone (command = or worker =) rolls the pool as new options do")
{
    Shell s = running(Strategy::one, {{}, {}});
    const auto a_pids = pids(s.sup.pools[0]);
    auto next = configs(s.sup);
    next[1].program = "python3 job.py --fast";
    const Reconfigured r = reconfigure(s.sup, next, t0 + 1s);
    CHECK(r.changed == std::vector<std::size_t>{1});
    CHECK(r.unchanged == std::vector<std::size_t>{0});
    CHECK(s.sup.pools[1].program == "python3 job.py --fast");
    REQUIRE(s.sup.pools[1].state.rollout);
    CHECK(s.sup.pools[1].state.rollout->kind == Reason::reload);

    s.settle(t0 + 2s);
    CHECK(only<RolloutDone>(s.done, 1).size() == 1);
    CHECK(pids(s.sup.pools[0]) == a_pids);
    for (const auto& w : s.sup.pools[1].state.workers) CHECK(w.generation == s.sup.pools[1].state.generation);
    CHECK(reconfigure(s.sup, next, t0 + 3s).unchanged == std::vector<std::size_t>{0, 1});   // the same again: kept
}

TEST_CASE("a new pool starts at the end of the order; a removed one stops gracefully and is then gone")
{
    Shell s = running(Strategy::one, {{}, {}});
    auto next = configs(s.sup);
    next.erase(next.begin());   // a goes
    next.push_back({"web", pool_options(2), {}, "worker web"});
    const Reconfigured r = reconfigure(s.sup, next, t0 + 1s);
    CHECK(r.removed == std::vector<std::size_t>{0});
    CHECK(r.added == std::vector<std::size_t>{2});
    CHECK(r.unchanged == std::vector<std::size_t>{1});
    CHECK(s.sup.pools[0].removed);
    CHECK(s.sup.pools[0].stage == PoolStage::stopping);

    s.settle(t0 + 2s);
    CHECK(s.sup.pools[2].stage == PoolStage::running);
    CHECK(s.sup.pools[2].state.workers.size() == 2);
    CHECK(s.sup.pools[0].stage == PoolStage::stopped);
    CHECK(is_gone(s.sup.pools[0]));
    CHECK_FALSE(is_gone(s.sup.pools[1]));
    CHECK(s.sup.phase == Phase::running);
}

TEST_CASE("a pool given again after it was removed starts again with its new options")
{
    Shell s = running(Strategy::one, {{}, {}});
    auto without = configs(s.sup);
    without.pop_back();
    reconfigure(s.sup, without, t0 + 1s);
    s.settle(t0 + 2s);
    REQUIRE(is_gone(s.sup.pools[1]));

    auto with = configs(s.sup);
    with[1].options.workers = 1;
    const Reconfigured r = reconfigure(s.sup, with, t0 + 3s);
    CHECK(r.added == std::vector<std::size_t>{1});
    CHECK_FALSE(s.sup.pools[1].removed);
    s.settle(t0 + 4s);
    CHECK(s.sup.pools[1].stage == PoolStage::running);
    CHECK(s.sup.pools[1].state.workers.size() == 1);
}

TEST_CASE("a changed restart type or plan is taken without a roll of the workers' options")
{
    Shell s = running(Strategy::one, {{}, {}});
    auto next = configs(s.sup);
    next[0].supervision.restart = RestartType::temporary;
    next[0].supervision.plan = RestartPlan{{PlanStep{PlanStep::Kind::wait, {}}}, 2};
    const Reconfigured r = reconfigure(s.sup, next, t0 + 1s);
    CHECK(r.changed == std::vector<std::size_t>{0});
    CHECK(s.sup.pools[0].supervision == next[0].supervision);
    CHECK(s.sup.pools[0].step == 0);
    CHECK(s.sup.pools[0].runs == 0);
    CHECK_FALSE(s.sup.pools[0].state.rollout);
    CHECK(plan(s.sup, t0 + 1s).empty());
}

TEST_CASE("a reload is complete once no pool rolls for it and every pool it added is ready")
{
    Shell s = running(Strategy::one, {{}, {}});
    auto next = configs(s.sup);
    next.erase(next.begin());   // a goes
    next[0].options.graceful_timeout = 5s;   // b rolls
    next.push_back({"web", pool_options(2), {}, "worker web"});
    reconfigure(s.sup, next, t0 + 1s);
    const std::vector<std::string> added{"web"};
    CHECK_FALSE(reload_complete(s.sup, added));   // b rolls, web waits
    REQUIRE(started_after(s.sup, 2));
    CHECK(*started_after(s.sup, 2) == 1);         // after b: a is removed
    CHECK_FALSE(started_after(s.sup, 0));

    s.settle(t0 + 2s);
    CHECK(s.sup.pools[2].stage == PoolStage::running);
    CHECK_FALSE(s.sup.pools[1].state.rollout);
    CHECK(reload_complete(s.sup, added));
    CHECK(reload_complete(s.sup, {"gone"}));      // a name no pool has any more holds nothing up
}

TEST_CASE("a reload that only removes or keeps pools is complete at once")
{
    Shell s = running(Strategy::one, {{}, {}});
    auto next = configs(s.sup);
    next.pop_back();
    reconfigure(s.sup, next, t0 + 1s);
    CHECK(reload_complete(s.sup, {}));
}
