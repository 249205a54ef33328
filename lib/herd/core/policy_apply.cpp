// apply(): what the manager learns (an Event) folded into the pool's state.
#include <herd/core/policy.hpp>
#include <herd/core/policy_detail.hpp>

#include <algorithm>
#include <csignal>

namespace herd {

using detail::next_random;
using detail::unit_random;

TimePoint beat_time(const WorkerRecord& w, const HeartbeatSeen& beat, TimePoint now)
{
    if (!beat.at) return now;
    const TimePoint floor = std::min(w.last_heartbeat, now);
    return std::clamp(*beat.at, floor, now);
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
            s.held.erase(e.slot);
            s.spawn_failed = false;
        }
        void operator()(const SpawnFailed&)
        {
            s.failures.push_back(now);
            while (now - s.failures.front() >= o.restart_limit.window) s.failures.pop_front();
            s.spawn_failed = true;
        }
        void operator()(const HeartbeatSeen& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            if (!w->ready_at) w->ready_at = now;
            if (e.record) w->beating = true;
            s.ever_ready = true;
            if (s.rollout && w->generation == s.generation) s.rollout->new_ready = true;
            w->last_heartbeat = beat_time(*w, e, now);
            if (e.requests) w->requests = std::max(w->requests, *e.requests);   // a count never goes back
        }
        void operator()(const HeartbeatMalformed& e)
        {
            auto* w = s.find(e.pid);
            if (!w) return;
            w->bad_records += e.records;
            w->bad_bytes += e.bytes;
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
            // A failed upgrade or reload is over: the exits that failed it were its own (the rule
            // that failed it counts them since it started). Left in the restart window, they
            // would hold the generation that serves again off replacing its next lost worker
            // for a backoff of up to 30 s. A pool's restart keeps them: its plan goes on.
            if (e.reverted && s.rollout->kind != Reason::restart) {
                const TimePoint started = s.rollout->started;
                std::erase_if(s.failures, [&](TimePoint t) { return t >= started; });
                if (s.backoff_mark && *s.backoff_mark >= started) {
                    s.backoff_until.reset();
                    s.backoff_mark.reset();
                    s.backoff_level = 0;
                }
            }
            s.rollout.reset();
        }
        void operator()(const ManagerResumed&)
        {
            // The manager itself was stopped (SIGSTOP, a debugger): silence was ours, not theirs.
            for (auto& w : s.workers) w.last_heartbeat = std::max(w.last_heartbeat, now);
        }
    };
    std::visit(Visitor{state, options, now}, event);
}

}  // namespace herd
