#include <herd/manager/manager.hpp>

#include <herd/manager/preflight.hpp>

#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/os/memory.hpp>
#include <herd/os/notify.hpp>
#include <herd/os/proctitle.hpp>
#include <herd/os/signals.hpp>
#include <herd/core/text.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace herd {

namespace {

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

// How long the loop runs handlers that are ready before it plans again.
constexpr auto ready_handlers_limit = std::chrono::milliseconds(5);
constexpr Duration memory_sample_min = std::chrono::milliseconds(50);
constexpr Duration memory_sample_max = std::chrono::seconds(1);

// Short intervals (a respawn takes well under a millisecond) are shown to a tenth of a
// millisecond below 10 ms, in the same unit format_duration() uses there ("0.4 ms", "3.2 ms").
std::string since(TimePoint from, TimePoint to)
{
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
    if (us >= 10'000 || us < 0) return format_duration(std::chrono::duration_cast<Duration>(to - from));
    return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
}

}  // namespace

Manager::Manager(boost::asio::io_context& io, Options options, std::vector<Listener>& listeners, ProcessOps& ops,
                 ManagerHooks hooks)
    : io_(io), options_(std::move(options)), listeners_(listeners), ops_(ops), hooks_(std::move(hooks)), signal_fd_(io),
      runner_(io_, ops_, options_)
{
    state_.target = options_.workers;
    state_.seed ^= std::uint64_t(::getpid()) * 0x100000001b3ull ^ std::uint64_t(Clock::now().time_since_epoch().count());
    int subreaper = 0;
    ::prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
    reaps_orphans_ = ::getpid() == 1 || subreaper;
}

Manager::~Manager() = default;

int Manager::run()
{
    if (started_at_ == TimePoint{}) started_at_ = Clock::now();
    wake_at_ = Clock::now();
    watch_signals();   // an image started by USR2 inherits every signal blocked; this sets the mask right
    watch_watchdog();
    watch_memory();
    if (!adopted_)
        spdlog::info("manager {} started: {} workers, generation {}", ::getpid(), state_.target, state_.generation);
    reap_exited();   // children that exited while the previous image handed over
    check_readiness();
    while (!exit_code_) manage();
    finish();
    return *exit_code_;
}

void Manager::manage()
{
    // Forgive silence if we ourselves were stopped: we woke far past the deadline we slept to
    auto now = Clock::now();
    if (options_.heartbeat_timeout.count() > 0 && now - wake_at_ > options_.heartbeat_timeout)
        handle(ManagerResumed{}, now);

    // Decide and act, when something changed or a deadline came
    if (replan_ || now >= wake_at_) {
        replan_ = false;
        for (const Action& action : plan(state_, options_, now)) execute(action, now);
        if (exit_code_) return;
        wake_at_ = next_deadline(state_, options_, Clock::now());
    }
    prepare_ahead();

    // Wait for heartbeats, signals and exits; not while an action's outcome is still to be planned
    if (io_.stopped()) io_.restart();
    if (!replan_) io_.run_one_until(wake_at_);
    // Then whatever else is ready, for a while: a worker that writes without pause (exec mode's
    // output, heartbeats in a loop) must not keep the manager from deciding
    for (const auto until = Clock::now() + ready_handlers_limit; Clock::now() < until && io_.poll_one();) {
    }
    take_news();
}

// A standby process is forked while the pool is steady, so that a replacement needs no fork.
void Manager::prepare_ahead()
{
    if (is_steady(state_) && !preflight_) ops_.prepare();
}

void Manager::handle(const Event& event, TimePoint now)
{
    apply(state_, event, options_, now);
    replan_ = true;
}

void Manager::execute(const Action& action, TimePoint now)
{
    std::visit(overloaded{
                   [&](const Spawn& a) { spawn(a.slot, a.generation, now); },
                   [&](const Retire& a) {
                       const WorkerRecord& w = *state_.find(a.pid);   // plan() names only known workers
                       if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("worker {} has no heartbeat for {} (timeout {}), retiring", a.pid,
                                        format_duration(a.elapsed), format_duration(options_.heartbeat_timeout));
                       else if (a.reason == Reason::max_requests)
                           spdlog::info("worker {} retiring: max requests ({})", a.pid, w.requests);
                       else if (a.reason == Reason::max_age)
                           spdlog::info("worker {} retiring: max age ({})", a.pid, since(w.spawned_at, now));
                       else if (a.reason == Reason::bad_heartbeat)
                           spdlog::warn("worker {} retiring: bad heartbeat records ({} malformed, {} bytes of them, "
                                        "limits {} and {}; first: \"{}\")", a.pid, w.bad_records, w.bad_bytes,
                                        max_bad_records, max_bad_bytes, runner_.bad_record_sample(a.pid));
                       else if (a.reason == Reason::max_memory)
                           spdlog::warn("worker {} retiring: max memory ({} over {} for {})", a.pid,
                                        format_size(w.memory), format_size(options_.max_worker_memory),
                                        since(w.over_memory_since.value_or(now), now));
                       else if (a.reason != Reason::shutdown)
                           spdlog::info("worker {} retiring: {}", a.pid, to_string(a.reason));
                       // QUIT to a herd worker; exec mode's --stop-signal to a program. Either
                       // way the policy counts it as the graceful request (SIGQUIT).
                       ops_.send(a.pid, options_.stop_signal);
                       handle(Signalled{a.pid, SIGQUIT, a.reason}, now);
                   },
                   [&](const Kill& a) {
                       if (a.reason == Reason::boot_timeout)
                           spdlog::warn("worker {} not ready {} after spawn (boot timeout), killing", a.pid,
                                        format_duration(a.elapsed));
                       else if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("worker {} has no heartbeat and cannot drain, killing", a.pid);
                       else if (a.reason == Reason::graceful_timeout)
                           spdlog::warn("worker {} still running {} after {} (graceful timeout), killing", a.pid,
                                        format_duration(a.elapsed), signal_name(options_.stop_signal));
                       else
                           spdlog::warn("worker {} still running {} after TERM (kill timeout), killing", a.pid,
                                        format_duration(a.elapsed));
                       ops_.send(a.pid, SIGKILL);
                       handle(Signalled{a.pid, SIGKILL, a.reason}, now);
                   },
                   [&](const Terminate& a) {
                       ops_.send(a.pid, SIGTERM);
                       handle(Signalled{a.pid, SIGTERM, Reason::shutdown}, now);
                   },
                   [&](const BackOff& a) {
                       spdlog::warn("backing off: {} unexpected worker exits within {} (limit {}), next spawn in {}",
                                    a.failures, format_duration(options_.restart_limit.window), options_.restart_limit.count,
                                    format_duration(a.delay));
                       notify::status("backing off after " + std::to_string(a.failures) + " worker failures");
                       fail_waiting(control::Op::scale, "backing off after " + std::to_string(a.failures) +
                                                            " worker failures: " + std::to_string(ready_count(state_)) +
                                                            " of " + std::to_string(state_.target) + " workers ready");
                       handle(BackoffStarted{now + a.delay, a.level}, now);
                   },
                   [&](const Exit& a) {
                       if (a.code == 3)
                           spdlog::critical("giving up: no worker ever became ready and {} exited within {}, exit code 3",
                                            a.failures, format_duration(options_.restart_limit.window));
                       exit_code_ = a.code;
                   },
                   [&](const DeclareReady& a) {
                       const WorkerRecord& w = *state_.find(a.pid);
                       spdlog::info("worker {} ready in slot {} after {}", a.pid, w.slot, format_duration(a.ran));
                       handle(HeartbeatSeen{a.pid, std::nullopt, false}, now);
                       check_readiness();
                   },
                   [&](const RolloutDone& a) { rollout_done(a); },
                   [&](const RolloutFailed& a) { rollout_failed(a); },
               },
               action);
}

// Commands: from a signal, or from the control socket with a client waiting for the outcome
// (answered when the operation has finished or failed). `said` is who asked, for the log.
void Manager::scale(const Scale& request, const std::string& said, std::optional<std::uint64_t> client)
{
    if (state_.phase != Phase::running) {
        spdlog::warn("{}: the manager is stopping, ignored", said);
        if (client) control_->answer(*client, control::error_answer("the manager is stopping"));
        return;
    }
    handle(request, Clock::now());
    spdlog::info("{}: target is now {} workers", said, state_.target);
    if (client) waiting_.push_back({*client, control::Op::scale});
    check_readiness();
}

void Manager::stop(bool graceful, const std::string& said, std::optional<std::uint64_t> client)
{
    if (client) waiting_.push_back({*client, control::Op::stop});
    if (graceful)
        spdlog::info("{}: graceful shutdown of {} workers (graceful timeout {})", said, state_.workers.size(),
                     format_duration(options_.graceful_timeout));
    else
        spdlog::info("{}: fast shutdown of {} workers (kill timeout {})", said, state_.workers.size(),
                     format_duration(options_.kill_timeout));
    notify::stopping(graceful ? "stopping gracefully" : "stopping");
    ops_.discard();
    abandon_preflight();
    // Nobody is left waiting in a backlog that will be reset: the manager's copies close now,
    // each worker closes its own after accepting what was already queued.
    stop_listening();
    handle(StopRequested{graceful}, Clock::now());
    for (auto op : {control::Op::scale, control::Op::reload, control::Op::upgrade})
        fail_waiting(op, "the manager is stopping");
}

// Why a reload or an upgrade cannot start now; nothing when it can.
std::optional<std::string> Manager::rollout_refusal() const
{
    if (state_.phase != Phase::running) return "the manager is stopping";
    if (preflight_ || (state_.rollout && state_.rollout->kind == Reason::upgrade)) return "an upgrade is in progress";
    if (state_.rollout) return "a reload is in progress";
    return std::nullopt;
}

void Manager::start_rollout(Reason kind, const std::string& said, std::optional<std::uint64_t> client)
{
    if (const auto refusal = rollout_refusal()) {
        spdlog::warn("{}: {}, ignored", said, *refusal);
        if (client) control_->answer(*client, control::error_answer(*refusal));
        return;
    }
    if (client) waiting_.push_back({*client, control::op_for(kind)});
    rollout_requested_ = Clock::now();
    notify_reloading();
    if (kind == Reason::reload) {
        start_reload(said);
    } else {
        spdlog::info("{}: upgrading to {}", said, binary_);
        start_upgrade();
    }
}

// Spawning (the runner gives each worker a heartbeat channel of its own)
void Manager::spawn(int slot, unsigned generation, TimePoint now)
{
    std::string error;
    const Event spawned = runner_.spawn(slot, generation, error);
    handle(spawned, now);
    const auto* s = std::get_if<Spawned>(&spawned);
    if (!s) {
        spdlog::error("cannot spawn a worker in slot {}: {}", slot, error);
        return;
    }
    spdlog::info("worker {} spawned in slot {} (generation {})", s->pid, slot, generation);
    if (hooks_.after_spawn) hooks_.after_spawn(describe(*state_.find(s->pid)));
}

// What the runner heard on the heartbeat channels. A closed channel is a worker that is gone
// or going: the INT or TERM that the whole process group got (and that killed it) must be acted
// on before its exit is judged, or a shutdown reads as a crash.
void Manager::take_news()
{
    for (const Notice& notice : runner_.take()) {
        const auto now = Clock::now();
        if (const auto* closed = std::get_if<ChannelClosed>(&notice)) {
            read_pending_signals();
            if (auto status = runner_.reap(closed->pid)) reap(closed->pid, *status);
        } else {
            heard(std::get<Event>(notice), now);
        }
    }
}

void Manager::heard(const Event& event, TimePoint now)
{
    if (const auto* bad = std::get_if<HeartbeatMalformed>(&event)) {
        if (state_.find(bad->pid)) handle(event, now);
        return;
    }
    const auto& beat = std::get<HeartbeatSeen>(event);
    const WorkerRecord* w = state_.find(beat.pid);
    if (!w) return;
    const bool was_ready = w->ready();
    if (is_routine(state_, beat)) apply(state_, beat, options_, now);   // no plan() needed
    else handle(beat, now);
    if (!was_ready) {
        spdlog::info("worker {} ready in slot {} after {}", beat.pid, w->slot, since(w->spawned_at, now));
        check_readiness();
    }
    if (hooks_.on_heartbeat) hooks_.on_heartbeat(describe(*w));
}

// Reaping: only pids we own, each exactly once
void Manager::reap_exited()
{
    // Peek first (WNOWAIT), so that a child is reaped only by whoever owns it: a worker here,
    // an adopted orphan only when we are PID 1 or a subreaper.
    for (std::size_t guard = 0; guard < 4 * state_.workers.size() + 64; ++guard) {
        const auto pid = ops_.exited_child();
        if (!pid) return;
        if (state_.find(*pid)) {
            if (auto status = ops_.try_reap(*pid)) reap(*pid, *status);
        } else if (ops_.owns(*pid)) {
            ops_.discard();   // the standby died before it was needed: reap it, fork another later
        } else if (reaps_orphans_ && !is_preflight(*pid)) {
            ops_.reap_orphan(*pid);
            spdlog::debug("reaped orphan {}", *pid);
        } else {
            break;   // another owner's child is first in line: look at each of ours instead
        }
    }
    std::vector<int> pids;
    for (const auto& w : state_.workers) pids.push_back(w.pid);
    for (int pid : pids)
        if (auto status = ops_.try_reap(pid)) reap(pid, *status);
}

void Manager::reap(int pid, int status)
{
    const auto* w = state_.find(pid);
    if (!w) return;
    const auto now = Clock::now();
    const std::string outcome = classify(*w, status, options_.stop_signal);
    const WorkerEvent event = describe(*w, outcome);
    const bool failure = is_failure(state_, *w);
    spdlog::log(failure ? spdlog::level::warn : spdlog::level::info, "worker {} reaped: {}, slot {}, ran {}", pid,
                outcome, w->slot, since(w->spawned_at, now));
    history_.add(w->slot, {pid, outcome, std::chrono::duration_cast<Duration>(now - w->spawned_at), now});
    runner_.forget(pid);
    handle(WorkerExited{pid, status}, now);
    if (hooks_.after_reap) hooks_.after_reap(event);
    check_readiness();
}

// Readiness: announced each time the pool reaches its target
void Manager::check_readiness()
{
    const bool ready = at_target(state_);
    // During a reload or upgrade the old generation keeps the pool ready; the rollout's own
    // "complete" line (and READY=1) says when the new generation took over.
    if (ready && !pool_ready_ && !state_.rollout) {
        spdlog::info("all {} workers ready", state_.target);
        notify::ready(std::to_string(state_.target) + " workers ready");
        if (on_first_ready_) std::exchange(on_first_ready_, nullptr)();
    }
    pool_ready_ = ready;
    if (is_settled(state_)) answer_waiting(control::Op::scale, control::scale_answer(state_));
}

void Manager::stop_listening()
{
    close_listeners(listeners_, true);
}

void Manager::finish()
{
    ops_.discard();
    // Giving up (exit 3) leaves booting workers behind: they go with the manager.
    for (const auto& w : state_.workers) ops_.send(w.pid, SIGKILL);
    for (const auto& w : state_.workers) {
        int status = 0;
        while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    runner_.clear();
    if (control_) {
        answer_waiting(control::Op::stop, control::stop_answer(*exit_code_));
        for (auto op : {control::Op::scale, control::Op::reload, control::Op::upgrade})
            fail_waiting(op, "the manager exited with code " + std::to_string(*exit_code_));
        control_->close_and_unlink();
    }
    if (hooks_.on_shutdown) hooks_.on_shutdown();
    spdlog::info("manager {} exiting with code {}", ::getpid(), *exit_code_);
}

void Manager::close_in_child()
{
    // A standby shows as one until it is given a slot; a worker's own title replaces this.
    proctitle::set(options_.name + ": standby");
    // Raw close only: the child must not touch the manager's io_context (its epoll is shared).
    ::close(signal_fd_.native_handle());
    runner_.close_in_child();
    for (int fd : private_fds_) ::close(fd);
    // A worker holding a listener of an older generation would keep that socket open after its
    // own generation left, and clients would wait in its backlog for nobody.
    for (const auto& l : previous_listeners_) ::close(l.fd);
    if (previous_binary_fd_ >= 0) ::close(previous_binary_fd_);
    if (pid_file_fd_ >= 0) ::close(pid_file_fd_);
    if (control_) control_->close_in_child();
}

// systemd's watchdog: WATCHDOG=1 at half the interval it asked for, from the manager loop
void Manager::watch_watchdog()
{
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    if (!usec || (pid && std::atoi(pid) != ::getpid())) return;
    const auto interval = std::chrono::microseconds(std::atoll(usec)) / 2;
    if (interval.count() <= 0) return;
    if (!watchdog_) watchdog_ = std::make_unique<boost::asio::steady_timer>(io_);
    notify::send("WATCHDOG=1");
    watchdog_->expires_after(interval);
    watchdog_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) watch_watchdog();
    });
}

