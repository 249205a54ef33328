// A fake shell for the supervisor's unit tests: it plans, "executes" every action at once as the
// manager would (a spawn is a new pid, a retired or killed worker exits at once) and feeds the
// outcome back as events. No fork, no sleep: time is an argument, t0 + 5s.
#pragma once

#include <herd/core/supervisor.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <string>
#include <vector>

namespace herd::test {

using namespace std::chrono_literals;

inline const TimePoint t0 = TimePoint{} + 1000h;

inline int exited(int code) { return code << 8; }   // raw wait status of exit(code)
inline int signalled(int sig) { return sig; }        // ... of death by a signal

inline Options pool_options(unsigned workers)
{
    Options o;
    o.workers = workers;
    o.spare = 1;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    o.graceful_timeout = 30s;
    o.kill_timeout = 5s;
    o.upgrade_timeout = 20s;
    o.restart_limit = {3, 10s};
    return o;
}

// A pool's supervision with this restart type, or this answer to its restart limit
inline Supervision typed(RestartType type)
{
    Supervision s;
    s.restart = type;
    return s;
}

inline Supervision limited(OnRestartLimit what)
{
    Supervision s;
    s.on_restart_limit = what;
    return s;
}

struct Shell {
    Supervisor sup;
    int next_pid = 100;
    bool ready_at_once = true;   // spawned workers send their first heartbeat at once
    bool exit_at_once = true;    // retired, terminated and killed workers exit at once
    SupervisorActions done;      // every action executed, in order

    explicit Shell(Supervisor s) : sup(std::move(s)) {}

    void on(std::size_t pool, const Event& e, TimePoint now) { apply(sup, PoolEvent{pool, e}, now); }

    // A live worker exits with this raw wait status
    void exit(int pid, int status, TimePoint now)
    {
        const auto pool = sup.pool_of(pid);
        REQUIRE(pool);
        on(*pool, WorkerExited{pid, status}, now);
    }

    // Plan once and execute what it says; returns what it said
    SupervisorActions step(TimePoint now)
    {
        const SupervisorActions actions = plan(sup, now);
        for (const auto& a : actions) {
            done.push_back(a);
            if (const auto* x = std::get_if<PoolStarted>(&a)) apply(sup, PoolReported{x->pool, PoolStage::starting}, now);
            if (const auto* x = std::get_if<PoolReady>(&a)) apply(sup, PoolReported{x->pool, PoolStage::running}, now);
            if (const auto* x = std::get_if<PoolStopped>(&a)) apply(sup, PoolReported{x->pool, PoolStage::stopped}, now);
            if (const auto* x = std::get_if<PoolFailed>(&a)) apply(sup, PoolReported{x->pool, PoolStage::failed}, now);
            if (const auto* x = std::get_if<PoolAction>(&a)) execute(x->pool, x->action, now);
        }
        return actions;
    }

    // Plan and execute until nothing is left to do now (bounded)
    void settle(TimePoint now)
    {
        for (int i = 0; i < 100; ++i) {
            const SupervisorActions actions = step(now);
            if (actions.empty() || (actions.size() == 1 && std::holds_alternative<Exit>(actions[0]))) return;
        }
        FAIL("the supervisor did not settle");
    }

    std::vector<int> pids(std::size_t pool) const
    {
        std::vector<int> out;
        for (const auto& w : sup.pools[pool].state.workers) out.push_back(w.pid);
        return out;
    }

