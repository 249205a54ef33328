// The supervision rules, one behaviour per test, on a fake clock: no fork, no sleep.
#include <herd/core/policy.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>

using namespace herd;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

Options make_options(unsigned workers = 1)
{
    Options o;
    o.workers = workers;
    o.spare = 0;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    o.graceful_timeout = 30s;
    o.kill_timeout = 5s;
    return o;
}

PoolState pool(unsigned target)
{
    PoolState s;
    s.target = target;
    return s;
}

// A worker spawned at `at` and ready (first heartbeat) at the same moment.
void add_ready(PoolState& s, const Options& o, int pid, int slot, TimePoint at, unsigned generation = 1)
{
    apply(s, Spawned{pid, slot, generation}, o, at);
    apply(s, HeartbeatSeen{pid, std::nullopt}, o, at);
}

template <class T>
std::vector<T> only(const Actions& actions)
{
    std::vector<T> out;
    for (const auto& a : actions)
        if (auto* x = std::get_if<T>(&a)) out.push_back(*x);
    return out;
}

}  // namespace

namespace doctest {
template <>
struct StringMaker<Actions> {
    static String convert(const Actions& actions)
    {
        std::string out = "{";
        for (const auto& a : actions) {
            std::visit([&](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, Spawn>) out += " Spawn{" + std::to_string(x.slot) + "}";
                else if constexpr (std::is_same_v<T, Retire>) out += " Retire{" + std::to_string(x.pid) + ", " + to_string(x.reason) + "}";
                else if constexpr (std::is_same_v<T, Kill>) out += " Kill{" + std::to_string(x.pid) + ", " + to_string(x.reason) + "}";
                else if constexpr (std::is_same_v<T, Terminate>) out += " Terminate{" + std::to_string(x.pid) + "}";
                else if constexpr (std::is_same_v<T, BackOff>) out += " BackOff{" + std::to_string(x.delay.count()) + "ms}";
                else if constexpr (std::is_same_v<T, Exit>) out += " Exit{" + std::to_string(x.code) + "}";
                else if constexpr (std::is_same_v<T, RolloutDone>) out += " RolloutDone{" + std::to_string(x.generation) + "}";
                else if constexpr (std::is_same_v<T, DeclareReady>) out += " DeclareReady{" + std::to_string(x.pid) + "}";
                else out += " RolloutFailed{" + x.why + "}";
            }, a);
        }
        return (out + " }").c_str();
    }
};
}  // namespace doctest

TEST_CASE("an empty pool spawns its target, one slot each")
{
    auto o = make_options(3);
    auto s = pool(3);
    CHECK(plan(s, o, t0) == Actions{Spawn{0, 1}, Spawn{1, 1}, Spawn{2, 1}});
}

TEST_CASE("a full pool of ready workers does nothing")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    CHECK(plan(s, o, t0 + 1s).empty());
}

TEST_CASE("a worker without heartbeats is stopped gracefully, then killed")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    CHECK(plan(s, o, t0 + 9s).empty());
    auto actions = plan(s, o, t0 + 10s);
    REQUIRE(only<Retire>(actions) == std::vector<Retire>{Retire{100, Reason::no_heartbeat, 10s}});
    apply(s, Signalled{100, SIGQUIT, Reason::no_heartbeat}, o, t0 + 10s);
    CHECK(only<Kill>(plan(s, o, t0 + 39s)).empty());
    CHECK(only<Kill>(plan(s, o, t0 + 40s)) == std::vector<Kill>{Kill{100, Reason::graceful_timeout, 30s}});
}

TEST_CASE("a hung worker is replaced at once, without waiting for it to leave")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    auto actions = plan(s, o, t0 + 10s);
    CHECK(only<Spawn>(actions) == std::vector<Spawn>{Spawn{0, 1}});
}

TEST_CASE("heartbeats keep a worker alive")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 8s);
    CHECK(plan(s, o, t0 + 17s).empty());
    CHECK_FALSE(plan(s, o, t0 + 18s).empty());
}

TEST_CASE("a worker that never becomes ready is killed after the boot timeout")
{
    auto o = make_options(1);
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(plan(s, o, t0 + 29s).empty());
    CHECK(only<Kill>(plan(s, o, t0 + 30s)) == std::vector<Kill>{Kill{100, Reason::boot_timeout, 30s}});
}

TEST_CASE("readiness is the first heartbeat")
{
    auto o = make_options(1);
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(ready_count(s) == 0);
    CHECK_FALSE(s.ever_ready);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 5ms);
    CHECK(ready_count(s) == 1);
    CHECK(s.workers[0].ready_at == t0 + 5ms);
    CHECK(s.ever_ready);
}

TEST_CASE("TTIN grows the pool and TTOU retires the highest slot gracefully")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, Scale{std::nullopt, +1}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Spawn{2, 1}});
    apply(s, Scale{std::nullopt, -2}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Retire{101, Reason::scale_down}});
}

TEST_CASE("TTOU prefers a booting worker, which serves nobody yet")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, Spawned{102, 2, 1}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Retire{102, Reason::scale_down}});
}

TEST_CASE("the target never goes below zero")
{
    auto o = make_options(0);
    auto s = pool(0);
    apply(s, Scale{std::nullopt, -1}, o, t0);
    CHECK(s.target == 0);
    CHECK(plan(s, o, t0).empty());
}

TEST_CASE("an exact scale sets the target")
{
    auto o = make_options(1);
    auto s = pool(1);
    apply(s, Scale{8u, 0}, o, t0);
    CHECK(s.target == 8);
    CHECK(only<Spawn>(plan(s, o, t0)).size() == 8);
}

TEST_CASE("an old worker is replaced before it retires when a spare is allowed")
{
    auto o = make_options(1);
    o.spare = 1;
    o.heartbeat_timeout = 0s;
    o.max_worker_age = 60s;
    o.max_worker_age_jitter = 0;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    CHECK(plan(s, o, t0 + 59s).empty());
    // Due: the replacement comes first, the old worker keeps serving
    CHECK(plan(s, o, t0 + 60s) == Actions{Spawn{0, 1}});
    apply(s, Spawned{101, 0, 1}, o, t0 + 60s);
    CHECK(plan(s, o, t0 + 60s).empty());
    // Replacement ready: now the old one retires
    apply(s, HeartbeatSeen{101, std::nullopt}, o, t0 + 61s);
    CHECK(plan(s, o, t0 + 61s) == Actions{Retire{100, Reason::max_age}});
}

