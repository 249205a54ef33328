// The strategy, in the manner of OTP's supervisor_SUITE: every strategy x restart type x exit
// kind x position of the pool, table-driven; then the order of the rolling restarts it asks for.
#include "supervisor_fixture.hpp"

#include <herd/core/supervisor.hpp>

#include <doctest/doctest.h>

#include <set>

using namespace herd;
using namespace herd::test;

namespace {

enum class Kind { exit0, exit1, signal, no_heartbeat, boot_timeout };

const char* name(Kind k)
{
    switch (k) {
    case Kind::exit0: return "exit 0";
    case Kind::exit1: return "exit 1";
    case Kind::signal: return "signal";
    case Kind::no_heartbeat: return "no heartbeat";
    case Kind::boot_timeout: return "boot timeout";
    }
    return "";
}

// Does the exit need a restart, by restart type (rows) and exit kind (columns)?
const bool needs[3][5] = {
    // exit 0, exit 1, signal, no heartbeat, boot timeout
    {true, true, true, true, true},      // permanent
    {false, true, true, true, true},     // transient
    {false, false, false, false, false}, // temporary
};

// The other pools a restart touches, by strategy (rows) and the exit's pool (columns), of three
const std::set<std::size_t> touched[3][3] = {
    {{}, {}, {}},                  // one
    {{1, 2}, {2}, {}},             // rest
    {{1, 2}, {0, 2}, {0, 1}},      // all
};

// Make one worker of pool `pool` exit this way; returns its slot
int make_exit(Shell& shell, std::size_t pool, Kind kind, TimePoint now)
{
    int pid = shell.pids(pool)[1];
    int slot = 1;
    switch (kind) {
    case Kind::exit0: shell.exit(pid, exited(0), now); break;
    case Kind::exit1: shell.exit(pid, exited(1), now); break;
    case Kind::signal: shell.exit(pid, signalled(SIGSEGV), now); break;
    case Kind::no_heartbeat:
        shell.on(pool, Signalled{pid, SIGQUIT, Reason::no_heartbeat}, now);
        shell.exit(pid, exited(0), now);
        break;
    case Kind::boot_timeout:
        // A third worker that never becomes ready
        apply(shell.sup, ScalePool{pool, {3, 0}}, now);
        shell.ready_at_once = false;
        shell.step(now);
        shell.ready_at_once = true;
        pid = shell.pids(pool).back();
        slot = 2;
        shell.on(pool, Signalled{pid, SIGKILL, Reason::boot_timeout}, now);
        shell.exit(pid, signalled(SIGKILL), now);
        break;
    }
    return slot;
}

std::set<std::size_t> stopping(const Supervisor& sup)
{
    std::set<std::size_t> out;
    for (std::size_t i = 0; i < sup.pools.size(); ++i)
        if (sup.pools[i].stage == PoolStage::stopping || sup.pools[i].stage == PoolStage::stopped) out.insert(i);
    return out;
}

}  // namespace

