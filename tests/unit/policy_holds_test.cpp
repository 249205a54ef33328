// Held slots (PoolState::held): a slot the supervisor of several pools leaves empty on purpose,
// until a time or until released, and a pool that answers its restart limit elsewhere.
#include <herd/core/policy.hpp>

#include <doctest/doctest.h>

#include <csignal>

using namespace herd;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

Options make_options(unsigned workers)
{
    Options o;
    o.workers = workers;
    o.spare = 0;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    o.restart_limit = {2, 10s};
    return o;
}

PoolState ready_pool(const Options& o, unsigned target)
{
    PoolState s;
    s.target = target;
    for (unsigned i = 0; i < target; ++i) {
        apply(s, Spawned{100 + int(i), int(i), 1}, o, t0);
        apply(s, HeartbeatSeen{100 + int(i), std::nullopt}, o, t0);
    }
    return s;
}

}  // namespace

TEST_CASE("a slot held until a time is refilled then, and no other slot stands in for it")
{
    const auto o = make_options(3);
    PoolState s = ready_pool(o, 3);
    apply(s, WorkerExited{101, SIGSEGV}, o, t0 + 1s);
    s.held[1] = t0 + 6s;
    CHECK(plan(s, o, t0 + 1s).empty());
    CHECK(plan(s, o, t0 + 5999ms).empty());
    CHECK(next_deadline(s, o, t0 + 1s) == t0 + 6s);
    CHECK(deadlines(s, o).hold_end == t0 + 6s);
    CHECK(plan(s, o, t0 + 6s) == Actions{Spawn{1, 1}});
    apply(s, Spawned{200, 1, 1}, o, t0 + 6s);
    CHECK(s.held.empty());
}

TEST_CASE("a slot held without end stays empty, other missing slots are refilled, and it is no deadline")
{
    auto o = make_options(3);
    PoolState s = ready_pool(o, 3);
    apply(s, WorkerExited{100, SIGSEGV}, o, t0 + 1s);
    apply(s, WorkerExited{101, SIGSEGV}, o, t0 + 1s);
    s.held[0] = TimePoint::max();
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{1, 1}});
    CHECK(deadlines(s, o).hold_end == std::nullopt);
    CHECK(next_deadline(s, o, t0 + 1s) == t0 + 10s);   // 102's silence only
    // A larger target fills the next free slot, not the held one.
    apply(s, Scale{4, 0}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s) == Actions{Spawn{1, 1}, Spawn{3, 1}});
    s.held.clear();
    CHECK(plan(s, o, t0 + 2s) == Actions{Spawn{0, 1}, Spawn{1, 1}, Spawn{3, 1}});
}

TEST_CASE("a hold that has passed but cannot be acted on does not wake the manager again")
{
    auto o = make_options(2);
    PoolState s = ready_pool(o, 2);
    apply(s, WorkerExited{101, SIGSEGV}, o, t0 + 1s);
    s.held[1] = t0 + 2s;
    apply(s, BackoffStarted{t0 + 30s, 0}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 3s).empty());
    CHECK(next_deadline(s, o, t0 + 3s) == t0 + 10s);   // 100's silence comes before the backoff's end
}

TEST_CASE("a pool that does not back off neither backs off nor gives up past the restart limit")
{
    auto o = make_options(1);
    PoolState s;
    s.target = 1;
    s.backs_off = false;
    for (int pid = 100; pid < 110; ++pid) {
        apply(s, Spawned{pid, 0, 1}, o, t0);
        apply(s, WorkerExited{pid, 1 << 8}, o, t0);
    }
    CHECK_FALSE(gives_up(s, o, t0));
    CHECK(plan(s, o, t0) == Actions{Spawn{0, 1}});
}

TEST_CASE("a restart is named as such")
{
    CHECK(to_string(Reason::restart) == "restart");
}

TEST_CASE("a held slot above a shrunk target keeps no lower slot empty")
{
    auto o = make_options(3);
    PoolState s = ready_pool(o, 3);
    apply(s, WorkerExited{102, SIGSEGV}, o, t0 + 1s);
    s.held[2] = TimePoint::max();
    apply(s, Scale{2, 0}, o, t0 + 2s);
    apply(s, WorkerExited{101, SIGSEGV}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s) == Actions{Spawn{1, 1}});
}

TEST_CASE("a rollout replaces the workers of a pool with a slot held until released, and is done without it")
{
    auto o = make_options(2);
    o.upgrade_timeout = 60s;
    PoolState s = ready_pool(o, 2);
    apply(s, WorkerExited{100, SIGKILL}, o, t0 + 1s);
    s.held[0] = TimePoint::max();
    apply(s, RolloutStarted{Reason::upgrade}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s) == Actions{Spawn{1, 2}});
    apply(s, Spawned{200, 1, 2}, o, t0 + 2s);
    apply(s, HeartbeatSeen{200, std::nullopt}, o, t0 + 3s);
    // The new worker takes the old one's place; the held slot is no reason to keep the old one.
    CHECK(plan(s, o, t0 + 3s) == Actions{Retire{101, Reason::upgrade}});
    apply(s, Signalled{101, SIGQUIT, Reason::upgrade}, o, t0 + 3s);
    apply(s, WorkerExited{101, 0}, o, t0 + 4s);
    CHECK(plan(s, o, t0 + 4s) == Actions{RolloutDone{Reason::upgrade, 2, 2s}});
    apply(s, RolloutEnded{false}, o, t0 + 4s);
    CHECK(s.held.count(0) == 1);
    CHECK(plan(s, o, t0 + 4s).empty());
}