TEST_CASE("without a spare an old worker retires first and capacity dips by one")
{
    auto o = make_options(1);
    o.heartbeat_timeout = 0s;
    o.max_worker_age = 60s;
    o.max_worker_age_jitter = 0;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    CHECK(plan(s, o, t0 + 60s) == Actions{Retire{100, Reason::max_age}, Spawn{0, 1}});
}

TEST_CASE("max age is jittered upward by at most the jitter fraction")
{
    auto o = make_options(1);
    o.max_worker_age = 100s;
    o.max_worker_age_jitter = 0.1;
    auto s = pool(64);
    for (int i = 0; i < 64; ++i) apply(s, Spawned{100 + i, i, 1}, o, t0);
    Duration lo = 1000s, hi = 0s;
    for (const auto& w : s.workers) {
        CHECK(w.age_limit >= 100s);
        CHECK(w.age_limit <= 110s);
        lo = std::min(lo, w.age_limit);
        hi = std::max(hi, w.age_limit);
    }
    CHECK(hi - lo > 1s);   // spread out, not all the same
}

TEST_CASE("a worker that reported max requests is recycled")
{
    auto o = make_options(1);
    o.max_requests = 100;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, HeartbeatSeen{100, 99}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s).empty());
    apply(s, HeartbeatSeen{100, 100}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s) == Actions{Retire{100, Reason::max_requests}, Spawn{0, 1}});
}

TEST_CASE("max requests jitter stays within its bound")
{
    auto o = make_options(1);
    o.max_requests = 1000;
    o.max_requests_jitter = 50;
    auto s = pool(32);
    for (int i = 0; i < 32; ++i) apply(s, Spawned{100 + i, i, 1}, o, t0);
    for (const auto& w : s.workers) {
        CHECK(w.request_limit >= 1000);
        CHECK(w.request_limit <= 1050);
    }
}

TEST_CASE("graceful shutdown sends QUIT to every worker once, then exits when all are gone")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, StopRequested{true}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Retire{100, Reason::shutdown}, Retire{101, Reason::shutdown}});
    apply(s, Signalled{100, SIGQUIT, Reason::shutdown}, o, t0);
    apply(s, Signalled{101, SIGQUIT, Reason::shutdown}, o, t0);
    CHECK(plan(s, o, t0 + 1s).empty());
    apply(s, WorkerExited{100, 0}, o, t0 + 1s);
    apply(s, WorkerExited{101, 0}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Exit{0}});
}

TEST_CASE("graceful shutdown kills workers still running after the graceful timeout")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, StopRequested{true}, o, t0);
    apply(s, Signalled{100, SIGQUIT, Reason::shutdown}, o, t0);
    CHECK(plan(s, o, t0 + 30s) == Actions{Kill{100, Reason::graceful_timeout, 30s}});
}

TEST_CASE("fast shutdown sends TERM, then KILL after the kill timeout")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, StopRequested{false}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Terminate{100}});
    apply(s, Signalled{100, SIGTERM, Reason::shutdown}, o, t0);
    CHECK(plan(s, o, t0 + 4s).empty());
    CHECK(plan(s, o, t0 + 5s) == Actions{Kill{100, Reason::kill_timeout, 5s}});
}

TEST_CASE("a fast shutdown overrides a graceful one in progress")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, StopRequested{true}, o, t0);
    apply(s, Signalled{100, SIGQUIT, Reason::shutdown}, o, t0);
    apply(s, StopRequested{false}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Terminate{100}});
    apply(s, StopRequested{true}, o, t0 + 2s);
    CHECK(s.phase == Phase::stopping_fast);
}

TEST_CASE("no worker is spawned while stopping")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    apply(s, StopRequested{true}, o, t0);
    CHECK(only<Spawn>(plan(s, o, t0)).empty());
}

TEST_CASE("a crashed worker is replaced in its slot")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, WorkerExited{100, SIGKILL}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{0, 1}});
    CHECK(s.failures.size() == 1);
}

TEST_CASE("too many crashes back off instead of fork-looping, once per new failure")
{
    auto o = make_options(1);
    o.restart_limit = {3, 10s};
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    int pid = 200;
    auto now = t0;
    for (int i = 0; i < 4; ++i) {
        apply(s, Spawned{pid, 0, 1}, o, now);
        apply(s, WorkerExited{pid++, SIGSEGV}, o, now += 10ms);
    }
    apply(s, WorkerExited{100, SIGSEGV}, o, now);
    auto actions = plan(s, o, now);
    auto backoffs = only<BackOff>(actions);
    REQUIRE(backoffs.size() == 1);
    CHECK(backoffs[0].failures == 5);
    CHECK(backoffs[0].delay >= backoff_base * 3 / 4);
    CHECK(backoffs[0].delay <= backoff_base * 5 / 4);
    CHECK(only<Spawn>(actions).empty());
    apply(s, BackoffStarted{now + backoffs[0].delay, backoffs[0].level}, o, now);
    // During the backoff: nothing; after it: one spawn, no new backoff without a new failure
    CHECK(plan(s, o, now + backoffs[0].delay - 1ms).empty());
    CHECK(plan(s, o, now + backoffs[0].delay) == Actions{Spawn{0, 1}});
}

