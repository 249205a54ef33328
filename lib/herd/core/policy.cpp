// plan(): what the manager does now, and next_deadline(): when it must look again. Both decide
// by the deadlines of policy_rules.cpp.
#include <herd/core/policy.hpp>
#include <herd/core/policy_detail.hpp>

#include <algorithm>
#include <set>

namespace herd {

using detail::reached;
using detail::unit_random;

namespace {

Duration since(TimePoint then, TimePoint now)
{
    return std::chrono::duration_cast<Duration>(now - then);
}

bool is_due(const WorkerRecord& w, const PoolState& state, const Options& options, TimePoint now)
{
    if (has_bad_channel(w) || w.generation != state.generation || is_over_memory(w, now)) return true;
    if (reached(deadlines(w, options).max_age, now)) return true;
    return w.request_limit > 0 && w.requests >= w.request_limit;
}

Reason due_reason(const WorkerRecord& w, const PoolState& state, const Options& options, TimePoint now)
{
    if (has_bad_channel(w)) return Reason::bad_heartbeat;
    if (w.generation != state.generation) return state.rollout ? state.rollout->kind : Reason::reload;
    if (is_over_memory(w, now)) return Reason::max_memory;
    if (reached(deadlines(w, options).max_age, now)) return Reason::max_age;
    return Reason::max_requests;
}

unsigned backoff_level(const PoolState& state, const Options& options, TimePoint now)
{
    // A whole quiet window since the last backoff ended starts the ladder again.
    if (!state.backoff_until || now - *state.backoff_until >= options.restart_limit.window) return 0;
    return state.backoff_level + 1;
}

Duration backoff_delay(const PoolState& state, unsigned level)
{
    // Exponential from backoff_base, capped, with jitter in [0.75, 1.25) so that several
    // managers restarted together do not retry in lockstep.
    level = std::min(level, 16u);
    auto delay = std::min<Duration>(backoff_cap, backoff_base * (1ll << level));
    const double jitter = 0.75 + 0.5 * unit_random(state.seed);
    return std::min<Duration>(backoff_cap, Duration(std::int64_t(double(delay.count()) * jitter)));
}

// Escalate: graceful → kill, fast → kill
void plan_escalation(const PoolState& state, const Options& options, TimePoint now, Actions& out)
{
    for (const auto& w : state.workers) {
        if (!reached(deadlines(w, options).escalate, now)) continue;
        if (w.term_at) out.push_back(Kill{w.pid, Reason::kill_timeout, since(*w.term_at, now)});
        else out.push_back(Kill{w.pid, Reason::graceful_timeout, since(*w.quit_at, now)});
    }
}

// Stopping: everyone leaves, then the manager
void plan_stop(const PoolState& state, Actions& out)
{
    if (state.workers.empty()) {
        out.push_back(Exit{0});
        return;
    }
    for (const auto& w : state.workers) {
        if (w.kill_at) continue;
        // A hung worker cannot drain, and while it lives the listening sockets stay open and
        // new clients wait in a backlog instead of being refused.
        if (w.reason == Reason::no_heartbeat && !w.term_at)
            out.push_back(Kill{w.pid, Reason::no_heartbeat});
        else if (state.phase == Phase::stopping_fast && !w.term_at)
            out.push_back(Terminate{w.pid});
        else if (state.phase == Phase::stopping_graceful && !w.leaving())
            out.push_back(Retire{w.pid, Reason::shutdown});
    }
}

// Programs that send no heartbeat (exec mode): ready once they have run --ready-after
void plan_readiness(const PoolState& state, const Options& options, TimePoint now, Actions& out)
{
    for (const auto& w : state.workers)
        if (reached(deadlines(w, options).ready, now)) out.push_back(DeclareReady{w.pid, since(w.spawned_at, now)});
}

// Hung and late workers
void plan_timeouts(const PoolState& state, const Options& options, TimePoint now, Actions& out,
                   std::set<int>& leaving)
{
    for (const auto& w : state.workers) {
        const WorkerDeadlines d = deadlines(w, options);
        // Declared ready by plan_readiness in this same plan: not late for its boot.
        if (reached(d.boot, now) && !reached(d.ready, now)) {
            out.push_back(Kill{w.pid, Reason::boot_timeout, since(w.spawned_at, now)});
            leaving.insert(w.pid);
        } else if (reached(d.silence, now)) {
            out.push_back(Retire{w.pid, Reason::no_heartbeat, since(w.last_heartbeat, now)});
            leaving.insert(w.pid);
        }
    }
}

// Slots a plan's `wait` holds until the operator releases them: the pool is short by as many
// until then, and neither a rollout nor a due worker's replacement waits for them to fill.
std::size_t held_until_released(const PoolState& state)
{
    const auto n = std::size_t(std::count_if(state.held.begin(), state.held.end(),
                                             [](const auto& h) { return h.second == TimePoint::max(); }));
    return std::min<std::size_t>(n, state.target);
}

// Rollout: done when the old generation is gone, failed when the new one does not come up
bool plan_rollout(const PoolState& state, const Options& options, TimePoint now, Actions& out)
{
    if (!state.rollout) return true;
    const Rollout& r = *state.rollout;
    const bool old_left = std::any_of(state.workers.begin(), state.workers.end(),
                                      [&](const auto& w) { return w.generation != state.generation; });
    const std::size_t wanted = state.target - held_until_released(state);
    if (!old_left && ready_count(state) >= wanted) {
        out.push_back(RolloutDone{r.kind, state.generation, std::chrono::duration_cast<Duration>(now - r.started)});
        return true;
    }
    // Old workers still draining are bounded by --graceful-timeout; the upgrade timeout is about
    // the new generation being ready.
    const auto new_ready = std::size_t(std::count_if(state.workers.begin(), state.workers.end(), [&](const auto& w) {
        return w.generation == state.generation && w.ready() && !w.leaving();
    }));
    const auto failed = std::size_t(std::count_if(state.failures.begin(), state.failures.end(), [&](TimePoint t) {
        return t >= r.started && now - t < options.restart_limit.window;
    }));
    std::string why;
    if (!r.new_ready && failed > options.restart_limit.count)
        why = std::to_string(failed) + " workers of generation " + std::to_string(state.generation) +
              " exited before any was ready";
    else if (reached(deadlines(state, options).rollout_timeout, now) && new_ready < wanted)
        why = "generation " + std::to_string(state.generation) + " was not ready within " +
              format_duration(options.upgrade_timeout);
    if (why.empty()) return true;
    out.push_back(RolloutFailed{r.kind, state.generation, why});
    return false;
}

// Keep the pool at its target: retire surplus and due workers, spawn the missing
void plan_capacity(const PoolState& state, const Options& options, TimePoint now, bool may_spawn,
                   Actions& out, std::set<int>& leaving)
{
    std::vector<const WorkerRecord*> keep, due;
    for (const auto& w : state.workers) {
        if (w.leaving() || leaving.count(w.pid)) continue;
        (is_due(w, state, options, now) ? due : keep).push_back(&w);
    }
    auto retire = [&](const WorkerRecord* w, Reason reason) {
        out.push_back(Retire{w->pid, reason});
        leaving.insert(w->pid);
    };

    // Surplus: booting ones first (they serve nobody yet), then the highest slots
    if (keep.size() > state.target) {
        std::sort(keep.begin(), keep.end(), [](const WorkerRecord* a, const WorkerRecord* b) {
            if (a->ready() != b->ready()) return !a->ready();
            return a->slot > b->slot;
        });
        for (std::size_t i = 0; i < keep.size() - state.target; ++i) retire(keep[i], Reason::scale_down);
        keep.erase(keep.begin(), keep.begin() + std::ptrdiff_t(keep.size() - state.target));
        for (const auto* w : due) retire(w, due_reason(*w, state, options, now));
        return;
    }

    // Due workers leave once capacity above the target is ready to take their place
    std::sort(due.begin(), due.end(), [](const WorkerRecord* a, const WorkerRecord* b) {
        if (a->ready() != b->ready()) return !a->ready();
        return a->spawned_at < b->spawned_at;
    });
    const auto ready_live = std::size_t(std::count_if(keep.begin(), keep.end(), [](auto* w) { return w->ready(); }))
                          + std::size_t(std::count_if(due.begin(), due.end(), [](auto* w) { return w->ready(); }));
    const std::size_t wanted = state.target - held_until_released(state);
    std::size_t surplus = ready_live > wanted ? ready_live - wanted : 0;
    std::size_t due_left = 0;
    for (const auto* w : due) {
        if (!w->ready()) {
            retire(w, due_reason(*w, state, options, now));
        } else if (surplus > 0) {
            retire(w, due_reason(*w, state, options, now));
            --surplus;
        } else {
            ++due_left;
        }
    }

    // Spawn the missing, within target + spare processes: the lowest free slots, unless held
    std::set<int> used;
    if (keep.size() < state.target)
        for (const auto* w : keep) used.insert(w->slot);
    std::vector<int> slots;   // the missing slots that may be refilled now
    std::size_t free_seen = 0;
    for (int slot = 0; free_seen < state.target - keep.size(); ++slot) {
        if (used.count(slot)) continue;
        ++free_seen;
        // A held slot is one of the missing all the same: the next free one does not stand in.
        const auto hold = state.held.find(slot);
        if (hold == state.held.end() || now >= hold->second) slots.push_back(slot);
    }
    const std::size_t missing = slots.size();
    const std::size_t live = keep.size() + due_left;
    std::size_t room = state.target + options.spare > live ? state.target + options.spare - live : 0;
    if (!may_spawn || missing == 0) return;
    const bool booting = std::any_of(keep.begin(), keep.end(), [](auto* w) { return !w->ready(); });
    if (room == 0 && due_left > 0 && !booting) {
        // No spare room (--spare 0): capacity must dip by one worker to make progress.
        for (const auto* w : due) {
            if (!leaving.count(w->pid)) {
                retire(w, due_reason(*w, state, options, now));
                room = 1;
                break;
            }
        }
    }
    for (std::size_t i = 0; i < std::min(missing, room); ++i) out.push_back(Spawn{slots[i], state.generation});
}

}  // namespace

Actions plan(const PoolState& state, const Options& options, TimePoint now)
{
    Actions out;
    plan_escalation(state, options, now, out);
    if (state.phase != Phase::running) {
        plan_stop(state, out);
        return out;
    }

    std::set<int> leaving;
    plan_readiness(state, options, now, out);
    plan_timeouts(state, options, now, out, leaving);
    if (!plan_rollout(state, options, now, out)) return out;

    // Give up or back off
    const PoolDeadlines pool = deadlines(state, options);
    bool may_spawn = !pool.backoff_end || reached(pool.backoff_end, now);
    const std::size_t failures = failures_within(state, options, now);
    const bool unanswered =
        !state.failures.empty() && (!state.backoff_mark || state.failures.back() > *state.backoff_mark);
    if (state.backs_off && failures > options.restart_limit.count) {
        // A pool that never had a ready worker gets one backoff to prove itself, not a ladder.
        if (gives_up(state, options, now)) {
            out.push_back(Exit{3, failures});
            return out;
        }
        if (unanswered) {
            const unsigned level = backoff_level(state, options, now);
            out.push_back(BackOff{backoff_delay(state, level), level, failures});
            may_spawn = false;
        }
    } else if (state.backs_off && state.spawn_failed && state.ever_ready && unanswered) {
        // A spawn that failed (fork or a pipe: a process or descriptor limit) fails again at once:
        // the next one waits, on the same ladder. A pool never ready keeps the rule above (exit 3).
        const unsigned level = backoff_level(state, options, now);
        out.push_back(BackOff{backoff_delay(state, level), level, failures, true});
        may_spawn = false;
    }

    plan_capacity(state, options, now, may_spawn, out, leaving);
    return out;
}

namespace detail {

Upcoming upcoming(const PoolState& state, const Options& options, TimePoint now)
{
    Upcoming u;
    auto consider = [&](const std::optional<TimePoint>& t) {
        if (!t) return;
        if (*t <= now) u.passed = true;
        else if (!u.next || *t < *u.next) u.next = *t;
    };
    for (const auto& w : state.workers) {
        const WorkerDeadlines d = deadlines(w, options);
        for (const auto& t : {d.escalate, d.boot, d.silence, d.ready, d.max_age, d.max_memory}) consider(t);
    }
    const PoolDeadlines pool = deadlines(state, options);
    consider(pool.backoff_end);
    consider(pool.rollout_timeout);
    consider(pool.hold_end);
    return u;
}

}  // namespace detail

TimePoint next_deadline(const PoolState& state, const Options& options, TimePoint now)
{
    const detail::Upcoming u = detail::upcoming(state, options, now);
    // A deadline passed since the last plan (or one the manager could not act on yet): now, if
    // there is something to do about it.
    if (u.passed && !plan(state, options, now).empty()) return now;
    return std::min(u.next.value_or(TimePoint::max()), now + std::chrono::hours(1));
}

}  // namespace herd
