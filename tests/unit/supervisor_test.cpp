// The supervisor of several pools, one rule per test (DESIGN.md §7a), on a fake clock.
#include "supervisor_fixture.hpp"

#include <herd/core/supervisor.hpp>

#include <doctest/doctest.h>

using namespace herd;
using namespace herd::test;

namespace {

Supervision with_plan(std::vector<PlanStep> steps, std::optional<unsigned> count = std::nullopt)
{
    Supervision s;
    s.plan = RestartPlan{std::move(steps), count};
    return s;
}

PlanStep restart(Duration delay = Duration{0}) { return {PlanStep::Kind::restart, delay}; }
PlanStep wait_step() { return {PlanStep::Kind::wait, {}}; }
PlanStep stop_step() { return {PlanStep::Kind::stop, {}}; }
PlanStep close_step() { return {PlanStep::Kind::close, {}}; }

}  // namespace

// Order

TEST_CASE("pools start in order, each one's workers all ready before the next pool spawns any")
{
    std::vector<Pool> pools{make_pool("a", pool_options(2)), make_pool("b", pool_options(2)), make_pool("c", pool_options(1))};
    Shell shell(make_supervisor(Strategy::one, std::move(pools)));
    shell.ready_at_once = false;
    auto actions = shell.step(t0);
    CHECK(only<PoolStarted>(actions).size() == 1);
    CHECK(only<Spawn>(actions, 0) == std::vector<Spawn>{{0, 1}, {1, 1}});
    CHECK(only<Spawn>(actions, 1).empty());
    CHECK(shell.sup.pools[1].stage == PoolStage::waiting);

    shell.on(0, HeartbeatSeen{100, std::nullopt}, t0 + 1s);
    CHECK(only<Spawn>(shell.step(t0 + 1s), 1).empty());
    shell.on(0, HeartbeatSeen{101, std::nullopt}, t0 + 2s);
    actions = shell.step(t0 + 2s);
    CHECK(only<PoolReady>(actions) == std::vector<PoolReady>{{0}});
    CHECK(only<PoolStarted>(actions) == std::vector<PoolStarted>{{1}});
    CHECK(only<Spawn>(actions, 1).size() == 2);
    CHECK(only<Spawn>(actions, 2).empty());
    // Reported once: the next plan says nothing more about pool a.
    CHECK(only<PoolReady>(shell.step(t0 + 2s)).empty());
}

TEST_CASE("a pool that dips below its target after it was ready does not hold the pools after it back")
{
    Shell shell = running(Strategy::one, {{}, {}, {}});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
    CHECK(shell.sup.pools[2].stage == PoolStage::running);
}

TEST_CASE("a graceful shutdown stops the pools in reverse order, each gone before the one before it is asked")
{
    Shell shell = running(Strategy::one, {{}, {}, {}});
    shell.exit_at_once = false;
    apply(shell.sup, ShutdownRequested{true}, t0 + 1s);
    auto actions = shell.step(t0 + 1s);
    CHECK(only<Retire>(actions, 2).size() == 2);
    CHECK(only<Retire>(actions, 1).empty());
    CHECK(only<Retire>(actions, 0).empty());
    const auto c = shell.pids(2);
    shell.exit(c[0], exited(0), t0 + 2s);
    CHECK(only<Retire>(shell.step(t0 + 2s), 1).empty());   // c still has a worker
    shell.exit(c[1], exited(0), t0 + 3s);
    actions = shell.step(t0 + 3s);
    CHECK(only<PoolStopped>(actions) == std::vector<PoolStopped>{{2}});
    CHECK(only<Retire>(actions, 1).size() == 2);
    CHECK(only<Retire>(actions, 0).empty());
    CHECK(only<Exit>(actions).empty());
    for (int pid : shell.pids(1)) shell.exit(pid, exited(0), t0 + 4s);
    CHECK(only<Retire>(shell.step(t0 + 4s), 0).size() == 2);
    for (int pid : shell.pids(0)) shell.exit(pid, exited(0), t0 + 5s);
    actions = shell.step(t0 + 5s);
    CHECK(only<Exit>(actions) == std::vector<Exit>{{0}});
    for (const auto& p : shell.sup.pools) CHECK(p.stage == PoolStage::stopped);
}