TEST_CASE("a failed spawn of a pool that served backs off at once, on the ladder, and a spawn that works ends it")
{
    auto o = make_options(2);
    o.restart_limit = {10, 10s};
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, WorkerExited{101, SIGKILL}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{1, 1}});
    // fork fails (EAGAIN): no second attempt in the same instant, whatever the restart limit says
    auto now = t0 + 1s;
    apply(s, SpawnFailed{1}, o, now);
    auto actions = plan(s, o, now);
    auto backoffs = only<BackOff>(actions);
    REQUIRE(backoffs.size() == 1);
    CHECK(backoffs[0].spawn_failed);
    CHECK(backoffs[0].level == 0);
    CHECK(only<Spawn>(actions).empty());
    apply(s, BackoffStarted{now + backoffs[0].delay, backoffs[0].level}, o, now);
    CHECK(plan(s, o, now + backoffs[0].delay - 1ms).empty());
    // Each next failure waits longer
    now += backoffs[0].delay;
    CHECK(plan(s, o, now) == Actions{Spawn{1, 1}});
    apply(s, SpawnFailed{1}, o, now);
    backoffs = only<BackOff>(plan(s, o, now));
    REQUIRE(backoffs.size() == 1);
    CHECK(backoffs[0].level == 1);
    apply(s, BackoffStarted{now + backoffs[0].delay, backoffs[0].level}, o, now);
    // The limit lifted: the spawn works and nothing backs off any more
    now += backoffs[0].delay;
    CHECK(plan(s, o, now) == Actions{Spawn{1, 1}});
    apply(s, Spawned{102, 1, 1}, o, now);
    CHECK(!s.spawn_failed);
    CHECK(only<BackOff>(plan(s, o, now)).empty());
}

TEST_CASE("a failed spawn of a pool never ready keeps the broken-deploy rule: no ladder, exit 3 past the limit")
{
    auto o = make_options(1);
    o.restart_limit = {3, 10s};
    auto s = pool(1);
    apply(s, SpawnFailed{0}, o, t0);
    CHECK(plan(s, o, t0) == Actions{Spawn{0, 1}});
}

TEST_CASE("each backoff in a series is longer, up to the cap")
{
    auto o = make_options(1);
    o.restart_limit = {1, 1h};
    auto s = pool(1);
    add_ready(s, o, 99, 0, t0);
    apply(s, WorkerExited{99, SIGSEGV}, o, t0);
    auto now = t0;
    Duration previous{0};
    for (int i = 0; i < 12; ++i) {
        apply(s, Spawned{100 + i, 0, 1}, o, now);
        apply(s, WorkerExited{100 + i, SIGSEGV}, o, now);
        auto backoffs = only<BackOff>(plan(s, o, now));
        REQUIRE(backoffs.size() == 1);
        CHECK(backoffs[0].delay <= backoff_cap);
        if (i > 0 && i < 5) CHECK(backoffs[0].delay > previous);
        previous = backoffs[0].delay;
        apply(s, BackoffStarted{now + backoffs[0].delay, backoffs[0].level}, o, now);
        now += backoffs[0].delay;
    }
    CHECK(previous >= backoff_cap * 3 / 4);
}

TEST_CASE("a pool that never had a ready worker backs off once, then gives up with exit code 3")
{
    auto o = make_options(2);
    o.restart_limit = {3, 10s};
    auto s = pool(2);
    auto now = t0;
    for (int pid = 100; pid < 104; ++pid) {
        apply(s, Spawned{pid, 0, 1}, o, now);
        apply(s, WorkerExited{pid, W_EXITCODE(1, 0)}, o, now += 1ms);
    }
    auto backoffs = only<BackOff>(plan(s, o, now));
    REQUIRE(backoffs.size() == 1);
    apply(s, BackoffStarted{now + backoffs[0].delay, backoffs[0].level}, o, now);
    now += backoffs[0].delay;
    CHECK(only<Exit>(plan(s, o, now)).empty());
    apply(s, Spawned{104, 0, 1}, o, now);
    apply(s, WorkerExited{104, W_EXITCODE(1, 0)}, o, now += 1ms);
    CHECK(plan(s, o, now) == Actions{Exit{3, 5}});
}

TEST_CASE("failures older than the restart window are forgotten")
{
    auto o = make_options(1);
    o.restart_limit = {2, 10s};
    auto s = pool(1);
    add_ready(s, o, 99, 0, t0);
    for (int pid = 100; pid < 103; ++pid) {
        apply(s, Spawned{pid, 0, 1}, o, t0);
        apply(s, WorkerExited{pid, SIGSEGV}, o, t0);
    }
    CHECK(only<BackOff>(plan(s, o, t0)).size() == 1);
    CHECK(only<BackOff>(plan(s, o, t0 + 10s)).empty());
}

TEST_CASE("exits during shutdown and requested retirements are not failures")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, Signalled{100, SIGQUIT, Reason::scale_down}, o, t0);
    apply(s, WorkerExited{100, 0}, o, t0);
    apply(s, StopRequested{false}, o, t0);
    apply(s, WorkerExited{101, SIGTERM}, o, t0);
    CHECK(s.failures.empty());
}

TEST_CASE("workers killed by the stop signal sent to the whole group (Ctrl-C, a service manager) stopped, not crashed")
{
    auto o = make_options(3);
    auto s = pool(3);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    add_ready(s, o, 102, 2, t0);
    apply(s, StopRequested{false}, o, t0 + 1s);   // INT: the manager and its workers got it at once
    apply(s, WorkerExited{100, SIGINT}, o, t0 + 1s);
    apply(s, WorkerExited{101, SIGTERM}, o, t0 + 1s);
    apply(s, WorkerExited{102, SIGSEGV}, o, t0 + 1s);
    CHECK(s.exits == std::map<std::string, std::uint64_t>{{"stopped", 2}, {"crashed", 1}});
    CHECK(s.failures.empty());
}

TEST_CASE("exits are classified for the log and status")
{
    WorkerRecord w;
    CHECK(classify(w, W_EXITCODE(0, 0)) == "finished (exit 0)");
    CHECK(classify(w, W_EXITCODE(3, 0)) == "crashed (exit code 3)");
    CHECK(classify(w, SIGSEGV) == "crashed (signal 11)");
    WorkerRecord stopping;   // the manager is stopping; the signal came from elsewhere
    stopping.reason = Reason::shutdown;
    CHECK(classify(stopping, SIGINT) == "stopped (shutdown)");
    CHECK(classify(stopping, SIGSEGV) == "crashed (signal 11)");
    w.reason = Reason::scale_down;
    w.quit_at = t0;
    CHECK(classify(w, 0) == "retired (scaled down)");
    w.reason = Reason::max_age;
    CHECK(classify(w, 0) == "retired (max age)");
    w.reason = Reason::no_heartbeat;
    CHECK(classify(w, 0) == "no heartbeat");
    w.kill_at = t0;
    w.kill_reason = Reason::graceful_timeout;
    w.reason = Reason::scale_down;
    CHECK(classify(w, SIGKILL) == "killed after graceful timeout");
    w.reason = Reason::no_heartbeat;
    CHECK(classify(w, SIGKILL) == "killed after graceful timeout");
    WorkerRecord boot;
    boot.kill_at = t0;
    boot.kill_reason = Reason::boot_timeout;
    CHECK(classify(boot, SIGKILL) == "boot timeout");
    WorkerRecord term;
    term.term_at = t0;
    term.reason = Reason::shutdown;
    CHECK(classify(term, SIGTERM) == "stopped (shutdown)");
}