TEST_CASE("strategy x restart type x exit kind x position: which slot refills, which pools roll, which stop")
{
    const Strategy strategies[] = {Strategy::one, Strategy::rest, Strategy::all};
    const RestartType types[] = {RestartType::permanent, RestartType::transient, RestartType::temporary};
    const Kind kinds[] = {Kind::exit0, Kind::exit1, Kind::signal, Kind::no_heartbeat, Kind::boot_timeout};
    int rows = 0;
    for (int s = 0; s < 3; ++s)
        for (int r = 0; r < 3; ++r)
            for (int k = 0; k < 5; ++k)
                for (std::size_t at = 0; at < 3; ++at)
                    for (const RestartType others : {RestartType::permanent, RestartType::temporary}) {
                        CAPTURE(s);
                        CAPTURE(r);
                        CAPTURE(name(kinds[k]));
                        CAPTURE(at);
                        CAPTURE(int(others));
                        std::vector<Supervision> sv(3, typed(others));
                        sv[at].restart = types[r];
                        Shell shell = running(strategies[s], sv);
                        const unsigned before = shell.sup.pools[at].state.target + (kinds[k] == Kind::boot_timeout);
                        const int slot = make_exit(shell, at, kinds[k], t0 + 1s);
                        const SupervisorActions actions = plan(shell.sup, t0 + 1s);
                        CAPTURE(actions);

                        const bool restart = needs[r][k];
                        const std::set<std::size_t> expected = restart ? touched[s][at] : std::set<std::size_t>{};
                        // The slot refills, or closes
                        if (restart) {
                            CHECK(only<Spawn>(actions, at) == std::vector<Spawn>{{slot, 1}});
                            CHECK(shell.sup.pools[at].state.target == before);
                        } else {
                            CHECK(only<Spawn>(actions, at).empty());
                            CHECK(shell.sup.pools[at].state.target == before - 1);
                        }
                        // Touched pools roll, or stop when temporary; no other pool does either
                        const auto rolling = restarting(shell.sup);
                        const std::set<std::size_t> rolled(rolling.begin(), rolling.end());
                        if (others == RestartType::permanent) {
                            CHECK(rolled == expected);
                            CHECK(stopping(shell.sup).empty());
                        } else {
                            CHECK(rolled.empty());
                            CHECK(stopping(shell.sup) == expected);
                            for (std::size_t j : expected) CHECK(only<Retire>(actions, j).size() == 2);
                        }
                        CHECK_FALSE(shell.sup.failed);
                        ++rows;
                    }
    CHECK(rows == 270);
}

TEST_CASE("rest: the exit's pool refills first, then each later pool rolls in order, new workers ready before old retire")
{
    Shell shell = running(Strategy::rest, {{}, {}, {}});
    shell.ready_at_once = false;
    const int crashed = shell.pids(0)[0];
    shell.exit(crashed, signalled(SIGSEGV), t0 + 1s);
    CHECK(restarting(shell.sup) == std::vector<std::size_t>{1, 2});
    auto actions = shell.step(t0 + 1s);
    CHECK(only<Spawn>(actions, 0) == std::vector<Spawn>{{0, 1}});
    CHECK(only<Spawn>(actions, 1).empty());   // a is not back at its target yet
    CHECK_FALSE(shell.sup.pools[1].state.rollout);

    shell.on(0, HeartbeatSeen{shell.pids(0).back(), std::nullopt}, t0 + 2s);
    REQUIRE(shell.sup.pools[1].state.rollout);
    CHECK(shell.sup.pools[1].state.rollout->kind == Reason::restart);
    CHECK_FALSE(shell.sup.pools[2].state.rollout);
    actions = shell.step(t0 + 2s);
    CHECK(only<Spawn>(actions, 1) == std::vector<Spawn>{{0, 2}});   // one spare: one at a time
    CHECK(only<Retire>(actions, 1).empty());                         // nobody leaves before a new one is ready
    CHECK(only<Spawn>(actions, 2).empty());

    shell.ready_at_once = true;
    shell.on(1, HeartbeatSeen{shell.pids(1).back(), std::nullopt}, t0 + 3s);
    shell.settle(t0 + 3s);
    REQUIRE(only<RolloutDone>(shell.done, 1).size() == 1);
    REQUIRE(only<RolloutDone>(shell.done, 2).size() == 1);
    CHECK(only<RolloutDone>(shell.done, 1)[0].kind == Reason::restart);
    for (const auto& r : only<Retire>(shell.done, 1)) CHECK(r.reason == Reason::restart);
    CHECK(shell.sup.pools[0].state.generation == 1);
    CHECK(shell.sup.pools[1].state.generation == 2);
    CHECK(shell.sup.pools[2].state.generation == 2);
    // c rolled only after b was done
    std::size_t b_done = 0, c_first = 0;
    for (std::size_t i = 0; i < shell.done.size(); ++i) {
        if (!only<RolloutDone>({shell.done[i]}, 1).empty()) b_done = i;
        if (!c_first && !only<Spawn>({shell.done[i]}, 2).empty()) c_first = i;
    }
    CHECK(b_done < c_first);
    CHECK(restarting(shell.sup).empty());
}

