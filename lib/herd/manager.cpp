#include <herd/manager.hpp>

#include <herd/listeners.hpp>
#include <herd/log.hpp>
#include <herd/notify.hpp>
#include <herd/signals.hpp>

#include <boost/asio/read.hpp>
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

std::string ms(Duration d)
{
    return format_duration(d);
}

// Short intervals (a respawn takes well under a millisecond) are shown to the microsecond.
std::string since(TimePoint from, TimePoint to)
{
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
    if (us >= 10'000) return format_duration(std::chrono::duration_cast<Duration>(to - from));
    if (us >= 1000) return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
    return std::to_string(us) + " us";
}

}  // namespace

Manager::Manager(boost::asio::io_context& io, Options options, std::vector<Listener>& listeners, ProcessOps& ops,
                 ManagerHooks hooks)
    : io_(io), options_(std::move(options)), listeners_(listeners), ops_(ops), hooks_(std::move(hooks)), signals_(io)
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
    started_at_ = last_manage_ = Clock::now();
    watch_signals();
    spdlog::info("manager {} started: {} workers, generation {}", ::getpid(), state_.target, state_.generation);
    check_readiness();
    while (!exit_code_) manage();
    finish();
    return *exit_code_;
}

void Manager::manage()
{
    // Forgive silence if we ourselves were stopped (unicorn's suspend guard)
    auto now = Clock::now();
    if (options_.heartbeat_timeout.count() > 0 && now - last_manage_ > options_.heartbeat_timeout)
        handle(ManagerResumed{}, now);
    last_manage_ = now;

    // Decide and act
    for (const Action& action : plan(state_, options_, now)) execute(action, now);
    if (exit_code_) return;

    // Wait for heartbeats, signals and exits
    if (io_.stopped()) io_.restart();
    io_.run_one_until(next_deadline(state_, options_, Clock::now()));
    io_.poll();
}

void Manager::handle(const Event& event, TimePoint now)
{
    apply(state_, event, options_, now);
}

void Manager::execute(const Action& action, TimePoint now)
{
    std::visit(overloaded{
                   [&](const Spawn& a) { spawn(a.slot, a.generation, now); },
                   [&](const Retire& a) {
                       if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("worker {} has no heartbeat for {} (timeout {}), retiring", a.pid,
                                        ms(a.elapsed), ms(options_.heartbeat_timeout));
                       else if (a.reason == Reason::max_requests)
                           spdlog::info("worker {} retiring: max requests ({})", a.pid,
                                        state_.find(a.pid) ? state_.find(a.pid)->requests : 0);
                       else if (a.reason == Reason::max_age)
                           spdlog::info("worker {} retiring: max age ({})", a.pid,
                                        state_.find(a.pid) ? since(state_.find(a.pid)->spawned_at, now) : "?");
                       else if (a.reason != Reason::shutdown)
                           spdlog::info("worker {} retiring: {}", a.pid, to_string(a.reason));
                       ops_.send(a.pid, SIGQUIT);
                       handle(Signalled{a.pid, SIGQUIT, a.reason}, now);
                   },
                   [&](const Kill& a) {
                       if (a.reason == Reason::boot_timeout)
                           spdlog::warn("worker {} not ready {} after spawn (boot timeout), killing", a.pid,
                                        ms(a.elapsed));
                       else if (a.reason == Reason::no_heartbeat)
                           spdlog::warn("worker {} has no heartbeat and cannot drain, killing", a.pid);
                       else if (a.reason == Reason::graceful_timeout)
                           spdlog::warn("worker {} still running {} after QUIT (graceful timeout), killing", a.pid,
                                        ms(a.elapsed));
                       else
                           spdlog::warn("worker {} still running {} after TERM (kill timeout), killing", a.pid,
                                        ms(a.elapsed));
                       ops_.send(a.pid, SIGKILL);
                       handle(Signalled{a.pid, SIGKILL, a.reason}, now);
                   },
                   [&](const Terminate& a) {
                       ops_.send(a.pid, SIGTERM);
                       handle(Signalled{a.pid, SIGTERM, Reason::shutdown}, now);
                   },
                   [&](const BackOff& a) {
                       spdlog::warn("backing off: {} unexpected worker exits within {} (limit {}), next spawn in {}",
                                    a.failures, ms(options_.restart_limit.window), options_.restart_limit.count,
                                    ms(a.delay));
                       notify::status("backing off after " + std::to_string(a.failures) + " worker failures");
                       handle(BackoffStarted{now + a.delay, a.level}, now);
                   },
                   [&](const Exit& a) {
                       if (a.code == 3)
                           spdlog::critical("giving up: no worker ever became ready and {} exited within {}, exit code 3",
                                            a.failures, ms(options_.restart_limit.window));
                       exit_code_ = a.code;
                   },
               },
               action);
}