TEST_CASE("after_reap is told how a worker ended, as an enum of the classified exit")
{
    WorkerRecord w;
    CHECK(exit_of(classify(w, W_EXITCODE(0, 0))) == WorkerExit::finished);
    CHECK(exit_of(classify(w, SIGSEGV)) == WorkerExit::crashed);
    CHECK(exit_of(classify(w, W_EXITCODE(3, 0))) == WorkerExit::crashed);
    w.reason = Reason::max_age;
    w.quit_at = t0;
    CHECK(exit_of(classify(w, 0)) == WorkerExit::retired);
    WorkerRecord stopping;
    stopping.reason = Reason::shutdown;
    CHECK(exit_of(classify(stopping, SIGINT)) == WorkerExit::stopped);
    w.reason = Reason::no_heartbeat;
    CHECK(exit_of(classify(w, 0)) == WorkerExit::no_heartbeat);
    w.kill_at = t0;
    w.kill_reason = Reason::graceful_timeout;
    CHECK(exit_of(classify(w, SIGKILL)) == WorkerExit::killed);
    w.kill_reason = Reason::kill_timeout;
    CHECK(exit_of(classify(w, SIGKILL)) == WorkerExit::killed);
    w.kill_reason = Reason::boot_timeout;
    CHECK(exit_of(classify(w, SIGKILL)) == WorkerExit::boot_timeout);
    w.kill_reason = Reason::no_heartbeat;
    CHECK(exit_of(classify(w, SIGKILL)) == WorkerExit::no_heartbeat);
    CHECK(exit_of("") == WorkerExit::none);
}

TEST_CASE("exits are counted by kind")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, WorkerExited{100, SIGSEGV}, o, t0);
    add_ready(s, o, 101, 0, t0);
    apply(s, WorkerExited{101, SIGKILL}, o, t0);
    CHECK(s.exits["crashed"] == 2);
}

TEST_CASE("the next deadline is the earliest timeout")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    apply(s, Spawned{101, 1, 1}, o, t0 + 1s);
    CHECK(next_deadline(s, o, t0 + 2s) == t0 + 10s);   // 100's heartbeat timeout before 101's boot timeout
    apply(s, Signalled{100, SIGQUIT, Reason::scale_down}, o, t0 + 3s);
    CHECK(next_deadline(s, o, t0 + 3s) == t0 + 31s);   // 101's boot timeout before 100's graceful timeout
}

TEST_CASE("an idle pool sleeps long")
{
    auto o = make_options(0);
    auto s = pool(0);
    CHECK(next_deadline(s, o, t0) >= t0 + 1h);
}

TEST_CASE("a manager that was itself stopped forgives its workers' silence")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, ManagerResumed{}, o, t0 + 60s);
    CHECK(plan(s, o, t0 + 61s).empty());
}

TEST_CASE("a heartbeat from an unknown pid changes nothing")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    const auto before = s;
    apply(s, HeartbeatSeen{999, 5}, o, t0 + 1s);
    apply(s, WorkerExited{999, 0}, o, t0 + 1s);
    CHECK(s == before);
}

TEST_CASE("a heartbeat timeout of zero turns hang detection off")
{
    auto o = make_options(1);
    o.heartbeat_timeout = 0s;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    CHECK(plan(s, o, t0 + 24h).empty());
}

TEST_CASE("workers of an older generation are rolled one at a time within the spare")
{
    auto o = make_options(2);
    o.spare = 1;
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0 + 1ms);
    s.generation = 2;
    CHECK(plan(s, o, t0) == Actions{Spawn{0, 2}});
    apply(s, Spawned{200, 0, 2}, o, t0);
    apply(s, HeartbeatSeen{200, std::nullopt}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Retire{100, Reason::reload}, Spawn{1, 2}});
}

TEST_CASE("stopping kills a worker that was already retiring for having no heartbeat")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0 + 5s);
    apply(s, Signalled{100, SIGQUIT, Reason::no_heartbeat}, o, t0 + 10s);
    apply(s, StopRequested{true}, o, t0 + 11s);
    CHECK(plan(s, o, t0 + 11s) == Actions{Kill{100, Reason::no_heartbeat}, Retire{101, Reason::shutdown}});
}

TEST_CASE("a rollout replaces every worker, new ready before old retires, then is done")
{
    auto o = make_options(2);
    o.spare = 1;
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0 + 1ms);
    apply(s, RolloutStarted{Reason::upgrade}, o, t0 + 1s);
    CHECK(s.generation == 2);
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{0, 2}});
    apply(s, Spawned{200, 0, 2}, o, t0 + 1s);
    apply(s, HeartbeatSeen{200, std::nullopt}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Retire{100, Reason::upgrade}, Spawn{1, 2}});
    apply(s, Signalled{100, SIGQUIT, Reason::upgrade}, o, t0 + 1s);
    apply(s, Spawned{201, 1, 2}, o, t0 + 1s);
    apply(s, HeartbeatSeen{201, std::nullopt}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Retire{101, Reason::upgrade}});
    apply(s, Signalled{101, SIGQUIT, Reason::upgrade}, o, t0 + 1s);
    apply(s, WorkerExited{100, 0}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s).empty());
    apply(s, WorkerExited{101, 0}, o, t0 + 3s);
    CHECK(plan(s, o, t0 + 3s) == Actions{RolloutDone{Reason::upgrade, 2, 2s}});
}

TEST_CASE("a rollout whose new workers never become ready fails at the upgrade timeout")
{
    auto o = make_options(1);
    o.spare = 1;
    o.upgrade_timeout = 60s;
    o.boot_timeout = 0s;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::upgrade}, o, t0);
    apply(s, Spawned{200, 0, 2}, o, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 55s);
    CHECK(only<RolloutFailed>(plan(s, o, t0 + 59s)).empty());
    auto failed = only<RolloutFailed>(plan(s, o, t0 + 60s));
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].why == "generation 2 was not ready within " + format_duration(60s));
}

