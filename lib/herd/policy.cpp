#include <herd/policy.hpp>

#include <algorithm>
#include <csignal>
#include <set>
#include <utility>
#include <sys/wait.h>

namespace herd {

namespace {

// splitmix64: a tiny, good enough jitter source that keeps plan() and apply() deterministic.
std::uint64_t next_random(std::uint64_t& seed)
{
    std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double unit_random(std::uint64_t seed)
{
    return double(next_random(seed) >> 11) / double(1ull << 53);
}

bool is_due(const WorkerRecord& w, const PoolState& state, TimePoint now)
{
    if (has_bad_channel(w) || w.generation != state.generation || is_over_memory(w, now)) return true;
    if (w.age_limit.count() > 0 && now - w.spawned_at >= w.age_limit) return true;
    return w.request_limit > 0 && w.requests >= w.request_limit;
}

Reason due_reason(const WorkerRecord& w, const PoolState& state, TimePoint now)
{
    if (has_bad_channel(w)) return Reason::bad_heartbeat;
    if (w.generation != state.generation) return state.rollout ? state.rollout->kind : Reason::reload;
    if (is_over_memory(w, now)) return Reason::max_memory;
    if (w.age_limit.count() > 0 && now - w.spawned_at >= w.age_limit) return Reason::max_age;
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
        if (w.kill_at) continue;
        if (w.term_at && now - *w.term_at >= options.kill_timeout)
            out.push_back(Kill{w.pid, Reason::kill_timeout, std::chrono::duration_cast<Duration>(now - *w.term_at)});
        else if (w.quit_at && !w.term_at && now - *w.quit_at >= options.graceful_timeout)
            out.push_back(Kill{w.pid, Reason::graceful_timeout,
                               std::chrono::duration_cast<Duration>(now - *w.quit_at)});
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
        if (!w.leaving() && ready_by_time(w, options, now))
            out.push_back(DeclareReady{w.pid, std::chrono::duration_cast<Duration>(now - w.spawned_at)});
}

// Hung and late workers
void plan_timeouts(const PoolState& state, const Options& options, TimePoint now, Actions& out,
                   std::set<int>& leaving)
{
    for (const auto& w : state.workers) {
        if (w.leaving()) continue;
        // Declared ready by plan_readiness in this same plan: not late for its boot.
        if (!w.ready() && !ready_by_time(w, options, now)) {
            if (options.boot_timeout.count() > 0 && now - w.spawned_at >= options.boot_timeout) {
                out.push_back(Kill{w.pid, Reason::boot_timeout,
                                   std::chrono::duration_cast<Duration>(now - w.spawned_at)});
                leaving.insert(w.pid);
            }
        } else if (w.ready() && watches_silence(w, options) && now - w.last_heartbeat >= options.heartbeat_timeout) {
            out.push_back(Retire{w.pid, Reason::no_heartbeat,
                                 std::chrono::duration_cast<Duration>(now - w.last_heartbeat)});
            leaving.insert(w.pid);
        }
    }
}

// Rollout: done when the old generation is gone, failed when the new one does not come up
bool plan_rollout(const PoolState& state, const Options& options, TimePoint now, Actions& out)
{
    if (!state.rollout) return true;
    const Rollout& r = *state.rollout;
    const bool old_left = std::any_of(state.workers.begin(), state.workers.end(),
                                      [&](const auto& w) { return w.generation != state.generation; });
    if (!old_left && ready_count(state) >= state.target) {
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
    else if (now - r.started >= options.upgrade_timeout && new_ready < state.target)
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
        (is_due(w, state, now) ? due : keep).push_back(&w);
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
        for (std::size_t i = 0; i < keep.size() - state.target; ++i) retire(keep[i], Reason::ttou);
        keep.erase(keep.begin(), keep.begin() + std::ptrdiff_t(keep.size() - state.target));
        for (const auto* w : due) retire(w, due_reason(*w, state, now));
        return;
    }

    // Due workers leave once capacity above the target is ready to take their place
    std::sort(due.begin(), due.end(), [](const WorkerRecord* a, const WorkerRecord* b) {
        if (a->ready() != b->ready()) return !a->ready();
        return a->spawned_at < b->spawned_at;
    });
    const auto ready_live = std::size_t(std::count_if(keep.begin(), keep.end(), [](auto* w) { return w->ready(); }))
                          + std::size_t(std::count_if(due.begin(), due.end(), [](auto* w) { return w->ready(); }));
    std::size_t surplus = ready_live > state.target ? ready_live - state.target : 0;
    std::size_t due_left = 0;
    for (const auto* w : due) {
        if (!w->ready()) {
            retire(w, due_reason(*w, state, now));
        } else if (surplus > 0) {
            retire(w, due_reason(*w, state, now));
            --surplus;
        } else {
            ++due_left;
        }
    }

    // Spawn the missing, within target + spare processes
    const std::size_t missing = state.target - keep.size();
    const std::size_t live = keep.size() + due_left;
    std::size_t room = state.target + options.spare > live ? state.target + options.spare - live : 0;
    if (!may_spawn || missing == 0) return;
    const bool booting = std::any_of(keep.begin(), keep.end(), [](auto* w) { return !w->ready(); });
    if (room == 0 && due_left > 0 && !booting) {
        // No spare room (--spare 0): capacity must dip by one worker to make progress.
        for (const auto* w : due) {
            if (!leaving.count(w->pid)) {
                retire(w, due_reason(*w, state, now));
                room = 1;
                break;
            }
        }
    }
    std::set<int> used;
    for (const auto* w : keep) used.insert(w->slot);
    int slot = 0;
    for (std::size_t n = std::min(missing, room); n > 0; --n) {
        while (used.count(slot)) ++slot;
        out.push_back(Spawn{slot, state.generation});
        used.insert(slot);
    }
}

}  // namespace

std::string to_string(Reason reason)
{
    switch (reason) {
    case Reason::none: return "none";
    case Reason::ttou: return "TTOU";
    case Reason::max_age: return "max age";
    case Reason::max_requests: return "max requests";
    case Reason::reload: return "reload";
    case Reason::upgrade: return "upgrade";
    case Reason::shutdown: return "shutdown";
    case Reason::no_heartbeat: return "no heartbeat";
    case Reason::boot_timeout: return "boot timeout";
    case Reason::graceful_timeout: return "graceful timeout";
    case Reason::kill_timeout: return "kill timeout";
    case Reason::bad_heartbeat: return "bad heartbeat records";
    case Reason::max_memory: return "max memory";
    }
    return "unknown";
}

std::string state_name(const WorkerRecord& w)
{
    if (w.kill_at) return "killed";
    if (w.leaving()) return "retiring";
    return w.ready() ? "ready" : "booting";
}

const WorkerRecord* PoolState::find(int pid) const
{
    const auto it = std::lower_bound(workers.begin(), workers.end(), pid,
                                     [](const WorkerRecord& w, int p) { return w.pid < p; });
    return it != workers.end() && it->pid == pid ? &*it : nullptr;
}

WorkerRecord* PoolState::find(int pid)
{
    return const_cast<WorkerRecord*>(std::as_const(*this).find(pid));
}

std::size_t ready_count(const PoolState& state)
{
    return std::size_t(std::count_if(state.workers.begin(), state.workers.end(),
                                     [](const auto& w) { return !w.leaving() && w.ready(); }));
}

bool is_failure(const PoolState& state, const WorkerRecord& w)
{
    if (state.phase != Phase::running) return false;
    return w.reason == Reason::none || w.reason == Reason::no_heartbeat || w.reason == Reason::boot_timeout ||
           w.reason == Reason::bad_heartbeat;
}

bool has_bad_channel(const WorkerRecord& w)
{
    return w.bad_records > max_bad_records || w.bad_bytes > max_bad_bytes;
}

bool is_over_memory(const WorkerRecord& w, TimePoint now)
{
    return w.over_memory_since && now - *w.over_memory_since >= w.memory_window;
}

bool is_routine(const PoolState& state, const HeartbeatSeen& beat)
{
    const WorkerRecord* w = state.find(beat.pid);
    if (!w || !w->ready()) return false;   // a first heartbeat makes a worker ready
    if (!w->beating) return false;         // a first record may start the watch of its silence (a deadline)
    return !(w->request_limit && beat.requests && *beat.requests >= w->request_limit);
}

bool at_target(const PoolState& state)
{
    return state.phase == Phase::running && ready_count(state) >= state.target;
}

std::size_t failures_within(const PoolState& state, const Options& options, TimePoint now)
{
    return std::size_t(std::count_if(state.failures.begin(), state.failures.end(), [&](TimePoint t) {
        return now - t < options.restart_limit.window;
    }));
}

bool is_settled(const PoolState& state)
{
    return state.phase == Phase::running && !state.rollout && state.workers.size() == state.target &&
           std::all_of(state.workers.begin(), state.workers.end(), [](const auto& w) { return w.ready() && !w.leaving(); });
}

bool is_steady(const PoolState& state)
{
    return state.phase == Phase::running && !state.rollout &&
           std::all_of(state.workers.begin(), state.workers.end(), [](const auto& w) { return w.ready(); });
}

namespace {

bool heartbeat_required(const Options& options)
{
    return options.heartbeat == HeartbeatMode::required && options.heartbeat_timeout.count() > 0;
}

}  // namespace

bool ready_by_time(const WorkerRecord& w, const Options& options, TimePoint now)
{
    return !w.ready() && !heartbeat_required(options) && options.ready_after && now - w.spawned_at >= *options.ready_after;
}

bool watches_silence(const WorkerRecord& w, const Options& options)
{
    if (options.heartbeat_timeout.count() == 0) return false;
    switch (options.heartbeat) {
    case HeartbeatMode::required: return true;
    case HeartbeatMode::automatic: return w.beating;
    case HeartbeatMode::off: return false;
    }
    return true;
}

std::string classify(const WorkerRecord& w, int status, int stop_signal)
{
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : 0;
    const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    // Ended by the signal it was sent, or exited the way a shell reports that (128 + N).
    const auto ended_by = [&](int s) { return sig == s || (exited && code == 128 + s); };
    if (w.kill_at) {
        switch (w.kill_reason) {
        case Reason::boot_timeout: return "boot timeout";
        case Reason::no_heartbeat: return "no heartbeat";
        case Reason::graceful_timeout: return "killed after graceful timeout";
        case Reason::kill_timeout: return "killed after kill timeout";
        default: return "killed";
        }
    }
    if (w.reason == Reason::no_heartbeat) return "no heartbeat";
    if (w.term_at && (ended_by(SIGTERM) || (exited && code == 0))) return "stopped (shutdown)";
    if (w.reason == Reason::shutdown &&
        (ended_by(SIGTERM) || ended_by(SIGINT) || ended_by(SIGQUIT) || (w.quit_at && ended_by(stop_signal))))
        return "stopped (shutdown)";
    // A program that does as it is told and dies of its stop signal (the default action of TERM)
    // has retired, not crashed.
    if (w.reason != Reason::none && ((exited && code == 0) || (w.quit_at && ended_by(stop_signal))))
        return "retired (" + to_string(w.reason) + ")";
    if (sig) return "crashed (signal " + std::to_string(sig) + ")";
    if (code) return "crashed (exit code " + std::to_string(code) + ")";
    return "finished (exit 0)";
}

void apply(PoolState& state, const Event& event, const Options& options, TimePoint now)
{
    struct Visitor {
        PoolState& s;
        const Options& o;
        TimePoint now;

        void operator()(const Spawned& e)
        {
            WorkerRecord w;
            w.pid = e.pid;
            w.slot = e.slot;
            w.generation = e.generation;
            w.spawned_at = now;
            w.last_heartbeat = now;
            // Jitter spreads recycling so that workers spawned together do not retire together.
            if (o.max_worker_age.count() > 0) {
                const double extra = o.max_worker_age_jitter * unit_random(next_random(s.seed));
                w.age_limit = o.max_worker_age + Duration(std::int64_t(double(o.max_worker_age.count()) * extra));
            }
            if (o.max_requests > 0)
                w.request_limit = o.max_requests
                                + (o.max_requests_jitter ? next_random(s.seed) % (o.max_requests_jitter + 1) : 0);
            const auto at = std::lower_bound(s.workers.begin(), s.workers.end(), w.pid,
                                             [](const WorkerRecord& x, int p) { return x.pid < p; });
            s.workers.insert(at, w);
        }
        void operator()(const SpawnFailed&) { s.failures.push_back(now); }
        void operator()(const HeartbeatSeen& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            if (!w->ready_at) w->ready_at = now;
            if (e.record) w->beating = true;
            s.ever_ready = true;
            if (s.rollout && w->generation == s.generation) s.rollout->new_ready = true;
            w->last_heartbeat = now;
            if (e.requests) w->requests = *e.requests;
        }
        void operator()(const HeartbeatMalformed& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            w->bad_records += e.records;
            w->bad_bytes += e.bytes;
        }
        void operator()(const Signalled& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            if (e.signal == SIGKILL) {
                w->kill_at = now;
                w->kill_reason = e.reason;
            } else if (e.signal == SIGTERM) {
                w->term_at = now;
            } else if (e.signal == SIGQUIT) {
                w->quit_at = now;
            }
            if (w->reason == Reason::none && e.reason != Reason::graceful_timeout && e.reason != Reason::kill_timeout)
                w->reason = e.reason;
            else if (w->reason == Reason::none)
                w->reason = Reason::shutdown;
        }
        void operator()(const WorkerExited& e)
        {
            auto* found = s.find(e.pid);
            if (!found) return;
            const auto it = s.workers.begin() + (found - s.workers.data());
            std::string kind = classify(*it, e.status, o.stop_signal);
            kind = kind.substr(0, kind.find(" ("));
            ++s.exits[kind];
            if (is_failure(s, *it)) s.failures.push_back(now);
            s.workers.erase(it);
            while (!s.failures.empty() && now - s.failures.front() >= o.restart_limit.window) s.failures.pop_front();
        }
        void operator()(const Scale& e)
        {
            long long target = e.workers ? (long long)*e.workers : (long long)s.target + e.delta;
            s.target = unsigned(std::clamp<long long>(target, 0, max_workers));
        }
        void operator()(const StopRequested& e)
        {
            // A fast stop overrides a graceful one in progress, never the other way round.
            if (e.graceful && s.phase == Phase::stopping_fast) return;
            s.phase = e.graceful ? Phase::stopping_graceful : Phase::stopping_fast;
            // Every worker now leaves for the shutdown, whoever signals it: Ctrl-C or a service
            // manager signals the whole process group, workers included, as the manager does.
            for (auto& w : s.workers)
                if (w.reason == Reason::none) w.reason = Reason::shutdown;
        }
        void operator()(const BackoffStarted& e)
        {
            s.backoff_level = e.level;
            s.backoff_until = e.until;
            s.backoff_mark = s.failures.empty() ? now : s.failures.back();
            next_random(s.seed);
        }
        void operator()(const RolloutStarted& e)
        {
            s.rollout = Rollout{e.kind, s.generation, e.since.value_or(now), false};
            s.generation = ++s.last_generation;
        }
        void operator()(const RolloutEnded& e)
        {
            if (!s.rollout) return;
            if (e.reverted) s.generation = s.rollout->from_generation;
            s.rollout.reset();
        }
        void operator()(const MemorySampled& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            w->memory = e.bytes;
            // One sample under the limit (or the limit turned off) starts the window over.
            if (o.max_worker_memory == 0 || e.bytes <= o.max_worker_memory) {
                w->over_memory_since.reset();
            } else if (!w->over_memory_since) {
                w->over_memory_since = now;
                w->memory_window = o.max_worker_memory_window;
            }
        }
        void operator()(const ManagerResumed&)
        {
            // The manager itself was stopped (SIGSTOP, a debugger): silence was ours, not theirs.
            for (auto& w : s.workers) w.last_heartbeat = std::max(w.last_heartbeat, now);
        }
    };
    std::visit(Visitor{state, options, now}, event);
}

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
    bool may_spawn = !(state.backoff_until && now < *state.backoff_until);
    const std::size_t failures = failures_within(state, options, now);
    if (failures > options.restart_limit.count) {
        // A pool that never had a ready worker gets one backoff to prove itself, not a ladder.
        if (!state.ever_ready && state.backoff_until && state.failures.back() > *state.backoff_mark) {
            out.push_back(Exit{3, failures});
            return out;
        }
        if (!state.backoff_mark || state.failures.back() > *state.backoff_mark) {
            const unsigned level = backoff_level(state, options, now);
            out.push_back(BackOff{backoff_delay(state, level), level, failures});
            may_spawn = false;
        }
    }

    plan_capacity(state, options, now, may_spawn, out, leaving);
    return out;
}

TimePoint next_deadline(const PoolState& state, const Options& options, TimePoint now)
{
    TimePoint next = now + std::chrono::hours(1);
    auto consider = [&](TimePoint t) { next = std::min(next, t); };
    for (const auto& w : state.workers) {
        if (w.kill_at) continue;
        if (w.term_at) consider(*w.term_at + options.kill_timeout);
        else if (w.quit_at) consider(*w.quit_at + options.graceful_timeout);
        else if (!w.ready() && options.boot_timeout.count() > 0) consider(w.spawned_at + options.boot_timeout);
        else if (w.ready() && watches_silence(w, options)) consider(w.last_heartbeat + options.heartbeat_timeout);
        if (!w.leaving() && !w.ready() && !heartbeat_required(options) && options.ready_after)
            consider(w.spawned_at + *options.ready_after);
        if (!w.leaving() && w.age_limit.count() > 0) consider(w.spawned_at + w.age_limit);
    }
    if (state.backoff_until) consider(*state.backoff_until);
    if (state.rollout) consider(state.rollout->started + options.upgrade_timeout);
    return std::max(next, now);
}

}  // namespace herd