TEST_CASE("a fast shutdown terminates in reverse order and overrides a graceful one in progress")
{
    Shell shell = running(Strategy::one, {{}, {}});
    shell.exit_at_once = false;
    apply(shell.sup, ShutdownRequested{true}, t0 + 1s);
    CHECK(only<Retire>(shell.step(t0 + 1s), 1).size() == 2);
    apply(shell.sup, ShutdownRequested{false}, t0 + 2s);
    auto actions = shell.step(t0 + 2s);
    CHECK(only<Terminate>(actions, 1).size() == 2);
    CHECK(only<Terminate>(actions, 0).empty());
    apply(shell.sup, ShutdownRequested{true}, t0 + 3s);   // no way back to graceful
    CHECK(shell.sup.phase == Phase::stopping_fast);
    for (int pid : shell.pids(1)) shell.exit(pid, signalled(SIGTERM), t0 + 3s);
    actions = shell.step(t0 + 3s);
    CHECK(only<Terminate>(actions, 0).size() == 2);
    for (int pid : shell.pids(0)) shell.exit(pid, signalled(SIGTERM), t0 + 4s);
    CHECK(only<Exit>(shell.step(t0 + 4s)) == std::vector<Exit>{{0}});
}

TEST_CASE("a pool that empties does not end the manager: only every pool after a shutdown does")
{
    Shell shell = running(Strategy::one, {{}, {}});
    apply(shell.sup, StopPool{0}, t0 + 1s);
    shell.settle(t0 + 1s);
    CHECK(shell.sup.pools[0].stage == PoolStage::stopped);
    CHECK(only<PoolStopped>(shell.done) == std::vector<PoolStopped>{{0}});
    CHECK(only<Exit>(shell.done).empty());
    CHECK(shell.pids(1).size() == 2);
}

// Restart types

TEST_CASE("a permanent worker that exits 0 is refilled")
{
    Shell shell = running(Strategy::one, {{}});
    shell.exit(shell.pids(0)[1], exited(0), t0 + 1s);
    CHECK(only<Spawn>(plan(shell.sup, t0 + 1s), 0) == std::vector<Spawn>{{1, 1}});
}

TEST_CASE("a transient worker that exits 0 is not refilled: its slot closes and it is no failure")
{
    Shell shell = running(Strategy::one, {typed(RestartType::transient)});
    shell.exit(shell.pids(0)[1], exited(0), t0 + 1s);
    CHECK(plan(shell.sup, t0 + 1s).empty());
    CHECK(shell.sup.pools[0].state.target == 1);
    CHECK(shell.sup.pools[0].state.failures.empty());
    shell.exit(shell.pids(0)[0], exited(3), t0 + 2s);   // abnormal: refilled
    CHECK(only<Spawn>(plan(shell.sup, t0 + 2s), 0) == std::vector<Spawn>{{0, 1}});
}

TEST_CASE("a temporary worker is never refilled, even after a crash")
{
    Shell shell = running(Strategy::all, {typed(RestartType::temporary), {}});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(plan(shell.sup, t0 + 1s).empty());
    CHECK(shell.sup.pools[0].state.target == 1);
    CHECK(restarting(shell.sup).empty());   // no restart, no strategy
}

TEST_CASE("an expected exit takes no plan step and restarts no other pool")
{
    Shell shell = running(Strategy::all, {with_plan({stop_step()}), {}});
    apply(shell.sup, ScalePool{0, {1, 0}}, t0 + 1s);
    shell.settle(t0 + 1s);   // one worker retired (TTOU) and gone
    CHECK(shell.pids(0).size() == 1);
    CHECK(shell.sup.pools[0].step == 0);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
    CHECK(restarting(shell.sup).empty());
}