TEST_CASE("a rollout whose new workers crash at boot fails instead of backing off")
{
    auto o = make_options(1);
    o.spare = 1;
    o.restart_limit = {3, 10s};
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::upgrade}, o, t0);
    for (int pid = 200; pid < 204; ++pid) {
        apply(s, Spawned{pid, 0, 2}, o, t0);
        apply(s, WorkerExited{pid, SIGABRT}, o, t0 + 1ms);
    }
    auto actions = plan(s, o, t0 + 1ms);
    REQUIRE(only<RolloutFailed>(actions).size() == 1);
    CHECK(only<RolloutFailed>(actions)[0].why == "4 workers of generation 2 exited before any was ready");
    CHECK(only<BackOff>(actions).empty());
    CHECK(only<Spawn>(actions).empty());
}

TEST_CASE("a reverted rollout forgets the exits that failed it: the next lost worker is replaced at once")
{
    auto o = make_options(1);
    o.spare = 1;
    o.restart_limit = {3, 10s};
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::upgrade}, o, t0);
    for (int pid = 200; pid < 204; ++pid) {
        apply(s, Spawned{pid, 0, 2}, o, t0);
        apply(s, WorkerExited{pid, SIGABRT}, o, t0 + 1ms);
    }
    REQUIRE(only<RolloutFailed>(plan(s, o, t0 + 1ms)).size() == 1);
    apply(s, RolloutEnded{true}, o, t0 + 2ms);
    CHECK(failures_within(s, o, t0 + 2ms) == 0);

    // The generation that serves again loses a worker within the same restart window
    apply(s, WorkerExited{100, SIGKILL}, o, t0 + 1s);
    auto actions = plan(s, o, t0 + 1s);
    CHECK(only<BackOff>(actions).empty());
    CHECK(only<Spawn>(actions).size() == 1);
}

TEST_CASE("a pool's failed restart keeps its exits in the restart window")
{
    auto o = make_options(1);
    o.spare = 1;
    o.restart_limit = {3, 10s};
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::restart}, o, t0);
    for (int pid = 200; pid < 204; ++pid) {
        apply(s, Spawned{pid, 0, 2}, o, t0);
        apply(s, WorkerExited{pid, SIGABRT}, o, t0 + 1ms);
    }
    apply(s, RolloutEnded{true}, o, t0 + 2ms);
    CHECK(failures_within(s, o, t0 + 2ms) == 4);
}

TEST_CASE("a reverted rollout keeps the old generation and retires the failed one")
{
    auto o = make_options(1);
    o.spare = 1;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::reload}, o, t0);
    apply(s, Spawned{200, 0, 2}, o, t0);
    apply(s, RolloutEnded{true}, o, t0 + 1s);
    CHECK(s.generation == 1);
    CHECK_FALSE(s.rollout);
    CHECK(plan(s, o, t0 + 1s) == Actions{Retire{200, Reason::reload}});
    // The failed generation number is never handed out again
    apply(s, RolloutStarted{Reason::reload}, o, t0 + 2s);
    CHECK(s.generation == 3);
}

TEST_CASE("an upgrade's time counts from when it was asked for, before the exec")
{
    auto o = make_options(1);
    o.upgrade_timeout = 10s;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::upgrade, t0 - 3s}, o, t0);
    REQUIRE(s.rollout);
    CHECK(s.rollout->started == t0 - 3s);
    CHECK(next_deadline(s, o, t0) <= t0 + 7s);   // the upgrade timeout, from the request
}

TEST_CASE("old workers still draining at the upgrade timeout do not fail a rollout whose new generation is ready")
{
    auto o = make_options(1);
    o.spare = 1;
    o.upgrade_timeout = 10s;
    o.graceful_timeout = 60s;
    o.heartbeat_timeout = 0s;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::upgrade}, o, t0);
    add_ready(s, o, 200, 0, t0 + 1s, 2);
    apply(s, Signalled{100, SIGQUIT, Reason::upgrade}, o, t0 + 1s);
    CHECK(only<RolloutFailed>(plan(s, o, t0 + 11s)).empty());
    apply(s, WorkerExited{100, 0}, o, t0 + 20s);
    CHECK(only<RolloutDone>(plan(s, o, t0 + 20s)).size() == 1);
}

TEST_CASE("only a heartbeat that readies a worker or reaches its request limit needs a new plan")
{
    auto o = make_options(1);
    o.max_requests = 10;
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK_FALSE(is_routine(s, HeartbeatSeen{100, std::nullopt}));   // the first: ready now
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0);
    CHECK(is_routine(s, HeartbeatSeen{100, 9}));
    CHECK_FALSE(is_routine(s, HeartbeatSeen{100, 10}));
    CHECK_FALSE(is_routine(s, HeartbeatSeen{999, std::nullopt}));
}

TEST_CASE("the pool is at its target when enough live workers are ready, and never while stopping")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    CHECK_FALSE(at_target(s));
    add_ready(s, o, 101, 1, t0);
    CHECK(at_target(s));
    apply(s, Signalled{101, SIGQUIT, Reason::scale_down}, o, t0);
    CHECK_FALSE(at_target(s));   // a retiring worker is no capacity
    apply(s, Scale{1u, 0}, o, t0);
    CHECK(at_target(s));
    apply(s, StopRequested{true}, o, t0);
    CHECK_FALSE(at_target(s));
}

TEST_CASE("a scale has settled when exactly the target is ready and nobody is still leaving")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    CHECK_FALSE(is_settled(s));
    add_ready(s, o, 101, 1, t0);
    CHECK(is_settled(s));
    apply(s, Scale{1u, 0}, o, t0);
    CHECK_FALSE(is_settled(s));   // one too many until TTOU's worker has gone
    apply(s, Signalled{101, SIGQUIT, Reason::scale_down}, o, t0);
    CHECK_FALSE(is_settled(s));
    apply(s, WorkerExited{101, 0}, o, t0);
    CHECK(is_settled(s));
    apply(s, RolloutStarted{Reason::reload}, o, t0);
    CHECK_FALSE(is_settled(s));
    apply(s, RolloutEnded{false}, o, t0);
    apply(s, StopRequested{true}, o, t0);
    CHECK_FALSE(is_settled(s));
}