TEST_CASE("all: every other pool rolls, the pools ahead of the exit's pool without waiting for it")
{
    Shell shell = running(Strategy::all, {{}, {}, {}});
    shell.ready_at_once = false;
    shell.exit(shell.pids(1)[0], exited(1), t0 + 1s);
    CHECK(shell.sup.pools[0].state.rollout);
    CHECK_FALSE(shell.sup.pools[1].state.rollout);
    CHECK(shell.sup.pools[2].restart_pending);
}

TEST_CASE("a pool not started yet, stopped, or already rolling is not restarted")
{
    std::vector<Pool> pools{make_pool("a", pool_options(1)), make_pool("b", pool_options(1)),
                            make_pool("c", pool_options(1)), make_pool("d", pool_options(1))};
    Shell shell(make_supervisor(Strategy::all, std::move(pools)));
    shell.settle(t0);
    apply(shell.sup, StopPool{1}, t0 + 1s);
    shell.settle(t0 + 1s);
    apply(shell.sup, PoolEvent{2, RolloutStarted{Reason::reload}}, t0 + 1s);
    shell.exit(shell.pids(0)[0], exited(1), t0 + 2s);
    CHECK(shell.sup.pools[1].stage == PoolStage::stopped);
    CHECK(shell.sup.pools[2].state.rollout->kind == Reason::reload);
    CHECK(restarting(shell.sup) == std::vector<std::size_t>{3});

    // Not started yet: d waits for c, which waits for a worker that never becomes ready.
    std::vector<Pool> more{make_pool("a", pool_options(1)), make_pool("b", pool_options(1))};
    Shell later(make_supervisor(Strategy::all, std::move(more)));
    later.ready_at_once = false;
    later.step(t0);
    later.on(0, Spawned{500, 0, 1}, t0);
    later.exit(500, exited(1), t0 + 1s);
    CHECK(later.sup.pools[1].stage == PoolStage::waiting);
    CHECK(restarting(later.sup).empty());
}

TEST_CASE("a temporary pool the strategy stopped stays stopped, until the operator starts it")
{
    Shell shell = running(Strategy::rest, {{}, typed(RestartType::temporary)});
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    shell.settle(t0 + 1s);
    CHECK(shell.sup.pools[1].stage == PoolStage::stopped);
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 2s);
    shell.settle(t0 + 2s);
    CHECK(shell.sup.pools[1].stage == PoolStage::stopped);
    CHECK(shell.pids(1).empty());
    apply(shell.sup, StartPool{1}, t0 + 3s);
    shell.settle(t0 + 3s);
    CHECK(shell.sup.pools[1].stage == PoolStage::running);
    CHECK(shell.pids(1).size() == 2);
}

TEST_CASE("a restart rollout whose new workers never get ready fails, and the pool goes back to its generation")
{
    Shell shell = running(Strategy::rest, {{}, {}});
    shell.ready_at_once = false;
    shell.exit(shell.pids(0)[0], signalled(SIGSEGV), t0 + 1s);
    shell.step(t0 + 1s);
    shell.on(0, HeartbeatSeen{shell.pids(0).back(), std::nullopt}, t0 + 1s);
    shell.step(t0 + 1s);   // b's new worker boots, and never gets ready
    for (std::size_t pool : {0, 1})
        for (const auto& w : shell.sup.pools[pool].state.workers)
            if (w.ready()) shell.on(pool, HeartbeatSeen{w.pid, std::nullopt}, t0 + 15s);
    const auto actions = shell.step(t0 + 21s);   // --upgrade-timeout 20s
    CAPTURE(actions);
    const auto failed = only<RolloutFailed>(actions, 1);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].kind == Reason::restart);
    CHECK(shell.sup.pools[1].state.generation == 1);
}
