// apply() of the supervisor of several pools: a pool's event folded into its state, then what the
// exit means for the pools (restart type, plan, strategy), the operator's commands, and settle():
// the stages and the order of starts, restarts and stops. The rules are in supervisor.hpp.
#include <herd/core/supervisor.hpp>

#include <utility>

namespace herd {

namespace {

bool has_plan(const Pool& p)
{
    return p.supervision.plan && !p.supervision.plan->steps.empty();
}

bool backs_off(const Pool& p)
{
    return !has_plan(p) && p.supervision.on_restart_limit == OnRestartLimit::backoff;
}

// The slot closes: the pool shrinks by one (not the target the operator set)
void close_slot(Pool& p)
{
    if (p.state.target > 0) --p.state.target;
}

// An exit that needs no restart is no failure: it must not count toward the restart limit.
void uncount(PoolState& s, TimePoint now)
{
    if (!s.failures.empty() && s.failures.back() == now) s.failures.pop_back();
}

// A fresh start: held and closed slots back, counted failures and the backoff forgotten
void refresh(Pool& p)
{
    p.state.held.clear();
    p.state.failures.clear();
    p.state.backoff_until.reset();
    p.state.backoff_mark.reset();
    p.state.backoff_level = 0;
    p.state.target = p.wanted;
}

// Every empty slot of the pool is held until RestartPool
void hold_empty(Pool& p)
{
    for (unsigned slot = 0; slot < p.state.target; ++slot) {
        bool used = false;
        for (const auto& w : p.state.workers) used = used || (w.slot == int(slot) && !w.leaving());
        if (!used) p.state.held[int(slot)] = TimePoint::max();
    }
}

void fail(Supervisor& sup, std::size_t i, std::string why)
{
    Pool& p = sup.pools[i];
    p.stage = PoolStage::failed;
    p.why = std::move(why);
    p.restart_pending = false;
    // It refills nothing more: its holds and backoff are no deadlines, its limit no question.
    p.state.held.clear();
    p.state.backoff_until.reset();
    p.state.backs_off = false;
    if (sup.failed) return;
    sup.failed = i;
    if (sup.phase == Phase::running) sup.phase = Phase::stopping_graceful;
}

void stop_pool(Pool& p, bool graceful, TimePoint now)
{
    apply(p.state, StopRequested{graceful}, p.options, now);
    p.state.held.clear();   // a stopping pool refills nothing
    if (p.stage != PoolStage::failed) p.stage = PoolStage::stopping;
    p.restart_pending = false;
}

void start_pool(Pool& p)
{
    p.state.phase = Phase::running;
    refresh(p);
    p.stage = PoolStage::starting;
}

// Strategy: the other pools a restart touches roll (in order, by settle) or stop (temporary)
void restart_others(Supervisor& sup, std::size_t i, TimePoint now)
{
    for (const std::size_t j : touched_by(sup.strategy, i, sup.pools.size())) {
        Pool& q = sup.pools[j];
        if (q.stage != PoolStage::starting && q.stage != PoolStage::running) continue;
        if (q.supervision.restart == RestartType::temporary) stop_pool(q, true, now);
        else if (!q.state.rollout) q.restart_pending = true;
    }
}

// The next step of the pool's plan; nullopt: the plan has run its count, the pool has failed
std::optional<PlanStep> next_step(Pool& p, TimePoint now)
{
    const RestartPlan& plan = *p.supervision.plan;
    // A whole restart-limit window without an exit that needed a restart: the plan starts over.
    if (p.last_restart && now - *p.last_restart >= p.options.restart_limit.window) p.step = 0, p.runs = 0;
    p.last_restart = now;
    if (plan.count && p.runs >= *plan.count) return std::nullopt;
    const PlanStep step = plan.steps[p.step];
    if (++p.step == plan.steps.size()) p.step = 0, ++p.runs;
    return step;
}

// An exit nobody asked for (or a spawn that failed) in slot `slot` of pool i
void on_unexpected(Supervisor& sup, std::size_t i, int slot, ExitKind kind, const std::string& what, TimePoint now)
{
    Pool& p = sup.pools[i];
    if (p.stage == PoolStage::failed) return;   // refills nothing more
    if (!needs_restart(p.supervision.restart, kind)) {
        uncount(p.state, now);
        close_slot(p);
        return;
    }
    bool refilled = true;
    if (has_plan(p)) {
        const std::optional<PlanStep> step = next_step(p, now);
        if (!step) {
            const std::string runs = std::to_string(p.runs) + (p.runs == 1 ? " time" : " times");
            return fail(sup, i, what + " after its plan ran " + runs);
        }
        switch (step->kind) {
        case PlanStep::Kind::restart:
            if (step->delay.count() > 0) p.state.held[slot] = now + step->delay;
            break;
        case PlanStep::Kind::wait: p.state.held[slot] = TimePoint::max(), refilled = false; break;
        case PlanStep::Kind::close: close_slot(p), refilled = false; break;
        case PlanStep::Kind::stop: return fail(sup, i, what + "; its plan says stop");
        }
    } else {
        p.last_restart = now;
        const std::size_t failures = failures_within(p.state, p.options, now);
        const RestartLimit& limit = p.options.restart_limit;
        const std::string past = std::to_string(failures) + " unexpected exits within " +
                                 format_duration(limit.window) + " (limit " + std::to_string(limit.count) + ")";
        if (failures > limit.count && p.supervision.on_restart_limit == OnRestartLimit::stop)
            return fail(sup, i, what + ": " + past);
        if (failures > limit.count && p.supervision.on_restart_limit == OnRestartLimit::wait)
            hold_empty(p), refilled = false;
    }
    if (refilled && sup.phase == Phase::running) restart_others(sup, i, now);
}

void on_pool_event(Supervisor& sup, std::size_t i, const Event& event, TimePoint now)
{
    Pool& p = sup.pools[i];
    if (const auto* e = std::get_if<Scale>(&event)) {
        apply(p.state, *e, p.options, now);
        p.wanted = p.state.target;
    } else if (const auto* e = std::get_if<StopRequested>(&event)) {
        stop_pool(p, e->graceful, now);
    } else if (const auto* e = std::get_if<WorkerExited>(&event)) {
        const WorkerRecord* found = p.state.find(e->pid);
        if (!found) return;
        const WorkerRecord w = *found;
        const ExitKind kind = exit_kind(p.state, w, e->status);
        apply(p.state, event, p.options, now);
        if (kind == ExitKind::expected) return;
        on_unexpected(sup, i, w.slot, kind,
                      "worker " + std::to_string(w.pid) + " " + classify(w, e->status, p.options.stop_signal), now);
    } else if (const auto* e = std::get_if<SpawnFailed>(&event)) {
        const bool running = p.state.phase == Phase::running;
        apply(p.state, event, p.options, now);
        const std::string what = "slot " + std::to_string(e->slot) + " could not be spawned";
        if (running) on_unexpected(sup, i, e->slot, ExitKind::abnormal, what, now);
    } else {
        apply(p.state, event, p.options, now);
    }
}

// Stages and order: starts and restarts in order while running, stops in reverse order after
void settle(Supervisor& sup, TimePoint now)
{
    if (sup.phase == Phase::running) {
        // Start each pool once every pool ahead of it has been ready
        bool ahead_ready = true;
        for (Pool& p : sup.pools) {
            if (p.stage == PoolStage::waiting && ahead_ready) p.stage = PoolStage::starting;
            if (p.stage == PoolStage::starting && at_target(p.state)) p.stage = PoolStage::running;
            if (p.stage == PoolStage::waiting || p.stage == PoolStage::starting) ahead_ready = false;
        }
        // Roll each restarted pool once every pool ahead of it is at its target, not rolling
        bool ahead_settled = true;
        for (Pool& p : sup.pools) {
            // A reload or an upgrade that began meanwhile replaces its workers anyway.
            if (p.state.rollout) p.restart_pending = false;
            if (p.restart_pending && ahead_settled) {
                apply(p.state, RolloutStarted{Reason::restart}, p.options, now);
                p.restart_pending = false;
            }
            const bool active = p.stage == PoolStage::starting || p.stage == PoolStage::running;
            if (p.restart_pending || (active && (!at_target(p.state) || p.state.rollout))) ahead_settled = false;
        }
    } else {
        // Stop each pool once every pool after it is empty
        for (std::size_t i = sup.pools.size(); i-- > 0;) {
            Pool& p = sup.pools[i];
            if (p.state.phase == Phase::running) stop_pool(p, sup.phase == Phase::stopping_graceful, now);
            if (!p.state.workers.empty()) break;
        }
    }
    for (Pool& p : sup.pools)
        if (p.stage == PoolStage::stopping && p.state.workers.empty()) p.stage = PoolStage::stopped;
}

}  // namespace

Pool make_pool(std::string name, Options options, Supervision supervision)
{
    Pool p;
    p.name = std::move(name);
    p.options = std::move(options);
    p.supervision = std::move(supervision);
    p.state.target = p.wanted = p.options.workers;
    p.state.backs_off = backs_off(p);
    return p;
}

Supervisor make_supervisor(Strategy strategy, std::vector<Pool> pools)
{
    Supervisor sup;
    sup.strategy = strategy;
    sup.pools = std::move(pools);
    settle(sup, TimePoint{});   // starts only: nothing rolls, nothing stops yet
    return sup;
}

void apply(Supervisor& sup, const SupervisorEvent& event, TimePoint now)
{
    struct Visitor {
        Supervisor& s;
        TimePoint now;

        bool known(std::size_t i) const { return i < s.pools.size(); }

        void operator()(const PoolEvent& e)
        {
            if (known(e.pool)) on_pool_event(s, e.pool, e.event, now);
        }
        void operator()(const ShutdownRequested& e)
        {
            // A fast stop overrides a graceful one in progress, never the other way round.
            if (e.graceful && s.phase != Phase::running) return;
            s.phase = e.graceful ? Phase::stopping_graceful : Phase::stopping_fast;
            if (e.graceful) return;
            for (Pool& p : s.pools)
                if (p.state.phase == Phase::stopping_graceful) apply(p.state, StopRequested{false}, p.options, now);
        }
        void operator()(const StartPool& e)
        {
            if (!known(e.pool) || s.phase != Phase::running) return;
            Pool& p = s.pools[e.pool];
            if (p.stage == PoolStage::stopping || p.stage == PoolStage::stopped) start_pool(p);
        }
        void operator()(const StopPool& e)
        {
            if (known(e.pool)) stop_pool(s.pools[e.pool], e.graceful, now);
        }
        void operator()(const RestartPool& e)
        {
            if (!known(e.pool) || s.phase != Phase::running) return;
            Pool& p = s.pools[e.pool];
            if (p.stage == PoolStage::stopping || p.stage == PoolStage::stopped) return start_pool(p);
            if (p.stage != PoolStage::starting && p.stage != PoolStage::running) return;
            refresh(p);
            p.restart_pending = false;
            if (!p.state.rollout && !p.state.workers.empty())
                apply(p.state, RolloutStarted{Reason::restart}, p.options, now);
        }
        void operator()(const ChangePlan& e)
        {
            if (!known(e.pool)) return;
            Pool& p = s.pools[e.pool];
            p.supervision.plan = e.plan;
            p.step = 0;
            p.runs = 0;
            p.last_restart.reset();
            if (p.stage != PoolStage::failed) p.state.backs_off = backs_off(p);
        }
        void operator()(const ScalePool& e)
        {
            if (known(e.pool)) on_pool_event(s, e.pool, e.scale, now);
        }
        void operator()(const PoolReported& e)
        {
            if (!known(e.pool)) return;
            Pool& p = s.pools[e.pool];
            // plan() found the pool never ready (as one pool's exit 3): it fails now.
            if (e.stage == PoolStage::failed && p.stage != PoolStage::failed)
                fail(s, e.pool, never_ready(p, failures_within(p.state, p.options, now)));
            p.reported = e.stage;
        }
    };
    std::visit(Visitor{sup, now}, event);
    settle(sup, now);
}

}  // namespace herd