TEST_CASE("the pool is steady when every worker is ready and nothing rolls")
{
    auto o = make_options(2);
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    apply(s, Spawned{101, 1, 1}, o, t0);
    CHECK_FALSE(is_steady(s));
    apply(s, HeartbeatSeen{101, std::nullopt}, o, t0);
    CHECK(is_steady(s));
    apply(s, RolloutStarted{Reason::reload}, o, t0);
    CHECK_FALSE(is_steady(s));
    apply(s, RolloutEnded{false}, o, t0);
    apply(s, StopRequested{false}, o, t0);
    CHECK_FALSE(is_steady(s));
}

TEST_CASE("an exit counts as a failure only if nobody asked for it or it hung, and not while stopping")
{
    auto s = pool(1);
    WorkerRecord w;
    CHECK(is_failure(s, w));
    w.reason = Reason::no_heartbeat;
    CHECK(is_failure(s, w));
    w.reason = Reason::max_age;
    CHECK_FALSE(is_failure(s, w));
    w.reason = Reason::none;
    s.phase = Phase::stopping_graceful;
    CHECK_FALSE(is_failure(s, w));
}

// Exec mode: programs that send no heartbeat, and programs stopped with --stop-signal
namespace {

// Exec mode without heartbeats: --heartbeat-timeout 0, --ready-after 1s.
Options without_heartbeats(unsigned workers = 1)
{
    Options o = make_options(workers);
    o.heartbeat_timeout = 0s;
    o.ready_after = 1s;
    o.stop_signal = SIGTERM;
    return o;
}

}  // namespace

TEST_CASE("without heartbeats a program is ready once it has run --ready-after")
{
    auto o = without_heartbeats();
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(plan(s, o, t0 + 999ms).empty());
    CHECK(next_deadline(s, o, t0 + 500ms) == t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{DeclareReady{100, 1s}});
    // The shell declares it ready as a first heartbeat would.
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 1s);
    CHECK(s.find(100)->ready());
    CHECK(s.ever_ready);
    CHECK(plan(s, o, t0 + 1h).empty());   // and nobody watches its heartbeats
}

TEST_CASE("a program that sends a heartbeat before --ready-after is ready at once")
{
    auto o = without_heartbeats();
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 10ms);
    CHECK(s.find(100)->ready_at == t0 + 10ms);
    CHECK(only<DeclareReady>(plan(s, o, t0 + 1s)).empty());
}

TEST_CASE("with heartbeats watched, or without --ready-after, running long is not being ready")
{
    auto watched = without_heartbeats();
    watched.heartbeat_timeout = 10s;
    auto fork_mode = without_heartbeats();
    fork_mode.ready_after.reset();
    for (const Options& o : {watched, fork_mode}) {
        auto s = pool(1);
        apply(s, Spawned{100, 0, 1}, o, t0);
        CHECK(only<DeclareReady>(plan(s, o, t0 + 29s)).empty());
        CHECK(only<Kill>(plan(s, o, t0 + 30s)) == std::vector<Kill>{Kill{100, Reason::boot_timeout, 30s}});
        CHECK(next_deadline(s, o, t0) == t0 + 30s);
    }
}

TEST_CASE("a program ready by --ready-after at its boot timeout is not killed for being late")
{
    auto o = without_heartbeats();
    o.boot_timeout = 1s;   // validate() refuses this; a manager that slept past both must still decide right
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(plan(s, o, t0 + 2s) == Actions{DeclareReady{100, 2s}});
}

TEST_CASE("a program that leaves before --ready-after is not declared ready")
{
    auto o = without_heartbeats(0);
    auto s = pool(0);
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, Signalled{100, SIGQUIT, Reason::scale_down}, o, t0 + 100ms);
    CHECK(only<DeclareReady>(plan(s, o, t0 + 5s)).empty());
}

TEST_CASE("without heartbeats a rollout retires an old program once a new one has run --ready-after")
{
    auto o = without_heartbeats();
    o.spare = 1;
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, RolloutStarted{Reason::reload, std::nullopt}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{0, 2}});
    apply(s, Spawned{101, 0, 2}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1500ms).empty());   // the old one serves until the new one is ready
    CHECK(plan(s, o, t0 + 2s) == Actions{DeclareReady{101, 1s}});
    apply(s, HeartbeatSeen{101, std::nullopt}, o, t0 + 2s);
    CHECK(plan(s, o, t0 + 2s) == Actions{Retire{100, Reason::reload}});
}

TEST_CASE("a program that dies of its stop signal once asked has retired or stopped, not crashed")
{
    constexpr int term = SIGTERM;
    WorkerRecord w;
    w.reason = Reason::scale_down;
    w.quit_at = t0;   // the graceful request: --stop-signal TERM was sent
    CHECK(classify(w, SIGTERM, term) == "retired (scaled down)");
    CHECK(classify(w, W_EXITCODE(128 + SIGTERM, 0), term) == "retired (scaled down)");   // sh, the JVM
    CHECK(classify(w, W_EXITCODE(0, 0), term) == "retired (scaled down)");
    CHECK(classify(w, SIGSEGV, term) == "crashed (signal 11)");
    CHECK(classify(w, W_EXITCODE(1, 0), term) == "crashed (exit code 1)");
    CHECK(classify(w, SIGINT, term) == "crashed (signal 2)");   // not what it was sent
    w.reason = Reason::upgrade;
    CHECK(classify(w, SIGTERM, term) == "retired (upgrade)");
    w.reason = Reason::shutdown;   // QUIT to the manager: --stop-signal to every program
    CHECK(classify(w, SIGTERM, term) == "stopped (shutdown)");
    WorkerRecord usr2;
    usr2.reason = Reason::shutdown;
    usr2.quit_at = t0;
    CHECK(classify(usr2, SIGUSR2, SIGUSR2) == "stopped (shutdown)");
    CHECK(classify(usr2, SIGUSR2, SIGQUIT) == "crashed (signal 12)");
}