TEST_CASE("a spawn that fails is an abnormal exit of its slot")
{
    Shell shell = running(Strategy::one, {with_plan({restart(3s)})});
    shell.exit(shell.pids(0)[1], signalled(SIGSEGV), t0 + 1s);
    CHECK(only<Spawn>(plan(shell.sup, t0 + 4s), 0) == std::vector<Spawn>{{1, 1}});
    shell.on(0, SpawnFailed{1}, t0 + 4s);
    CHECK(plan(shell.sup, t0 + 6s).empty());
    CHECK(only<Spawn>(plan(shell.sup, t0 + 7s), 0) == std::vector<Spawn>{{1, 1}});
}

// Plans

TEST_CASE("plan: restart D refills the slot no earlier than D after the exit, and wakes the manager then")
{
    Shell shell = running(Strategy::one, {with_plan({restart(5s)})});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(plan(shell.sup, t0 + 1s).empty());
    CHECK(plan(shell.sup, t0 + 5999ms).empty());
    CHECK(next_deadline(shell.sup, t0 + 1s) == t0 + 6s);
    CHECK(only<Spawn>(plan(shell.sup, t0 + 6s), 0) == std::vector<Spawn>{{0, 1}});
    CHECK(next_deadline(shell.sup, t0 + 6s) == t0 + 6s);
}

TEST_CASE("plan: wait holds the slot until RestartPool, which releases it and rolls the pool")
{
    Shell shell = running(Strategy::one, {with_plan({wait_step()})});
    shell.exit(shell.pids(0)[1], exited(1), t0 + 1s);
    CHECK(plan(shell.sup, t0 + 9s).empty());
    CHECK(next_deadline(shell.sup, t0 + 1s) == t0 + 10s);   // the other worker's silence, not the hold
    apply(shell.sup, RestartPool{0}, t0 + 5s);
    CHECK(shell.sup.pools[0].state.held.empty());
    const auto actions = plan(shell.sup, t0 + 5s);
    CAPTURE(actions);
    CHECK(only<Spawn>(actions, 0) == std::vector<Spawn>{{0, 2}, {1, 2}});   // a new generation, within target + spare
    shell.settle(t0 + 5s);
    CHECK(only<RolloutDone>(shell.done, 0).size() == 1);
    CHECK(only<RolloutDone>(shell.done, 0)[0].kind == Reason::restart);
    CHECK(shell.pids(0).size() == 2);
}

TEST_CASE("plan: close closes the slot, and RestartPool opens it again")
{
    Shell shell = running(Strategy::one, {with_plan({close_step()})});
    shell.exit(shell.pids(0)[1], exited(1), t0 + 1s);
    CHECK(shell.sup.pools[0].state.target == 1);
    CHECK(plan(shell.sup, t0 + 1s).empty());
    apply(shell.sup, RestartPool{0}, t0 + 2s);
    CHECK(shell.sup.pools[0].state.target == 2);
}

TEST_CASE("plan: stop fails the pool")
{
    Shell shell = running(Strategy::one, {with_plan({restart(), stop_step()})});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
    shell.settle(t0 + 1s);
    const int pid = shell.pids(0)[0];
    shell.exit(pid, exited(2), t0 + 2s);
    CHECK(shell.sup.pools[0].stage == PoolStage::failed);
    CHECK(only<PoolFailed>(plan(shell.sup, t0 + 2s)) ==
          std::vector<PoolFailed>{{0, "worker " + std::to_string(pid) + " crashed (exit code 2); its plan says stop"}});
}

