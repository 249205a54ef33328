// One pool named `main`, strategy one, no plan, permanent, on_restart_limit backoff: the
// supervisor decides exactly as today's PoolState and plan() do. The same seeded sequences of
// events run through both; at every step the pool's actions, its state and the next deadline
// must be the same (the supervisor's stage actions aside).
#include "supervisor_fixture.hpp"

#include <herd/core/policy.hpp>
#include <herd/core/supervisor.hpp>

#include <doctest/doctest.h>

#include <random>

using namespace herd;
using namespace herd::test;

namespace {

Options single_options()
{
    Options o = pool_options(3);
    o.max_requests = 40;
    o.max_requests_jitter = 5;
    o.max_worker_age = 25s;
    o.max_worker_memory = 1000;
    o.max_worker_memory_window = 3s;
    return o;
}

// Today's actions, and the supervisor's for its one pool (stage actions reported, not compared)
struct Both {
    Options o = single_options();
    PoolState state;
    Supervisor sup = make_supervisor(Strategy::one, {make_pool("main", single_options())});
    int next_pid = 100;
    bool broken = false;   // a broken deploy: workers crash at boot, none ever beats

    Both() { state.target = o.workers; }

    void event(const Event& e, TimePoint now)
    {
        apply(state, e, o, now);
        if (const auto* stop = std::get_if<StopRequested>(&e)) apply(sup, ShutdownRequested{stop->graceful}, now);
        else apply(sup, PoolEvent{0, e}, now);
    }

    // The supervisor's actions for pool 0, and its Exit; acknowledges its stage actions
    Actions supervisor_plan(TimePoint now, bool& failed)
    {
        Actions out;
        for (const auto& a : plan(sup, now)) {
            if (const auto* x = std::get_if<PoolAction>(&a)) out.push_back(x->action);
            else if (const auto* x = std::get_if<Exit>(&a)) out.push_back(*x);
            else if (std::holds_alternative<PoolFailed>(a)) failed = true;
            if (std::holds_alternative<PoolStarted>(a)) apply(sup, PoolReported{0, PoolStage::starting}, now);
            if (std::holds_alternative<PoolReady>(a)) apply(sup, PoolReported{0, PoolStage::running}, now);
            if (std::holds_alternative<PoolStopped>(a)) apply(sup, PoolReported{0, PoolStage::stopped}, now);
        }
        return out;
    }

    void execute(const Action& action, TimePoint now)
    {
        if (const auto* a = std::get_if<Spawn>(&action)) event(Spawned{next_pid++, a->slot, a->generation}, now);
        else if (const auto* a = std::get_if<Retire>(&action)) event(Signalled{a->pid, SIGQUIT, a->reason}, now);
        else if (const auto* a = std::get_if<Kill>(&action)) event(Signalled{a->pid, SIGKILL, a->reason}, now);
        else if (const auto* a = std::get_if<Terminate>(&action)) event(Signalled{a->pid, SIGTERM, Reason::shutdown}, now);
        else if (const auto* a = std::get_if<BackOff>(&action)) event(BackoffStarted{now + a->delay, a->level}, now);
        else if (std::holds_alternative<RolloutDone>(action)) event(RolloutEnded{false}, now);
        else if (std::holds_alternative<RolloutFailed>(action)) event(RolloutEnded{true}, now);
        else if (const auto* a = std::get_if<DeclareReady>(&action)) event(HeartbeatSeen{a->pid, std::nullopt, false}, now);
    }

    // Something the world does: a worker beats, exits, grows; the operator scales, reloads, stops
    void world(std::mt19937& rng, TimePoint now)
    {
        const auto pick = [&](int n) { return int(rng() % unsigned(n)); };
        const int what = pick(20);
        if (broken && !state.workers.empty()) {
            event(WorkerExited{state.workers.front().pid, exited(1)}, now);
        } else if (what < 12 && !state.workers.empty()) {
            const WorkerRecord& w = state.workers[std::size_t(pick(int(state.workers.size())))];
            const int statuses[] = {exited(0), exited(1), signalled(SIGSEGV), signalled(SIGKILL), signalled(SIGQUIT)};
            switch (what) {
            case 0: case 1: case 2: event(HeartbeatSeen{w.pid, std::uint64_t(pick(50))}, now); break;
            case 3: case 4: event(WorkerExited{w.pid, statuses[pick(5)]}, now); break;
            case 5: event(WorkerExited{w.pid, w.leaving() ? exited(0) : statuses[pick(5)]}, now); break;
            case 6: event(MemorySampled{w.pid, std::uint64_t(pick(2000))}, now); break;
            case 7: event(HeartbeatMalformed{w.pid, std::uint64_t(pick(8)), 100}, now); break;
            case 8: event(SpawnFailed{pick(4)}, now); break;
            default: if (w.leaving()) event(WorkerExited{w.pid, exited(0)}, now); else event(HeartbeatSeen{w.pid, std::nullopt}, now);
            }
        } else if (what == 12) {
            event(Scale{std::nullopt, pick(3) - 1}, now);
        } else if (what == 13 && !state.rollout) {
            event(RolloutStarted{Reason::reload}, now);
        } else if (what == 14 && pick(4) == 0) {
            event(StopRequested{pick(2) == 0}, now);
        } else if (what == 15) {
            event(ManagerResumed{}, now);
        }
    }
};

}  // namespace

TEST_CASE("one pool under the supervisor plans, changes and sleeps exactly as today's pool, on seeded sequences")
{
    int exits = 0, failures = 0, compared = 0;
    for (unsigned seed = 1; seed <= 300; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        Both both;
        both.broken = seed % 10 == 0;
        TimePoint now = t0;
        const Duration steps[] = {0ms, 0ms, 250ms, 1s, 3s, 11s, 31s};
        for (int i = 0; i < 120; ++i) {
            CAPTURE(i);
            bool failed = false;
            const Actions today = plan(both.state, both.o, now);
            const Actions theirs = both.supervisor_plan(now, failed);
            const bool gave_up = !today.empty() && std::holds_alternative<Exit>(today.back()) &&
                                 std::get<Exit>(today.back()).code == 3;
            if (gave_up) {
                // Today's exit 3 at once; in the same plan the supervisor's pool fails (it is
                // stopped before the manager exits 3).
                CHECK(failed);
                CHECK(Actions(today.begin(), today.end() - 1) == theirs);
                ++failures;
                break;
            }
            REQUIRE_FALSE(failed);
            REQUIRE(today == theirs);
            CHECK(both.state == both.sup.pools[0].state);
            ++compared;
            if (!today.empty() && std::holds_alternative<Exit>(today.back())) {
                ++exits;
                break;
            }
            for (const auto& a : today) both.execute(a, now);
            bool unreported = false;
            for (const auto& a : plan(both.sup, now)) unreported = unreported || !std::holds_alternative<PoolAction>(a);
            if (!unreported && !both.sup.failed) CHECK(next_deadline(both.state, both.o, now) == next_deadline(both.sup, now));
            both.world(rng, now);
            now += steps[rng() % 7];
        }
    }
    // The sequences reach both ends, and compare many steps on the way
    MESSAGE("sequences ended by exit 0: " << exits << ", by a failed pool: " << failures << "; steps compared: " << compared);
    CHECK(exits > 10);
    CHECK(failures > 0);
    CHECK(compared > 10000);
}