TEST_CASE("dying of the stop signal without being asked is a crash")
{
    WorkerRecord w;   // nobody asked it to leave
    CHECK(classify(w, SIGTERM, SIGTERM) == "crashed (signal 15)");
    CHECK(classify(w, W_EXITCODE(143, 0), SIGTERM) == "crashed (exit code 143)");
    auto o = without_heartbeats();
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, WorkerExited{100, SIGTERM}, o, t0 + 1s);
    CHECK(s.failures.size() == 1);
    CHECK(s.exits["crashed"] == 1);
}

TEST_CASE("exits by the stop signal are counted as retired")
{
    auto o = without_heartbeats(0);
    auto s = pool(0);
    add_ready(s, o, 100, 0, t0);
    apply(s, Signalled{100, SIGQUIT, Reason::scale_down}, o, t0 + 1s);
    apply(s, WorkerExited{100, SIGTERM}, o, t0 + 2s);
    CHECK(s.exits == std::map<std::string, std::uint64_t>{{"retired", 1}});
    CHECK(s.failures.empty());
}

// A worker whose heartbeat channel carries malformed records
TEST_CASE("malformed heartbeat records are counted per worker, and a stray one is forgiven")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, HeartbeatMalformed{100, 1, 20}, o, t0 + 1s);
    apply(s, HeartbeatMalformed{100, 9, 180}, o, t0 + 2s);
    apply(s, HeartbeatMalformed{999, 50, 5000}, o, t0 + 2s);   // an unknown pid changes nothing
    const WorkerRecord& w = *s.find(100);
    CHECK(w.bad_records == 10);
    CHECK(w.bad_bytes == 200);
    CHECK_FALSE(has_bad_channel(w));
    CHECK(plan(s, o, t0 + 2s).empty());
}

TEST_CASE("a worker past the malformed record or byte limit is retired for bad heartbeat records")
{
    auto o = make_options(1);
    SUBCASE("records")
    {
        auto s = pool(1);
        add_ready(s, o, 100, 0, t0);
        apply(s, HeartbeatMalformed{100, max_bad_records + 1, 11}, o, t0 + 1s);
        CHECK(has_bad_channel(*s.find(100)));
        // Without a spare it leaves first, as a worker too old does, and its slot is filled
        CHECK(plan(s, o, t0 + 1s) == Actions{Retire{100, Reason::bad_heartbeat}, Spawn{0, 1}});
    }
    SUBCASE("bytes: one endless line is one record")
    {
        auto s = pool(1);
        add_ready(s, o, 100, 0, t0);
        apply(s, HeartbeatMalformed{100, 1, max_bad_bytes}, o, t0 + 1s);
        CHECK(plan(s, o, t0 + 1s).empty());
        apply(s, HeartbeatMalformed{100, 0, 1}, o, t0 + 1s);
        CHECK(plan(s, o, t0 + 1s) == Actions{Retire{100, Reason::bad_heartbeat}, Spawn{0, 1}});
    }
}

TEST_CASE("a worker with a bad channel is replaced before it retires when a spare is allowed")
{
    auto o = make_options(2);
    o.spare = 1;
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, HeartbeatMalformed{100, 500, 9000}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s) == Actions{Spawn{0, 1}});
    apply(s, Spawned{102, 0, 1}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1s).empty());
    apply(s, HeartbeatSeen{102, std::nullopt}, o, t0 + 1100ms);
    CHECK(plan(s, o, t0 + 1100ms) == Actions{Retire{100, Reason::bad_heartbeat}});
    apply(s, Signalled{100, SIGQUIT, Reason::bad_heartbeat}, o, t0 + 1100ms);
    // More garbage while it drains asks for nothing more; the graceful timeout bounds it
    apply(s, HeartbeatMalformed{100, 500, 9000}, o, t0 + 1200ms);
    CHECK(plan(s, o, t0 + 1200ms).empty());
    o.heartbeat_timeout = 0s;
    CHECK(plan(s, o, t0 + 1100ms + o.graceful_timeout) == Actions{Kill{100, Reason::graceful_timeout, o.graceful_timeout}});
}

TEST_CASE("a worker retired for bad heartbeat records exits as retired, and it counts as a failure")
{
    auto o = make_options(1);
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, HeartbeatMalformed{100, 100, 2000}, o, t0 + 1s);
    apply(s, Signalled{100, SIGQUIT, Reason::bad_heartbeat}, o, t0 + 1s);
    const WorkerRecord w = *s.find(100);
    CHECK(classify(w, 0) == "retired (bad heartbeat records)");
    CHECK(is_failure(s, w));
    apply(s, WorkerExited{100, 0}, o, t0 + 2s);
    CHECK(s.failures.size() == 1);
    CHECK(s.exits["retired"] == 1);
}

// Exec mode's --heartbeat: auto (the default) watches a program's silence from its first record on
namespace {

Options heartbeat_mode(HeartbeatMode mode)
{
    Options o = make_options(1);
    o.heartbeat = mode;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    o.ready_after = 1s;
    o.stop_signal = SIGTERM;
    return o;
}

// Spawned at t0 and declared ready by time at t0 + 1s, as the shell does.
PoolState ready_by_time_at_1s(const Options& o)
{
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    REQUIRE(plan(s, o, t0 + 1s) == Actions{DeclareReady{100, 1s}});
    apply(s, HeartbeatSeen{100, std::nullopt, false}, o, t0 + 1s);
    return s;
}

}  // namespace

TEST_CASE("--heartbeat auto: a program that never sends a record is ready by time and never retired for silence")
{
    const auto o = heartbeat_mode(HeartbeatMode::automatic);
    auto s = ready_by_time_at_1s(o);
    CHECK(s.find(100)->ready());
    CHECK_FALSE(s.find(100)->beating);
    CHECK_FALSE(watches_silence(*s.find(100), o));
    CHECK(plan(s, o, t0 + 31s).empty());   // past the boot timeout: ready, not killed
    CHECK(plan(s, o, t0 + 1h).empty());    // past the heartbeat timeout many times over
    CHECK(next_deadline(s, o, t0 + 2s) == t0 + 2s + 1h);   // nothing to wake for
}