    void execute(std::size_t pool, const Action& action, TimePoint now)
    {
        if (const auto* a = std::get_if<Spawn>(&action)) {
            const int pid = next_pid++;
            on(pool, Spawned{pid, a->slot, a->generation}, now);
            if (ready_at_once) on(pool, HeartbeatSeen{pid, std::nullopt}, now);
        } else if (const auto* a = std::get_if<Retire>(&action)) {
            on(pool, Signalled{a->pid, SIGQUIT, a->reason}, now);
            if (exit_at_once) on(pool, WorkerExited{a->pid, exited(0)}, now);
        } else if (const auto* a = std::get_if<Kill>(&action)) {
            on(pool, Signalled{a->pid, SIGKILL, a->reason}, now);
            if (exit_at_once) on(pool, WorkerExited{a->pid, signalled(SIGKILL)}, now);
        } else if (const auto* a = std::get_if<Terminate>(&action)) {
            on(pool, Signalled{a->pid, SIGTERM, Reason::shutdown}, now);
            if (exit_at_once) on(pool, WorkerExited{a->pid, signalled(SIGTERM)}, now);
        } else if (const auto* a = std::get_if<BackOff>(&action)) {
            on(pool, BackoffStarted{now + a->delay, a->level}, now);
        } else if (std::holds_alternative<RolloutDone>(action)) {
            on(pool, RolloutEnded{false}, now);
        } else if (std::holds_alternative<RolloutFailed>(action)) {
            on(pool, RolloutEnded{true}, now);
        } else if (const auto* a = std::get_if<DeclareReady>(&action)) {
            on(pool, HeartbeatSeen{a->pid, std::nullopt, false}, now);
        }
    }
};

// Pools named a, b, c, ... of `workers` each, all ready at t0
inline Shell running(Strategy strategy, std::vector<Supervision> supervision, unsigned workers = 2)
{
    std::vector<Pool> pools;
    for (std::size_t i = 0; i < supervision.size(); ++i)
        pools.push_back(make_pool(std::string(1, char('a' + i)), pool_options(workers), supervision[i]));
    Shell shell(make_supervisor(strategy, std::move(pools)));
    shell.settle(t0);
    for (const auto& p : shell.sup.pools) REQUIRE(p.stage == PoolStage::running);
    shell.done.clear();
    return shell;
}

// Only the actions of one type
template <class T>
std::vector<T> only(const SupervisorActions& actions)
{
    std::vector<T> out;
    for (const auto& a : actions)
        if (const auto* x = std::get_if<T>(&a)) out.push_back(*x);
    return out;
}

// Only one pool's actions of one type
template <class T>
std::vector<T> only(const SupervisorActions& actions, std::size_t pool)
{
    std::vector<T> out;
    for (const auto& a : actions)
        if (const auto* x = std::get_if<PoolAction>(&a); x && x->pool == pool)
            if (const auto* y = std::get_if<T>(&x->action)) out.push_back(*y);
    return out;
}

// Which pools are rolling (or about to roll) because of a restart
inline std::vector<std::size_t> restarting(const Supervisor& sup)
{
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < sup.pools.size(); ++i) {
        const Pool& p = sup.pools[i];
        if (p.restart_pending || (p.state.rollout && p.state.rollout->kind == Reason::restart)) out.push_back(i);
    }
    return out;
}

}  // namespace herd::test

namespace doctest {
template <>
struct StringMaker<herd::SupervisorActions> {
    static String convert(const herd::SupervisorActions& actions)
    {
        using namespace herd;
        std::string out = "{";
        for (const auto& a : actions) {
            if (const auto* x = std::get_if<PoolStarted>(&a)) out += " PoolStarted{" + std::to_string(x->pool) + "}";
            else if (const auto* x = std::get_if<PoolReady>(&a)) out += " PoolReady{" + std::to_string(x->pool) + "}";
            else if (const auto* x = std::get_if<PoolStopped>(&a)) out += " PoolStopped{" + std::to_string(x->pool) + "}";
            else if (const auto* x = std::get_if<PoolFailed>(&a)) out += " PoolFailed{" + std::to_string(x->pool) + ", " + x->why + "}";
            else if (const auto* x = std::get_if<Exit>(&a)) out += " Exit{" + std::to_string(x->code) + "}";
            else if (const auto* x = std::get_if<PoolAction>(&a)) {
                out += " " + std::to_string(x->pool) + ":";
                std::visit([&](const auto& y) {
                    using T = std::decay_t<decltype(y)>;
                    if constexpr (std::is_same_v<T, Spawn>) out += "Spawn{" + std::to_string(y.slot) + ", " + std::to_string(y.generation) + "}";
                    else if constexpr (std::is_same_v<T, Retire>) out += "Retire{" + std::to_string(y.pid) + ", " + to_string(y.reason) + "}";
                    else if constexpr (std::is_same_v<T, Kill>) out += "Kill{" + std::to_string(y.pid) + ", " + to_string(y.reason) + "}";
                    else if constexpr (std::is_same_v<T, Terminate>) out += "Terminate{" + std::to_string(y.pid) + "}";
                    else if constexpr (std::is_same_v<T, BackOff>) out += "BackOff{" + std::to_string(y.delay.count()) + "}";
                    else if constexpr (std::is_same_v<T, Exit>) out += "Exit{" + std::to_string(y.code) + "}";
                    else if constexpr (std::is_same_v<T, RolloutDone>) out += "RolloutDone{" + to_string(y.kind) + "}";
                    else if constexpr (std::is_same_v<T, RolloutFailed>) out += "RolloutFailed{" + y.why + "}";
                    else out += "DeclareReady{" + std::to_string(y.pid) + "}";
                }, x->action);
            }
        }
        return (out + " }").c_str();
    }
};
}  // namespace doctest
