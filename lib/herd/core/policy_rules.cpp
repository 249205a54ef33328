// The policy core's rules about a worker and the pool: their deadlines, readiness, silence,
// failures, how an exit reads. plan() (policy.cpp) and apply() (policy_apply.cpp) build on them.
#include <herd/core/policy.hpp>
#include <herd/core/policy_detail.hpp>

#include <algorithm>
#include <csignal>
#include <utility>
#include <sys/wait.h>

namespace herd {

using detail::reached;

std::string to_string(Reason reason)
{
    switch (reason) {
    case Reason::none: return "none";
    case Reason::scale_down: return "scaled down";
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
    case Reason::restart: return "restart";
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
    return w.over_memory_since && now >= *w.over_memory_since + w.memory_window;
}

bool is_routine(const PoolState& state, const HeartbeatSeen& beat)
{
    const WorkerRecord* w = state.find(beat.pid);
    if (!w || !w->ready()) return false;   // a first heartbeat makes a worker ready
    if (!w->beating) return false;         // a first record may start the watch of its silence (a deadline)
    return !(w->request_limit && beat.requests && *beat.requests >= w->request_limit);
}

bool is_routine(const PoolState& state, const MemorySampled& sample, const Options& options)
{
    const WorkerRecord* w = state.find(sample.pid);
    if (!w) return true;   // not (or no longer) a worker: the sample changes nothing
    const bool over = options.max_worker_memory > 0 && sample.bytes > options.max_worker_memory;
    return over == w->over_memory_since.has_value();
}

bool at_target(const PoolState& state)
{
    return state.phase == Phase::running && ready_count(state) >= state.target;
}

bool gives_up(const PoolState& state, const Options& options, TimePoint now)
{
    return state.backs_off && !state.ever_ready && state.backoff_until && !state.failures.empty() &&
           state.failures.back() > *state.backoff_mark &&
           failures_within(state, options, now) > options.restart_limit.count;
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

// Exec mode's readiness by time, for a booting worker whose heartbeats are not required.
std::optional<TimePoint> ready_after_point(const WorkerRecord& w, const Options& options)
{
    if (w.ready() || heartbeat_required(options) || !options.ready_after) return std::nullopt;
    return w.spawned_at + *options.ready_after;
}

}  // namespace

bool ready_by_time(const WorkerRecord& w, const Options& options, TimePoint now)
{
    return reached(ready_after_point(w, options), now);
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

WorkerExit exit_of(std::string_view c)
{
    if (c.starts_with("finished")) return WorkerExit::finished;
    if (c.starts_with("retired")) return WorkerExit::retired;
    if (c.starts_with("stopped")) return WorkerExit::stopped;
    if (c.starts_with("no heartbeat")) return WorkerExit::no_heartbeat;
    if (c.starts_with("boot timeout")) return WorkerExit::boot_timeout;
    if (c.starts_with("killed")) return WorkerExit::killed;
    if (c.starts_with("crashed")) return WorkerExit::crashed;
    return WorkerExit::none;
}

WorkerDeadlines deadlines(const WorkerRecord& w, const Options& options)
{
    WorkerDeadlines d;
    if (w.kill_at) return d;   // SIGKILL cannot be ignored: only its exit is left to wait for
    if (w.term_at) d.escalate = *w.term_at + options.kill_timeout;
    else if (w.quit_at) d.escalate = *w.quit_at + options.graceful_timeout;
    if (w.leaving()) return d;
    if (!w.ready() && options.boot_timeout.count() > 0) d.boot = w.spawned_at + options.boot_timeout;
    if (w.ready() && watches_silence(w, options)) d.silence = w.last_heartbeat + options.heartbeat_timeout;
    d.ready = ready_after_point(w, options);
    if (w.age_limit.count() > 0) d.max_age = w.spawned_at + w.age_limit;
    if (w.over_memory_since) d.max_memory = *w.over_memory_since + w.memory_window;
    return d;
}

PoolDeadlines deadlines(const PoolState& state, const Options& options)
{
    PoolDeadlines d;
    d.backoff_end = state.backoff_until;
    if (state.rollout) d.rollout_timeout = state.rollout->started + options.upgrade_timeout;
    for (const auto& [slot, until] : state.held)
        if (until != TimePoint::max() && (!d.hold_end || until < *d.hold_end)) d.hold_end = until;
    return d;
}

}  // namespace herd
