// The manager's side of its workers: each action for a pool's workers done (one syscall and one
// log line), workers spawned, what the runners heard on the heartbeat channels, exits reaped, and
// what a freshly forked child closes of the manager's.
#include <herd/manager/manager.hpp>

#include <herd/config/supervision_values.hpp>
#include <herd/core/text.hpp>
#include <herd/detail/overloaded.hpp>
#include <herd/os/notify.hpp>
#include <herd/os/proctitle.hpp>
#include <herd/os/signals.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <unistd.h>

namespace herd {

using detail::overloaded;

namespace {

// Short intervals (a respawn takes well under a millisecond) are shown to a tenth of a
// millisecond below 10 ms, in the same unit format_duration() uses there ("0.4 ms", "3.2 ms").
std::string since(TimePoint from, TimePoint to)
{
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
    if (us >= 10'000 || us < 0) return format_duration(std::chrono::duration_cast<Duration>(to - from));
    return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
}

}  // namespace

// One action for one pool: one syscall and one log line, the pool named when there are several
void Manager::execute(std::size_t i, const Action& action, TimePoint now)
{
    const Options& options = pool(i).options;   // this pool's, in every line below
    const PoolState& state = pool(i).state;
    ProcessOps& ops = shell_of(i).ops;
    const std::string who = in_pool(i);
    const auto handle = [&](const Event& event, TimePoint at) { this->handle(i, event, at); };
    std::visit(overloaded{
                   [&](const Spawn& a) { spawn(i, a.slot, a.generation, now); },
                   [&](const Retire& a) {
                       const WorkerRecord& w = *state.find(a.pid);   // plan() names only known workers
                       if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("{}worker {} has no heartbeat for {} (timeout {}), retiring", who, a.pid,
                                        format_duration(a.elapsed), format_duration(options.heartbeat_timeout));
                       else if (a.reason == Reason::max_requests)
                           spdlog::info("{}worker {} retiring: max requests ({})", who, a.pid, w.requests);
                       else if (a.reason == Reason::max_age)
                           spdlog::info("{}worker {} retiring: max age ({})", who, a.pid, since(w.spawned_at, now));
                       else if (a.reason == Reason::bad_heartbeat)
                           spdlog::warn("{}worker {} retiring: bad heartbeat records ({} malformed, {} bytes of them, "
                                        "limits {} and {}; first: \"{}\")", who, a.pid, w.bad_records, w.bad_bytes,
                                        max_bad_records, max_bad_bytes, shell_of(i).runner->bad_record_sample(a.pid));
                       else if (a.reason == Reason::max_memory)
                           spdlog::warn("{}worker {} retiring: max memory ({} over {} for {})", who, a.pid,
                                        format_size(w.memory), format_size(options.max_worker_memory),
                                        since(w.over_memory_since.value_or(now), now));
                       else if (a.reason != Reason::shutdown)
                           spdlog::info("{}worker {} retiring: {}", who, a.pid, to_string(a.reason));
                       // QUIT to a herd worker; exec mode's --stop-signal to a program. Either
                       // way the policy counts it as the graceful request (SIGQUIT).
                       ops.send(a.pid, options.stop_signal);
                       handle(Signalled{a.pid, SIGQUIT, a.reason}, now);
                   },
                   [&](const Kill& a) {
                       if (a.reason == Reason::boot_timeout)
                           spdlog::warn("{}worker {} not ready {} after spawn (boot timeout), killing", who, a.pid,
                                        format_duration(a.elapsed));
                       else if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("{}worker {} has no heartbeat and cannot drain, killing", who, a.pid);
                       else if (a.reason == Reason::graceful_timeout)
                           spdlog::warn("{}worker {} still running {} after {} (graceful timeout), killing", who, a.pid,
                                        format_duration(a.elapsed), signal_name(options.stop_signal));
                       else
                           spdlog::warn("{}worker {} still running {} after TERM (kill timeout), killing", who, a.pid,
                                        format_duration(a.elapsed));
                       ops.send(a.pid, SIGKILL);
                       handle(Signalled{a.pid, SIGKILL, a.reason}, now);
                   },
                   [&](const Terminate& a) {
                       ops.send(a.pid, SIGTERM);
                       handle(Signalled{a.pid, SIGTERM, Reason::shutdown}, now);
                   },
                   [&](const BackOff& a) {
                       if (a.spawn_failed)
                           spdlog::warn("{}backing off: a spawn failed, next spawn in {}", who, format_duration(a.delay));
                       else
                           spdlog::warn("{}backing off: {} unexpected worker exits within {} (limit {}), next spawn in {}",
                                        who, a.failures, format_duration(options.restart_limit.window),
                                        options.restart_limit.count, format_duration(a.delay));
                       notify::status("backing off after " + std::to_string(a.failures) + " worker failures");
                       fail_waiting(Command::scale, "backing off after " + std::to_string(a.failures) +
                                                            " worker failures: " + std::to_string(ready_count(state)) +
                                                            " of " + std::to_string(state.target) + " workers ready");
                       handle(BackoffStarted{now + a.delay, a.level}, now);
                   },
                   [&](const Exit&) {},   // a pool's end is not the manager's: the supervisor decides that
                   [&](const DeclareReady& a) {
                       const WorkerRecord& w = *state.find(a.pid);
                       spdlog::info("{}worker {} ready in slot {} after {}", who, a.pid, w.slot, format_duration(a.ran));
                       handle(HeartbeatSeen{a.pid, std::nullopt, false}, now);
                       check_readiness();
                   },
                   [&](const RolloutDone& a) { rollout_done(i, a); },
                   [&](const RolloutFailed& a) { rollout_failed(i, a); },
               },
               action);
}

// Spawning (the runner gives each worker a heartbeat channel of its own)
void Manager::spawn(std::size_t i, int slot, unsigned generation, TimePoint now)
{
    std::string error;
    const Event spawned = shell_of(i).runner->spawn(slot, generation, error);
    handle(i, spawned, now);
    const auto* s = std::get_if<Spawned>(&spawned);
    if (!s) {
        spdlog::error("{}cannot spawn a worker in slot {}: {}", in_pool(i), slot, error);
        return;
    }
    shell_of(i).runner->set_request_limit(s->pid, pool(i).state.find(s->pid)->request_limit);
    spdlog::info("{}worker {} spawned in slot {} (generation {})", in_pool(i), s->pid, slot, generation);
    if (hooks_.after_spawn) hooks_.after_spawn(describe(i, *pool(i).state.find(s->pid)));
}

// What the runners heard on the heartbeat channels. A closed channel is a worker that is gone
// or going: the INT or TERM that the whole process group got (and that killed it) must be acted
// on before its exit is judged, or a shutdown reads as a crash.
void Manager::take_news()
{
    forget_gone_pools();   // between plans: no action in hand holds a pool's index
    for (std::size_t i = 0; i < shells_.size(); ++i) {
        Runner& runner = *shell_of(i).runner;
        if (!runner.has_news()) continue;
        for (const Notice& notice : runner.take()) {
            const auto now = Clock::now();
            if (const auto* closed = std::get_if<ChannelClosed>(&notice)) {
                read_pending_signals();
                if (auto status = runner.reap(closed->pid)) reap(closed->pid, *status);
            } else {
                heard(i, std::get<Event>(notice), now);
            }
        }
    }
}

void Manager::sample_beats(TimePoint now)
{
    std::vector<Event> beats;
    for (std::size_t i = 0; i < shells_.size(); ++i) {
        beats.clear();
        shell_of(i).runner->sample(beats);
        for (const Event& beat : beats) heard(i, beat, now);
    }
}

void Manager::heard(std::size_t i, const Event& event, TimePoint now)
{
    PoolState& state = pool(i).state;
    if (const auto* bad = std::get_if<HeartbeatMalformed>(&event)) {
        if (state.find(bad->pid)) handle(i, event, now);
        return;
    }
    const auto& beat = std::get<HeartbeatSeen>(event);
    const WorkerRecord* w = state.find(beat.pid);
    if (!w) return;
    const bool was_ready = w->ready();
    if (is_routine(state, beat)) apply(state, beat, pool(i).options, now);   // no plan() needed
    else handle(i, beat, now);
    w = state.find(beat.pid);
    if (!was_ready) {
        spdlog::info("{}worker {} ready in slot {} after {}", in_pool(i), beat.pid, w->slot, since(w->spawned_at, now));
        check_readiness();
    }
    if (hooks_.on_heartbeat) hooks_.on_heartbeat(describe(i, *w));
}

// Reaping: only pids we own, each exactly once
void Manager::reap_exited()
{
    // Peek first (the seam waits with WNOWAIT), so that a child is reaped only by whoever owns it:
    // a worker here, an adopted orphan only when we are PID 1 or a subreaper.
    for (std::size_t guard = 0; guard < 4 * worker_count() + 64; ++guard) {
        const auto pid = system_.exited_child();
        if (!pid) return;
        const auto owner = std::find_if(shells_.begin(), shells_.end(), [&](const auto& s) { return s->ops.owns(*pid); });
        if (const auto i = supervisor_.pool_of(*pid)) {
            if (auto status = shell_of(*i).ops.try_reap(*pid)) reap(*pid, *status);
        } else if (owner != shells_.end()) {
            (*owner)->ops.discard();   // the standby died before it was needed: reap it, fork another later
        } else if (reaps_orphans_ && !is_preflight(*pid)) {
            system_.reap_orphan(*pid);
            spdlog::debug("reaped orphan {}", *pid);
        } else {
            break;   // another owner's child is first in line: look at each of ours instead
        }
    }
    std::vector<std::pair<std::size_t, int>> pids;
    for (std::size_t i = 0; i < shells_.size(); ++i)
        for (const auto& w : pool(i).state.workers) pids.emplace_back(i, w.pid);
    for (const auto& [i, pid] : pids)
        if (auto status = shell_of(i).ops.try_reap(pid)) reap(pid, *status);
}

void Manager::reap(int pid, int status)
{
    const auto i = supervisor_.pool_of(pid);
    if (!i) return;
    const WorkerRecord* w = pool(*i).state.find(pid);
    const auto now = Clock::now();
    const std::string outcome = classify(*w, status, pool(*i).options.stop_signal);
    const WorkerEvent event = describe(*i, *w, outcome);
    const bool failure = is_failure(pool(*i).state, *w);
    spdlog::log(failure ? spdlog::level::warn : spdlog::level::info, "{}worker {} reaped: {}, slot {}, ran {}",
                in_pool(*i), pid, outcome, w->slot, since(w->spawned_at, now));
    shell_of(*i).history.add(w->slot, {pid, outcome, std::chrono::duration_cast<Duration>(now - w->spawned_at), now});
    shell_of(*i).runner->forget(pid);
    const std::size_t step = pool(*i).step;
    const unsigned runs = pool(*i).runs;
    handle(*i, WorkerExited{pid, status}, now);
    // A restart plan took a step: which one, since a delay or a hold shows nowhere else in the log
    if (const auto& plan = pool(*i).supervision.plan;
        plan && step < plan->steps.size() && (pool(*i).step != step || pool(*i).runs != runs))
        spdlog::info("{}slot {}: plan step {} of {}, {}", in_pool(*i), event.slot, step + 1, plan->steps.size(),
                     to_string(std::vector<PlanStep>{plan->steps[step]}));
    if (hooks_.after_reap) hooks_.after_reap(event);
    check_readiness();
}

void Manager::close_in_child(std::string_view own)
{
    // A standby shows as one until it is given a slot; a worker's own title replaces this.
    proctitle::set(options_.name + ": standby");
    // Raw close only: the child must not touch the manager's io_context (its epoll is shared).
    ::close(signal_fd_.native_handle());
    for (auto& shell : shells_) {
        shell->runner->close_in_child();
        shell->ops.close_in_child();   // every pool's output pipes, whichever pool forked this child
        // A worker holding a listener of an older generation would keep that socket open after its
        // own generation left, and clients would wait in its backlog for nobody.
        for (const auto& l : shell->previous_listeners) ::close(l.fd);
    }
    // Another pool's sockets too: a worker holding one would keep it open after that pool moved
    // to other addresses on a reload (clients queued for nobody, the address never free again).
    for (std::size_t i = 0; !own.empty() && i < shells_.size(); ++i)
        if (pool(i).name != own)
            for (const auto& l : *shell_of(i).listeners) ::close(l.fd);
    for (int fd : private_fds_) ::close(fd);
    if (previous_binary_fd_ >= 0) ::close(previous_binary_fd_);
    if (pid_file_fd_ >= 0) ::close(pid_file_fd_);
    if (control_) control_->close_in_child();
}

WorkerEvent Manager::describe(std::size_t i, const WorkerRecord& w, std::string outcome) const
{
    const WorkerExit exit = exit_of(outcome);
    return WorkerEvent{w.pid, w.slot, w.generation, exit, std::move(outcome), pool(i).name};
}

}  // namespace herd
