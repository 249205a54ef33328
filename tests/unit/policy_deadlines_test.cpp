// One deadline computation for plan() and next_deadline(): on a grid of times, the manager
// wakes exactly when plan() has something new to decide, never for nothing, never too late.
#include <herd/core/policy.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using namespace herd;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

Options base_options(unsigned workers)
{
    Options o;
    o.workers = workers;
    o.spare = 0;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    o.graceful_timeout = 30s;
    o.kill_timeout = 5s;
    o.upgrade_timeout = 20s;
    o.restart_limit = {3, 10s};
    return o;
}

void add_ready(PoolState& s, const Options& o, int pid, int slot, TimePoint at, unsigned generation = 1)
{
    apply(s, Spawned{pid, slot, generation}, o, at);
    apply(s, HeartbeatSeen{pid, std::nullopt}, o, at);
}

// What plan() decides, without the durations that only report how late it is.
Actions decided(const PoolState& s, const Options& o, TimePoint now)
{
    Actions out = plan(s, o, now);
    for (auto& a : out) {
        if (auto* x = std::get_if<Retire>(&a)) x->elapsed = {};
        if (auto* x = std::get_if<Kill>(&a)) x->elapsed = {};
        if (auto* x = std::get_if<DeclareReady>(&a)) x->ran = {};
        if (auto* x = std::get_if<RolloutDone>(&a)) x->took = {};
    }
    return out;
}

struct Case {
    std::string name;
    Options options;
    PoolState state;
};

Case make_case(std::string name, unsigned target, const std::function<void(Options&)>& configure,
               const std::function<void(PoolState&, const Options&)>& build)
{
    Case c{std::move(name), base_options(target), {}};
    configure(c.options);
    c.state.target = target;
    build(c.state, c.options);
    return c;
}

void none(Options&) {}

std::vector<Case> cases()
{
    std::vector<Case> out;
    out.push_back(make_case("booting next to a ready worker", 2, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, Spawned{101, 1, 1}, o, t0 + 3s);
    }));
    out.push_back(make_case("ready workers beating at different times", 2, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        add_ready(s, o, 101, 1, t0 + 4s);
        apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 7s);
    }));
    out.push_back(make_case("retiring after TTOU", 1, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        add_ready(s, o, 101, 1, t0);
        apply(s, Signalled{101, SIGQUIT, Reason::scale_down}, o, t0 + 2s);
    }));
    out.push_back(make_case("killed after the boot timeout, waiting to be reaped", 1, none,
                            [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, Spawned{101, 1, 1}, o, t0);
        apply(s, Signalled{101, SIGKILL, Reason::boot_timeout}, o, t0 + 30s);
    }));
    out.push_back(make_case("fast shutdown, TERM sent", 2, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        add_ready(s, o, 101, 1, t0);
        apply(s, StopRequested{false}, o, t0 + 1s);
        apply(s, Signalled{100, SIGTERM, Reason::shutdown}, o, t0 + 1s);
        apply(s, Signalled{101, SIGTERM, Reason::shutdown}, o, t0 + 2s);
    }));
    out.push_back(make_case("graceful shutdown, QUIT sent", 1, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, StopRequested{true}, o, t0 + 1s);
        apply(s, Signalled{100, SIGQUIT, Reason::shutdown}, o, t0 + 1s);
    }));
    out.push_back(make_case("backing off after crashes", 2, none, [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        for (int pid = 200; pid < 204; ++pid) {
            apply(s, Spawned{pid, 1, 1}, o, t0 + 1s);
            apply(s, WorkerExited{pid, SIGSEGV}, o, t0 + 1s);
        }
        const auto backoffs = plan(s, o, t0 + 1s);
        REQUIRE(backoffs.size() == 1);
        const auto& b = std::get<BackOff>(backoffs[0]);
        apply(s, BackoffStarted{t0 + 1s + b.delay, b.level}, o, t0 + 1s);
    }));
    out.push_back(make_case("rollout running, new generation booting", 1, [](Options& o) { o.spare = 1; },
                            [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, RolloutStarted{Reason::reload}, o, t0 + 1s);
        apply(s, Spawned{200, 1, 2}, o, t0 + 1s);
    }));
    out.push_back(make_case("rollout running, no boot timeout", 1, [](Options& o) { o.spare = 1; o.boot_timeout = 0s; },
                            [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, RolloutStarted{Reason::upgrade}, o, t0 + 1s);
        apply(s, Spawned{200, 1, 2}, o, t0 + 1s);
    }));
    out.push_back(make_case("exec mode, ready after running 2s", 2,
                            [](Options& o) { o.heartbeat = HeartbeatMode::automatic; o.ready_after = 2s; },
                            [](PoolState& s, const Options& o) {
        apply(s, Spawned{100, 0, 1}, o, t0);
        apply(s, Spawned{101, 1, 1}, o, t0 + 1500ms);
    }));
    out.push_back(make_case("exec mode, a record started the watch", 1,
                            [](Options& o) { o.heartbeat = HeartbeatMode::automatic; o.ready_after = 2s; },
                            [](PoolState& s, const Options& o) {
        apply(s, Spawned{100, 0, 1}, o, t0);
        apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 500ms);
    }));
    out.push_back(make_case("heartbeat off", 2, [](Options& o) { o.heartbeat_timeout = 0s; },
                            [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, Spawned{101, 1, 1}, o, t0 + 1s);
    }));
    out.push_back(make_case("max age, a spare to replace it first", 1,
                            [](Options& o) { o.spare = 1; o.max_worker_age = 8s; o.max_worker_age_jitter = 0; },
                            [](PoolState& s, const Options& o) { add_ready(s, o, 100, 0, t0); }));
    out.push_back(make_case("max age passed, its replacement booting", 1,
                            [](Options& o) { o.spare = 1; o.max_worker_age = 8s; o.max_worker_age_jitter = 0; },
                            [](PoolState& s, const Options& o) {
        add_ready(s, o, 100, 0, t0);
        apply(s, Spawned{101, 1, 1}, o, t0 + 8s);
    }));
    out.push_back(make_case("max age, no spare", 1, [](Options& o) { o.max_worker_age = 8s; o.max_worker_age_jitter = 0; },
                            [](PoolState& s, const Options& o) { add_ready(s, o, 100, 0, t0); }));
    return out;
}

}  // namespace