// Signals: handlers only record, the loop acts
void Manager::watch_signals()
{
    for (int s : manager_signals()) signals_.add(s);
    std::signal(SIGPIPE, SIG_IGN);
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        on_signal(signal);
        watch_signals();
    });
}

void Manager::on_signal(int signal)
{
    const auto command = command_for(signal);
    if (!command) return;
    const auto now = Clock::now();
    const std::string name = signal_name(signal);
    switch (*command) {
    case Command::reap:
        reap_exited();
        break;
    case Command::scale_up:
    case Command::scale_down:
        if (state_.phase != Phase::running) break;
        handle(Scale{std::nullopt, *command == Command::scale_up ? 1 : -1}, now);
        spdlog::info("received {}: target is now {} workers", name, state_.target);
        check_readiness();
        break;
    case Command::graceful_stop:
    case Command::fast_stop: {
        const bool graceful = *command == Command::graceful_stop;
        if (graceful)
            spdlog::info("received {}: graceful shutdown of {} workers (graceful timeout {})", name,
                         state_.workers.size(), ms(options_.graceful_timeout));
        else
            spdlog::info("received {}: fast shutdown of {} workers (kill timeout {})", name, state_.workers.size(),
                         ms(options_.kill_timeout));
        notify::stopping(graceful ? "stopping gracefully" : "stopping");
        // Nobody is left waiting in a backlog that will be reset: the manager's copies close now,
        // each worker closes its own after accepting what was already queued.
        stop_listening();
        handle(StopRequested{graceful}, now);
        break;
    }
    case Command::reopen_logs:
        spdlog::info("received {}: reopening log files", name);
        log::reopen();
        for (const auto& w : state_.workers) ops_.send(w.pid, SIGUSR1);
        break;
    case Command::reload:
        spdlog::warn("received {}: rolling reload is not available in this version yet, ignored", name);
        break;
    case Command::upgrade:
        spdlog::warn("received {}: upgrade is not available in this version yet, ignored", name);
        break;
    }
}

// Spawning: a pipe per worker, so a record can only come from the worker that owns the pipe
void Manager::spawn(int slot, unsigned generation, TimePoint now)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        spdlog::error("cannot create a heartbeat pipe for slot {}: {}", slot, std::strerror(errno));
        handle(SpawnFailed{slot}, now);
        return;
    }
    int pid = 0;
    try {
        pid = ops_.spawn(SpawnRequest{slot, generation, fds[1], int(::getpid())});
    } catch (const std::exception& e) {
        ::close(fds[0]);
        ::close(fds[1]);
        spdlog::error("cannot spawn a worker in slot {}: {}", slot, e.what());
        handle(SpawnFailed{slot}, now);
        return;
    }
    ::close(fds[1]);
    channels_.emplace(pid, std::make_unique<Channel>(io_, fds[0]));
    handle(Spawned{pid, slot, generation}, now);
    spdlog::info("worker {} spawned in slot {} (generation {})", pid, slot, generation);
    watch_heartbeats(pid);
    if (hooks_.after_spawn) hooks_.after_spawn(describe(*state_.find(pid)));
}