// --max-worker-memory: a timer samples every worker's own memory while the option is on
void Manager::watch_memory()
{
    if (options_.max_worker_memory == 0) {
        memory_timer_.reset();   // off, or turned off by a reload: no timer, no work
        return;
    }
    if (memory_timer_) return;   // already sampling; each tick reads the options anew
    memory_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    sample_memory();
}

void Manager::sample_memory()
{
    // A gone or unreadable worker gives no sample: its exit is reaped as usual.
    const auto now = Clock::now();
    std::vector<int> pids;
    for (const auto& w : state_.workers)
        if (!w.leaving()) pids.push_back(w.pid);
    for (const int pid : pids)
        if (const auto bytes = read_private_memory(pid)) handle(MemorySampled{pid, *bytes}, now);
    // A few samples per window, so that one sample under the limit is seen before it ends.
    const Duration period = std::clamp<Duration>(options_.max_worker_memory_window / 4, memory_sample_min,
                                                 memory_sample_max);
    memory_timer_->expires_after(period);
    memory_timer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec && memory_timer_) sample_memory();
    });
}

WorkerEvent Manager::describe(const WorkerRecord& w, std::string outcome) const
{
    return WorkerEvent{w.pid, w.slot, w.generation, std::move(outcome)};
}

}  // namespace herd