TEST_CASE("plan: its count used up, the pool fails and the others stop in reverse order, then exit 3")
{
    Shell shell = running(Strategy::one, {{}, with_plan({restart()}, 2), {}});
    shell.exit_at_once = false;
    shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 1s);
    shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 2s);
    CHECK(shell.sup.pools[1].runs == 2);
    shell.ready_at_once = true;
    shell.step(t0 + 2s);
    const int third = shell.pids(1)[0];
    shell.exit(third, signalled(SIGABRT), t0 + 3s);
    CHECK(shell.sup.failed == 1);
    auto actions = shell.step(t0 + 3s);
    CHECK(only<PoolFailed>(actions) ==
          std::vector<PoolFailed>{{1, "worker " + std::to_string(third) + " crashed (signal 6) after its plan ran 2 times"}});
    CHECK(only<Spawn>(actions, 1).empty());           // a failed pool refills nothing
    CHECK(only<Retire>(actions, 2).size() == 2);      // the last pool first
    CHECK(only<Retire>(actions, 1).empty());
    CHECK(only<Retire>(actions, 0).empty());
    for (int pid : shell.pids(2)) shell.exit(pid, exited(0), t0 + 4s);
    actions = shell.step(t0 + 4s);
    CHECK(only<PoolFailed>(actions).empty());         // once
    CHECK(only<Retire>(actions, 1).size() == 1);
    for (int pid : shell.pids(1)) shell.exit(pid, exited(0), t0 + 5s);
    CHECK(only<Retire>(shell.step(t0 + 5s), 0).size() == 2);
    for (int pid : shell.pids(0)) shell.exit(pid, exited(0), t0 + 6s);
    CHECK(only<Exit>(shell.step(t0 + 6s)) == std::vector<Exit>{{3}});
    CHECK(shell.sup.pools[1].stage == PoolStage::failed);
}

TEST_CASE("plan: a whole restart-limit window without an exit that needs a restart starts the plan over")
{
    for (const auto gap : {4s, 10s}) {
        CAPTURE(gap.count());
        Shell shell = running(Strategy::one, {with_plan({restart(), stop_step()}, 1)});
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
        shell.settle(t0 + 1s);
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s + gap);
        CHECK((shell.sup.pools[0].stage == PoolStage::failed) == (gap < 10s));
        if (gap >= 10s) CHECK(shell.sup.pools[0].step == 1);
    }
}

TEST_CASE("plan: ChangePlan replaces the plan and starts its count over")
{
    Shell shell = running(Strategy::one, {with_plan({restart()}, 1)});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(shell.sup.pools[0].runs == 1);
    apply(shell.sup, ChangePlan{0, RestartPlan{{restart(2s)}, 1}}, t0 + 2s);
    CHECK(shell.sup.pools[0].runs == 0);
    shell.settle(t0 + 2s);
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 3s);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
    CHECK(shell.sup.pools[0].state.held.at(shell.sup.pools[0].state.held.begin()->first) == t0 + 5s);
}

TEST_CASE("plan: a pool with a plan never backs off")
{
    Shell shell = running(Strategy::one, {with_plan({restart()})}, 1);
    for (int i = 0; i < 8; ++i) {
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
        const auto actions = shell.step(t0 + 1s);
        CHECK(only<BackOff>(actions, 0).empty());
        CHECK(only<Spawn>(actions, 0).size() == 1);
    }
}

// Without a plan: the restart limit

TEST_CASE("past the restart limit, backoff backs off as one pool does and the pool keeps running")
{
    Shell shell = running(Strategy::one, {{}}, 1);
    for (int i = 0; i < 4; ++i) {
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
        shell.step(t0 + 1s);
    }
    CHECK(only<BackOff>(shell.done, 0).size() == 1);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
}

TEST_CASE("past the restart limit, wait holds every empty slot until RestartPool")
{
    Shell shell = running(Strategy::one, {limited(OnRestartLimit::wait)}, 3);
    shell.exit_at_once = false;
    for (int i = 0; i < 3; ++i) {
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
        shell.step(t0 + 1s);
    }
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 2s);   // the 4th of a limit of 3
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 2s);
    CHECK(shell.sup.pools[0].state.held.size() == 2);
    CHECK(plan(shell.sup, t0 + 9s).empty());
    apply(shell.sup, RestartPool{0}, t0 + 9s);
    CHECK(shell.sup.pools[0].state.failures.empty());
    CHECK(only<Spawn>(plan(shell.sup, t0 + 9s), 0).size() == 3);   // the held two and one of the new generation
}

TEST_CASE("past the restart limit, stop fails the pool")
{
    Shell shell = running(Strategy::one, {{}, limited(OnRestartLimit::stop)}, 1);
    for (int i = 0; i < 4; ++i) {
        shell.exit(shell.pids(1)[0], exited(1), t0 + 1s);
        if (i < 3) shell.step(t0 + 1s);
    }
    REQUIRE(shell.sup.pools[1].stage == PoolStage::failed);
    CAPTURE(shell.sup.pools[1].why);
    CHECK(shell.sup.pools[1].why.find("4 unexpected exits within 10 s (limit 3)") != std::string::npos);
    shell.settle(t0 + 1s);
    CAPTURE(shell.done);
    CHECK(only<Exit>(shell.done).back() == Exit{3});
}