TEST_CASE("next_deadline wakes exactly when plan has something new to decide, on a grid of times")
{
    for (const Case& c : cases()) {
        CAPTURE(c.name);
        const auto& s = c.state;
        const auto& o = c.options;
        for (auto t = t0; t <= t0 + 70s; t += 250ms) {
            CAPTURE((t - t0).count());
            const TimePoint wake = next_deadline(s, o, t);
            REQUIRE(wake >= t);
            if (wake == t) {
                // Woken now: only for a decision due now.
                CHECK_FALSE(plan(s, o, t).empty());
                continue;
            }
            // Never late: nothing new to decide before the wake-up ...
            const Actions now = decided(s, o, t);
            for (auto u = t; u < wake && u <= t0 + 80s; u += 250ms) CHECK(decided(s, o, u) == now);
            CHECK(decided(s, o, wake - 1ns) == now);
            // ... and never for nothing: a decision changes exactly then, unless the pool is idle.
            if (wake < t + 1h) CHECK(decided(s, o, wake) != decided(s, o, wake - 1ns));
        }
    }
}

TEST_CASE("every deadline of a worker, named")
{
    auto o = base_options(1);
    o.max_worker_age = 100s;
    o.max_worker_age_jitter = 0;
    PoolState s;
    s.target = 1;
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(deadlines(*s.find(100), o) == WorkerDeadlines{.escalate = std::nullopt, .boot = t0 + 30s,
                                                        .silence = std::nullopt, .ready = std::nullopt, .max_age = t0 + 100s});
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 1s);
    CHECK(deadlines(*s.find(100), o) == WorkerDeadlines{.escalate = std::nullopt, .boot = std::nullopt,
                                                        .silence = t0 + 11s, .ready = std::nullopt, .max_age = t0 + 100s});
    apply(s, Signalled{100, SIGQUIT, Reason::scale_down}, o, t0 + 2s);
    CHECK(deadlines(*s.find(100), o) == WorkerDeadlines{.escalate = t0 + 32s, .boot = std::nullopt,
                                                        .silence = std::nullopt, .ready = std::nullopt, .max_age = std::nullopt});
    apply(s, Signalled{100, SIGTERM, Reason::shutdown}, o, t0 + 3s);
    CHECK(deadlines(*s.find(100), o) == WorkerDeadlines{.escalate = t0 + 8s, .boot = std::nullopt,
                                                        .silence = std::nullopt, .ready = std::nullopt, .max_age = std::nullopt});
    apply(s, Signalled{100, SIGKILL, Reason::kill_timeout}, o, t0 + 8s);
    CHECK(deadlines(*s.find(100), o) == WorkerDeadlines{});

    o.heartbeat = HeartbeatMode::off;
    o.ready_after = 2s;
    apply(s, Spawned{101, 1, 1}, o, t0 + 10s);
    CHECK(deadlines(*s.find(101), o) == WorkerDeadlines{.escalate = std::nullopt, .boot = t0 + 40s,
                                                        .silence = std::nullopt, .ready = t0 + 12s, .max_age = t0 + 110s});

    CHECK(deadlines(s, o) == PoolDeadlines{});
    apply(s, BackoffStarted{t0 + 20s, 0}, o, t0 + 10s);
    apply(s, RolloutStarted{Reason::upgrade, t0 + 5s}, o, t0 + 10s);
    CHECK(deadlines(s, o) == PoolDeadlines{t0 + 20s, t0 + 5s + o.upgrade_timeout});
}

TEST_CASE("a deadline that has passed and asks for nothing does not wake the manager again")
{
    auto o = base_options(1);
    o.spare = 1;
    o.max_worker_age = 8s;
    o.max_worker_age_jitter = 0;
    o.boot_timeout = 0s;
    PoolState s;
    s.target = 1;
    add_ready(s, o, 100, 0, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 9s);
    // Too old, its replacement boots: nothing to do until it is ready (an event), or it is too
    // old itself, or 100 is silent.
    apply(s, Spawned{101, 1, 1}, o, t0 + 8s);
    CHECK(plan(s, o, t0 + 9s).empty());
    CHECK(next_deadline(s, o, t0 + 9s) == t0 + 16s);
    // A backoff that ended long ago is no deadline either.
    apply(s, BackoffStarted{t0 + 2s, 0}, o, t0 + 1s);
    CHECK(next_deadline(s, o, t0 + 9s) == t0 + 16s);
}
