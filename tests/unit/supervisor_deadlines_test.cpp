// next_deadline() of the supervisor: on a grid of times, the manager of several pools wakes
// exactly when plan() has something new to decide, never for nothing, never too late.
#include "supervisor_fixture.hpp"

#include <herd/core/supervisor.hpp>

#include <doctest/doctest.h>

#include <functional>

using namespace herd;
using namespace herd::test;

namespace {

// What plan() decides, without the durations that only report how late it is
SupervisorActions decided(const Supervisor& sup, TimePoint now)
{
    SupervisorActions out = plan(sup, now);
    for (auto& a : out) {
        auto* x = std::get_if<PoolAction>(&a);
        if (!x) continue;
        if (auto* y = std::get_if<Retire>(&x->action)) y->elapsed = {};
        if (auto* y = std::get_if<Kill>(&x->action)) y->elapsed = {};
        if (auto* y = std::get_if<RolloutDone>(&x->action)) y->took = {};
    }
    return out;
}

struct Case {
    std::string name;
    std::function<Shell()> build;
};

Supervision plan_of(std::vector<PlanStep> steps)
{
    Supervision s;
    s.plan = RestartPlan{std::move(steps), std::nullopt};
    return s;
}

std::vector<Case> cases()
{
    std::vector<Case> out;
    out.push_back({"a slot held 5s in one pool, a worker booting in the other", [] {
        Shell shell = running(Strategy::one, {plan_of({{PlanStep::Kind::restart, 5s}}), {}});
        shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
        shell.ready_at_once = false;
        shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 2s);
        shell.step(t0 + 2s);
        return shell;
    }});
    out.push_back({"a slot held until RestartPool", [] {
        Shell shell = running(Strategy::one, {plan_of({{PlanStep::Kind::wait, {}}})}, 1);
        shell.exit(shell.pids(0)[0], exited(1), t0 + 1s);
        return shell;
    }});
    out.push_back({"a failed pool's hold has ended, and it refills nothing", [] {
        Shell shell = running(Strategy::one, {{}, plan_of({{PlanStep::Kind::restart, 2s}, {PlanStep::Kind::stop, {}}})});
        shell.exit_at_once = false;
        shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 1s);
        shell.exit(shell.pids(1)[0], signalled(SIGSEGV), t0 + 1s);
        shell.step(t0 + 1s);   // the failure reported, the last pool asked to stop
        return shell;
    }});
    out.push_back({"the first pool never ready, the second waiting for it", [] {
        Shell shell(make_supervisor(Strategy::one, {make_pool("a", pool_options(1)), make_pool("b", pool_options(1))}));
        shell.ready_at_once = false;
        shell.step(t0);
        return shell;
    }});
    out.push_back({"a graceful shutdown draining the last pool", [] {
        Shell shell = running(Strategy::rest, {{}, {}});
        shell.exit_at_once = false;
        apply(shell.sup, ShutdownRequested{true}, t0 + 1s);
        shell.step(t0 + 1s);
        return shell;
    }});
    out.push_back({"a restart rolling the second pool", [] {
        Shell shell = running(Strategy::rest, {{}, {}});
        shell.exit(shell.pids(0)[0], exited(1), t0 + 1s);
        shell.ready_at_once = false;
        shell.step(t0 + 1s);
        shell.on(0, HeartbeatSeen{shell.pids(0).back(), std::nullopt}, t0 + 1s);
        shell.step(t0 + 1s);
        return shell;
    }});
    return out;
}

}  // namespace

TEST_CASE("the supervisor's next_deadline wakes exactly when plan has something new to decide, on a grid of times")
{
    for (const Case& c : cases()) {
        CAPTURE(c.name);
        const Shell shell = c.build();
        const Supervisor& s = shell.sup;
        for (auto t = t0 + 1s; t <= t0 + 70s; t += 250ms) {
            CAPTURE((t - t0).count());
            const TimePoint wake = next_deadline(s, t);
            REQUIRE(wake >= t);
            if (wake == t) {
                CHECK_FALSE(plan(s, t).empty());
                continue;
            }
            const SupervisorActions now = decided(s, t);
            for (auto u = t; u < wake && u <= t0 + 80s; u += 250ms) CHECK(decided(s, u) == now);
            CHECK(decided(s, wake - 1ns) == now);
            if (wake < t + 1h) CHECK(decided(s, wake) != decided(s, wake - 1ns));
        }
    }
}

TEST_CASE("a waiting pool's workers are no deadline, a held slot's end is one")
{
    Shell shell = running(Strategy::one, {plan_of({{PlanStep::Kind::restart, 5s}})}, 1);
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    CHECK(next_deadline(shell.sup, t0 + 1s) == t0 + 6s);
}