TEST_CASE("a pool that never had a ready worker fails the supervisor where one pool would exit 3")
{
    Options quiet = pool_options(1);
    quiet.heartbeat_timeout = 0s;
    Shell shell(make_supervisor(Strategy::one, {make_pool("a", quiet), make_pool("b", pool_options(1))}));
    shell.step(t0);   // a's worker, ready at once
    shell.ready_at_once = false;
    TimePoint t = t0 + 1s;
    for (int i = 0; i < 30 && !shell.sup.failed; ++i, t += 1s) {
        shell.step(t);
        for (int pid : shell.pids(1)) shell.exit(pid, exited(1), t);
    }
    CAPTURE(shell.done);
    REQUIRE(shell.sup.failed == 1);
    CHECK(shell.sup.pools[1].why.rfind("no worker ever became ready and", 0) == 0);
    shell.settle(t);
    CHECK(only<Exit>(shell.done).back() == Exit{3});
    CHECK(shell.sup.pools[0].stage == PoolStage::stopped);
}

// The operator

TEST_CASE("StartPool starts a stopped pool again; a stopped pool holds no pool after it back")
{
    std::vector<Pool> pools{make_pool("a", pool_options(1)), make_pool("b", pool_options(1))};
    Shell shell(make_supervisor(Strategy::one, std::move(pools)));
    apply(shell.sup, StopPool{0}, t0);   // before its first worker
    shell.settle(t0);
    CHECK(shell.sup.pools[0].stage == PoolStage::stopped);
    CHECK(shell.sup.pools[1].stage == PoolStage::running);
    apply(shell.sup, StartPool{0}, t0 + 1s);
    CHECK(shell.sup.pools[0].stage == PoolStage::starting);
    shell.settle(t0 + 1s);
    CHECK(shell.sup.pools[0].stage == PoolStage::running);
    CHECK(shell.pids(0).size() == 1);
}

TEST_CASE("ScalePool sets the target the operator wants, which closed slots come back to")
{
    Shell shell = running(Strategy::one, {typed(RestartType::temporary)});
    apply(shell.sup, ScalePool{0, {std::nullopt, 2}}, t0 + 1s);
    shell.settle(t0 + 1s);
    CHECK(shell.sup.pools[0].wanted == 4);
    shell.exit(shell.pids(0)[0], exited(0), t0 + 2s);
    CHECK(shell.sup.pools[0].state.target == 3);
    apply(shell.sup, RestartPool{0}, t0 + 3s);
    CHECK(shell.sup.pools[0].state.target == 4);
}

TEST_CASE("commands about pools that do not exist change nothing")
{
    Shell shell = running(Strategy::one, {{}});
    const Supervisor before = shell.sup;
    for (const SupervisorEvent& e : std::vector<SupervisorEvent>{StartPool{5}, StopPool{5}, RestartPool{5}, ChangePlan{5, {}},
                                                                 ScalePool{5, {}}, PoolReported{5, PoolStage::failed},
                                                                 PoolEvent{5, Spawned{1, 0, 1}}})
        apply(shell.sup, e, t0 + 1s);
    CHECK(shell.sup == before);
    CHECK(shell.sup.find("a") == 0);
    CHECK_FALSE(shell.sup.find("z"));
    CHECK(shell.sup.pool_of(shell.pids(0)[0]) == 0);
    CHECK_FALSE(shell.sup.pool_of(99999));
}