TEST_CASE("--heartbeat auto: the first record starts the watch; silence after it retires the program")
{
    const auto o = heartbeat_mode(HeartbeatMode::automatic);
    auto s = ready_by_time_at_1s(o);
    const HeartbeatSeen first{100, std::nullopt};
    CHECK_FALSE(is_routine(s, first));   // it moves the next deadline: plan again
    apply(s, first, o, t0 + 5s);
    CHECK(s.find(100)->beating);
    CHECK(watches_silence(*s.find(100), o));
    CHECK(next_deadline(s, o, t0 + 6s) == t0 + 15s);
    CHECK(plan(s, o, t0 + 14s).empty());
    CHECK(only<Retire>(plan(s, o, t0 + 15s)) == std::vector<Retire>{{100, Reason::no_heartbeat, 10s}});
    CHECK(is_routine(s, HeartbeatSeen{100, std::nullopt}));   // later records only move the deadline
}

TEST_CASE("--heartbeat auto: a record before --ready-after makes the program ready at once and watched")
{
    const auto o = heartbeat_mode(HeartbeatMode::automatic);
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 200ms);
    CHECK(s.find(100)->ready());
    CHECK(only<DeclareReady>(plan(s, o, t0 + 1s)).empty());
    CHECK(only<Retire>(plan(s, o, t0 + 10200ms)) == std::vector<Retire>{{100, Reason::no_heartbeat, 10s}});
}

TEST_CASE("--heartbeat required: ready only at a record, killed at the boot timeout without one")
{
    const auto o = heartbeat_mode(HeartbeatMode::required);
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    CHECK(only<DeclareReady>(plan(s, o, t0 + 2s)).empty());
    CHECK(next_deadline(s, o, t0 + 2s) == t0 + 30s);
    CHECK(only<Kill>(plan(s, o, t0 + 30s)) == std::vector<Kill>{{100, Reason::boot_timeout, 30s}});
}

TEST_CASE("--heartbeat off: records make a program ready, but its silence is never watched")
{
    const auto o = heartbeat_mode(HeartbeatMode::off);
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 200ms);
    CHECK(s.find(100)->ready());
    CHECK_FALSE(watches_silence(*s.find(100), o));
    CHECK(plan(s, o, t0 + 1h).empty());
}

TEST_CASE("a heartbeat timeout of 0 watches nobody's silence, whatever --heartbeat says")
{
    auto o = heartbeat_mode(HeartbeatMode::automatic);
    o.heartbeat_timeout = 0s;
    auto s = pool(1);
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, HeartbeatSeen{100, std::nullopt}, o, t0 + 200ms);
    CHECK(s.find(100)->beating);
    CHECK_FALSE(watches_silence(*s.find(100), o));
    CHECK(plan(s, o, t0 + 1h).empty());
}

// --max-worker-memory: retired once its own memory stays over the limit for the window
namespace {

Options memory_options(unsigned workers = 1)
{
    auto o = make_options(workers);
    o.heartbeat_timeout = 0s;   // the samples below come without heartbeats
    o.max_worker_memory = 64ull << 20;
    o.max_worker_memory_window = 10s;
    return o;
}

constexpr std::uint64_t over = 100ull << 20;
constexpr std::uint64_t under = 32ull << 20;

}  // namespace

TEST_CASE("a worker over the memory limit for less than the window is left alone")
{
    const auto o = memory_options();
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, MemorySampled{100, over}, o, t0 + 1s);
    apply(s, MemorySampled{100, over}, o, t0 + 10s);
    CHECK(plan(s, o, t0 + 10999ms).empty());
    CHECK(s.find(100)->memory == over);
}

TEST_CASE("a worker over the memory limit for the whole window is retired once, replaced first when a spare is allowed")
{
    auto o = memory_options(2);
    o.spare = 1;
    auto s = pool(2);
    add_ready(s, o, 100, 0, t0);
    add_ready(s, o, 101, 1, t0);
    apply(s, MemorySampled{100, over}, o, t0 + 1s);
    apply(s, MemorySampled{101, under}, o, t0 + 1s);
    CHECK(is_over_memory(*s.find(100), t0 + 11s));
    CHECK_FALSE(is_over_memory(*s.find(101), t0 + 11s));
    CHECK(plan(s, o, t0 + 11s) == Actions{Spawn{0, 1}});
    apply(s, Spawned{102, 0, 1}, o, t0 + 11s);
    apply(s, HeartbeatSeen{102, std::nullopt}, o, t0 + 12s);
    CHECK(plan(s, o, t0 + 12s) == Actions{Retire{100, Reason::max_memory}});
    apply(s, Signalled{100, SIGQUIT, Reason::max_memory}, o, t0 + 12s);
    // Still over while it drains: nothing more is asked of it
    apply(s, MemorySampled{100, over}, o, t0 + 13s);
    CHECK(plan(s, o, t0 + 13s).empty());
    const WorkerRecord w = *s.find(100);
    CHECK(classify(w, 0) == "retired (max memory)");
    CHECK_FALSE(is_failure(s, w));
}

TEST_CASE("without a spare a worker over the memory limit retires first and its slot is filled")
{
    const auto o = memory_options();
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, MemorySampled{100, over}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 11s) == Actions{Retire{100, Reason::max_memory}, Spawn{0, 1}});
}

TEST_CASE("one memory sample under the limit starts the window over")
{
    const auto o = memory_options();
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, MemorySampled{100, over}, o, t0 + 1s);
    apply(s, MemorySampled{100, under}, o, t0 + 8s);
    CHECK_FALSE(s.find(100)->over_memory_since);
    apply(s, MemorySampled{100, over}, o, t0 + 9s);
    CHECK(plan(s, o, t0 + 18s).empty());
    CHECK(plan(s, o, t0 + 19s) == Actions{Retire{100, Reason::max_memory}, Spawn{0, 1}});
}

TEST_CASE("exactly at the memory limit is not over it, and a limit of 0 is off")
{
    auto o = memory_options();
    auto s = pool(1);
    add_ready(s, o, 100, 0, t0);
    apply(s, MemorySampled{100, o.max_worker_memory}, o, t0 + 1s);
    CHECK(plan(s, o, t0 + 1h).empty());
    o.max_worker_memory = 0;
    apply(s, MemorySampled{100, 100ull << 30}, o, t0 + 1s);
    CHECK_FALSE(s.find(100)->over_memory_since);
    CHECK(plan(s, o, t0 + 1h).empty());
}