void Manager::watch_heartbeats(int pid)
{
    auto it = channels_.find(pid);
    if (it == channels_.end()) return;
    Channel& ch = *it->second;
    ch.pipe.async_read_some(boost::asio::buffer(ch.buffer), [this, pid](const boost::system::error_code& ec,
                                                                          std::size_t n) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
            // EOF: the worker is gone (or closed its end); reap it now if it already exited.
            channels_.erase(pid);
            if (auto status = ops_.try_reap(pid)) reap(pid, *status);
            return;
        }
        on_heartbeat_bytes(pid, n);
        watch_heartbeats(pid);
    });
}

void Manager::on_heartbeat_bytes(int pid, std::size_t n)
{
    auto* w = state_.find(pid);
    auto it = channels_.find(pid);
    if (!w || it == channels_.end()) return;
    Channel& ch = *it->second;
    std::optional<std::uint64_t> requests;
    bool any = false;
    ch.decoder.feed(std::string_view(ch.buffer.data(), n),
                    [&](const HeartbeatRecord& record, std::string_view error, std::string_view line) {
                        any = true;
                        if (!error.empty()) {
                            // Reported once per worker: a chatty broken worker must not flood the log.
                            if (!ch.warned)
                                spdlog::warn("worker {} sent a malformed heartbeat record \"{}\": {}", pid, line, error);
                            ch.warned = true;
                            return;
                        }
                        if (record.requests) requests = record.requests;
                    });
    if (!any) return;
    const auto now = Clock::now();
    const bool was_ready = w->ready();
    handle(HeartbeatSeen{pid, requests}, now);
    if (!was_ready) {
        spdlog::info("worker {} ready in slot {} after {}", pid, w->slot, since(w->spawned_at, now));
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
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
        if (state_.find(info.si_pid)) {
            if (auto status = ops_.try_reap(info.si_pid)) reap(info.si_pid, *status);
        } else if (reaps_orphans_) {
            int status = 0;
            ::waitpid(info.si_pid, &status, WNOHANG);
            spdlog::debug("reaped orphan {}", info.si_pid);
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
    const std::string outcome = classify(*w, status);
    const WorkerEvent event = describe(*w, outcome);
    const bool failure = is_failure(*w) && state_.phase == Phase::running;
    spdlog::log(failure ? spdlog::level::warn : spdlog::level::info, "worker {} reaped: {}, slot {}, ran {}", pid,
                outcome, w->slot, since(w->spawned_at, now));
    channels_.erase(pid);
    handle(WorkerExited{pid, status}, now);
    if (hooks_.after_reap) hooks_.after_reap(event);
    check_readiness();
}

// Readiness: announced each time the pool reaches its target
void Manager::check_readiness()
{
    const bool ready = state_.phase == Phase::running && ready_count(state_) >= state_.target;
    if (ready && !pool_ready_) {
        spdlog::info("all {} workers ready", state_.target);
        notify::ready(std::to_string(state_.target) + " workers ready");
        if (on_first_ready_) std::exchange(on_first_ready_, nullptr)();
    }
    pool_ready_ = ready;
}

void Manager::stop_listening()
{
    close_listeners(listeners_, true);
}

void Manager::finish()
{
    // Giving up (exit 3) leaves booting workers behind: they go with the manager.
    for (const auto& w : state_.workers) ops_.send(w.pid, SIGKILL);
    for (const auto& w : state_.workers) {
        int status = 0;
        while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    channels_.clear();
    if (hooks_.on_shutdown) hooks_.on_shutdown();
    spdlog::info("manager {} exiting with code {}", ::getpid(), *exit_code_);
}

void Manager::close_in_child()
{
    boost::system::error_code ec;
    signals_.clear(ec);   // back to the default dispositions, and asio forgets the registrations
    for (auto& [pid, ch] : channels_) ::close(ch->pipe.native_handle());
    for (int fd : private_fds_) ::close(fd);
}

WorkerEvent Manager::describe(const WorkerRecord& w, std::string outcome) const
{
    return WorkerEvent{w.pid, w.slot, w.generation, std::move(outcome)};
}

}  // namespace herd