TEST_CASE("a command in a stage it does not apply to changes nothing")
{
    std::vector<Pool> pools{make_pool("a", pool_options(1)), make_pool("b", pool_options(1))};
    Shell shell(make_supervisor(Strategy::one, std::move(pools)));
    const Supervisor before = shell.sup;
    apply(shell.sup, StartPool{0}, t0);     // starting already
    apply(shell.sup, RestartPool{1}, t0);   // waiting for a
    CHECK(shell.sup == before);
    shell.settle(t0);
    apply(shell.sup, ShutdownRequested{true}, t0 + 1s);
    const Supervisor stopping = shell.sup;
    apply(shell.sup, RestartPool{0}, t0 + 1s);
    apply(shell.sup, StartPool{1}, t0 + 1s);
    CHECK(shell.sup == stopping);
}

TEST_CASE("a fast shutdown after a pool failed still ends in exit 3")
{
    Shell shell = running(Strategy::one, {{}, with_plan({stop_step()})});
    shell.exit_at_once = false;
    shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 1s);
    REQUIRE(shell.sup.failed == 1);
    apply(shell.sup, ShutdownRequested{false}, t0 + 2s);
    auto actions = shell.step(t0 + 2s);
    CHECK(only<Terminate>(actions, 1).size() == 1);
    for (int pid : shell.pids(1)) shell.exit(pid, signalled(SIGTERM), t0 + 3s);
    CHECK(only<Terminate>(shell.step(t0 + 3s), 0).size() == 2);
    for (int pid : shell.pids(0)) shell.exit(pid, signalled(SIGTERM), t0 + 4s);
    CHECK(only<Exit>(shell.step(t0 + 4s)) == std::vector<Exit>{{3}});
}

TEST_CASE("which pools a strategy touches, and which exits need a restart")
{
    CHECK(touched_by(Strategy::one, 1, 3).empty());
    CHECK(touched_by(Strategy::rest, 0, 3) == std::vector<std::size_t>{1, 2});
    CHECK(touched_by(Strategy::rest, 2, 3).empty());
    CHECK(touched_by(Strategy::all, 1, 3) == std::vector<std::size_t>{0, 2});
    CHECK_FALSE(needs_restart(RestartType::permanent, ExitKind::expected));
    CHECK(needs_restart(RestartType::permanent, ExitKind::normal));
    CHECK_FALSE(needs_restart(RestartType::transient, ExitKind::normal));
    CHECK(needs_restart(RestartType::transient, ExitKind::abnormal));
    CHECK_FALSE(needs_restart(RestartType::temporary, ExitKind::abnormal));
    CHECK(to_string(PoolStage::failed) == "failed");
}

TEST_CASE("the manager is ready when every pool not stopped is at its target; a pool is done when it got there")
{
    Shell shell = running(Strategy::one, {{}, {}});
    CHECK(is_ready(shell.sup));
    CHECK_FALSE(is_rolling(shell.sup));
    CHECK(has_done(shell.sup.pools[0], Command::scale));
    CHECK(has_done(shell.sup.pools[0], Command::restart));
    CHECK_FALSE(has_done(shell.sup.pools[0], Command::stop));

    // Stopping pool b: not ready until it is stopped, then ready again without it
    shell.exit_at_once = false;
    apply(shell.sup, StopPool{1}, t0 + 1s);
    shell.step(t0 + 1s);
    CHECK_FALSE(is_ready(shell.sup));
    CHECK_FALSE(has_done(shell.sup.pools[1], Command::stop));
    for (int pid : shell.pids(1)) shell.exit(pid, exited(0), t0 + 2s);
    shell.settle(t0 + 2s);
    CHECK(shell.sup.pools[1].stage == PoolStage::stopped);
    CHECK(has_done(shell.sup.pools[1], Command::stop));
    CHECK(is_ready(shell.sup));

    // Restarting pool a rolls it: not done (nor ready to announce) before the new generation took over
    apply(shell.sup, RestartPool{0}, t0 + 3s);
    CHECK(is_rolling(shell.sup));
    CHECK_FALSE(has_done(shell.sup.pools[0], Command::restart));
    shell.exit_at_once = true;
    shell.settle(t0 + 4s);
    CHECK_FALSE(is_rolling(shell.sup));
    CHECK(has_done(shell.sup.pools[0], Command::restart));

    // A shutdown: never ready again
    apply(shell.sup, ShutdownRequested{true}, t0 + 5s);
    CHECK_FALSE(is_ready(shell.sup));
}
