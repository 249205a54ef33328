#include <herd/manager.hpp>

#include <herd/listeners.hpp>
#include <herd/log.hpp>
#include <herd/notify.hpp>
#include <herd/proctitle.hpp>
#include <herd/signals.hpp>

#include <boost/asio/read.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
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
    : io_(io), options_(std::move(options)), listeners_(listeners), ops_(ops), hooks_(std::move(hooks)), signal_fd_(io)
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

    // Wait for heartbeats, signals and exits
    if (io_.stopped()) io_.restart();
    io_.run_one_until(wake_at_);
    io_.poll();
}

// A standby process is forked while the pool is steady, so that a replacement needs no fork.
void Manager::prepare_ahead()
{
    const bool steady = state_.phase == Phase::running && !state_.rollout && !preflight_ &&
                        std::all_of(state_.workers.begin(), state_.workers.end(), [](const auto& w) { return w.ready(); });
    if (steady) ops_.prepare();
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
                   [&](const RolloutDone& a) { rollout_done(a); },
                   [&](const RolloutFailed& a) { rollout_failed(a); },
               },
               action);
}

// Signals: blocked and read from a signalfd, so no code of ours runs in a signal handler and a
// forked worker inherits no handler, no signal pipe and no registration of the manager's.
void Manager::watch_signals()
{
    if (!signal_fd_.is_open()) {
        sigset_t set;
        ::sigemptyset(&set);
        for (int s : manager_signals()) ::sigaddset(&set, s);
        ::pthread_sigmask(SIG_SETMASK, &set, nullptr);   // and every other signal unblocked
        const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create a signalfd");
        signal_fd_.assign(fd);
        std::signal(SIGPIPE, SIG_IGN);
    }
    signal_fd_.async_read_some(boost::asio::buffer(signal_buffer_), [this](const boost::system::error_code& ec,
                                                                            std::size_t n) {
        if (ec) return;
        for (std::size_t off = 0; off + sizeof(signalfd_siginfo) <= n; off += sizeof(signalfd_siginfo)) {
            signalfd_siginfo info;
            std::memcpy(&info, signal_buffer_.data() + off, sizeof info);
            on_signal(int(info.ssi_signo));
        }
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
        ops_.discard();
        if (preflight_) {
            spdlog::warn("upgrade abandoned: the manager is stopping");
            preflight_.reset();   // ends the check; its handlers see operation_aborted
        }
        // Nobody is left waiting in a backlog that will be reset: the manager's copies close now,
        // each worker closes its own after accepting what was already queued.
        stop_listening();
        handle(StopRequested{graceful}, now);
        break;
    }
    case Command::reopen_logs:
        spdlog::info("received {}: reopening log files", name);
        log::reopen();
        ops_.discard();   // a standby would log to the old file
        for (const auto& w : state_.workers) ops_.send(w.pid, SIGUSR1);
        break;
    case Command::reload:
    case Command::upgrade:
        if (state_.phase != Phase::running) {
            spdlog::warn("received {}: the manager is stopping, ignored", name);
        } else if (state_.rollout || preflight_) {
            spdlog::warn("received {}: {} is in progress, ignored", name,
                         preflight_ || (state_.rollout && state_.rollout->kind == Reason::upgrade) ? "an upgrade"
                                                                                                    : "a reload");
        } else if (*command == Command::reload) {
            notify_reloading();
            start_reload();
        } else {
            notify_reloading();
            spdlog::info("received {}: upgrading to {}", name, binary_);
            start_upgrade();
        }
        break;
    }
}

// Spawning: a pipe per worker, so a record can only come from the worker that owns the pipe
void Manager::spawn(int slot, unsigned generation, TimePoint now)
{
    Started started;
    try {
        started = ops_.spawn(slot, generation);
    } catch (const std::exception& e) {
        spdlog::error("cannot spawn a worker in slot {}: {}", slot, e.what());
        handle(SpawnFailed{slot}, now);
        return;
    }
    const int pid = started.pid;
    channels_.emplace(pid, std::make_unique<Channel>(io_, started.heartbeat_fd));
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
    // A routine heartbeat only moves a deadline later: the loop need not decide anything anew.
    const bool routine = was_ready && !(w->request_limit && requests && *requests >= w->request_limit);
    if (routine) apply(state_, HeartbeatSeen{pid, requests}, options_, now);
    else handle(HeartbeatSeen{pid, requests}, now);
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
        } else if (ops_.owns(info.si_pid)) {
            ops_.discard();   // the standby died before it was needed: reap it, fork another later
        } else if (reaps_orphans_ && !is_preflight(info.si_pid)) {
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
    // During a reload or upgrade the old generation keeps the pool ready; the rollout's own
    // "complete" line (and READY=1) says when the new generation took over.
    if (ready && !pool_ready_ && !state_.rollout) {
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
    ops_.discard();
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
    // A standby shows as one until it is given a slot; a worker's own title replaces this.
    proctitle::set(options_.name + ": standby");
    // Raw close only: the child must not touch the manager's io_context (its epoll is shared).
    ::close(signal_fd_.native_handle());
    for (auto& [pid, ch] : channels_) ::close(ch->pipe.native_handle());
    for (int fd : private_fds_) ::close(fd);
    // A worker holding a listener of an older generation would keep that socket open after its
    // own generation left, and clients would wait in its backlog for nobody.
    for (const auto& l : previous_listeners_) ::close(l.fd);
    if (previous_binary_fd_ >= 0) ::close(previous_binary_fd_);
    if (pid_file_fd_ >= 0) ::close(pid_file_fd_);
}

// Reload (HUP) and upgrade (USR2): a new generation rolls in, new before old
void Manager::set_binary(std::string binary, std::vector<std::string> argv)
{
    binary_ = std::move(binary);
    argv_ = std::move(argv);
}

void Manager::set_pid_file(int fd, std::string path)
{
    pid_file_fd_ = fd;
    pid_file_path_ = std::move(path);
}

void Manager::adopt(const Handover& h)
{
    adopted_ = true;
    state_ = h.pool;
    started_at_ = h.started;
    previous_binary_fd_ = h.previous_binary_fd;
    if (previous_binary_fd_ >= 0) ::fcntl(previous_binary_fd_, F_SETFD, FD_CLOEXEC);
    for (const auto& [pid, fd] : h.channels) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        channels_.emplace(pid, std::make_unique<Channel>(io_, fd));
        watch_heartbeats(pid);
    }
    // The target and the timeouts come from this image's options; the pool from the hand-over.
    state_.target = options_.workers;
    const auto now = Clock::now();
    // Heartbeats sent while the images changed wait unread in the pipes: silence of our making.
    handle(ManagerResumed{}, now);
    if (h.rollback_from) {
        spdlog::error("upgrade to generation {} failed: {}; manager {} runs the previous binary again, "
                      "generation {} keeps serving", h.rollback_from, h.rollback_why, ::getpid(), state_.generation);
        notify::send("READY=1\nSTATUS=upgrade to generation " + std::to_string(h.rollback_from) +
                     " failed: " + h.rollback_why);
        // ps shows it too, until the next upgrade or reload succeeds.
        proctitle::set(options_.name + ": manager (upgrade to generation " + std::to_string(h.rollback_from) +
                       " failed)");
        return;
    }
    handle(RolloutStarted{Reason::upgrade}, now);
    spdlog::info("upgrade: manager {} now runs {}; generation {} replaces {} workers of generation {}", ::getpid(),
                 binary_, state_.generation, state_.workers.size(), state_.rollout->from_generation);
}

void Manager::start_reload()
{
    ops_.discard();   // it was forked with the old options and sockets
    Options fresh;
    try {
        if (!reread_) throw UsageError("no configuration to re-read");
        fresh = reread_();
    } catch (const std::exception& e) {
        spdlog::error("received HUP: the configuration is invalid, keeping the running one: {}", e.what());
        notify::send("READY=1\nSTATUS=reload refused: the configuration is invalid");
        return;
    }
    // New addresses are bound before any worker needs them; the old ones close after the old generation.
    if (fresh.listen != options_.listen) {
        try {
            auto bound = bind_listeners(fresh.listen);
            for (const auto& l : bound) spdlog::info("listening on {}", local_address(l.fd));
            previous_listeners_ = std::exchange(listeners_, std::move(bound));
        } catch (const std::exception& e) {
            spdlog::error("received HUP: {}; keeping the running configuration", e.what());
            notify::send("READY=1\nSTATUS=reload refused: " + std::string(e.what()));
            return;
        }
    }
    if (fresh.log_level != options_.log_level || fresh.log_file != options_.log_file)
        log::setup(fresh.log_level, fresh.log_file, "manager");
    previous_options_ = std::exchange(options_, fresh);
    handle(Scale{options_.workers, 0}, Clock::now());
    handle(RolloutStarted{Reason::reload}, Clock::now());
    spdlog::info("received HUP: reloading; generation {} replaces {} workers of generation {}", state_.generation,
                 state_.workers.size(), state_.rollout->from_generation);
}

// How the pre-flight check starts: without the manager's blocked signals (they are read from a
// signalfd; a program must not inherit that mask), and at the lowest priority, so that checking
// the new binary takes CPU from nobody serving requests.
struct PreflightSetup {
    boost::process::v2::error_code on_exec_setup(boost::process::v2::posix::default_launcher&,
                                                 const boost::process::v2::filesystem::path&, const char* const*)
    {
        sigset_t none;
        ::sigemptyset(&none);
        ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
        ::setpriority(PRIO_PROCESS, 0, 19);
        return {};
    }
};

// systemd (Type=notify-reload) waits for READY=1 after this, whatever comes of it.
void Manager::notify_reloading()
{
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    notify::send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now.count()));
}

// Pre-flight: the new binary must accept our arguments and our hand-over version
struct Manager::Preflight {
    explicit Preflight(boost::asio::io_context& io) : err(io), timer(io) {}
    boost::asio::readable_pipe err;
    boost::asio::steady_timer timer;
    std::unique_ptr<boost::process::v2::process> process;
    std::array<char, 1024> buffer{};
    std::string output;
    std::optional<int> exit_code;
    bool output_done = false;
    bool timed_out = false;
};

// The pre-flight check is waited for by Boost.Process (a pidfd); reaping it here would steal its status.
bool Manager::is_preflight(int pid) const
{
    return preflight_ && preflight_->process && preflight_->process->id() == pid;
}

void Manager::start_upgrade()
{
    if (::access(binary_.c_str(), X_OK) != 0) {
        spdlog::error("upgrade abandoned: cannot execute {}: {}; generation {} keeps serving", binary_,
                      std::strerror(errno), state_.generation);
        notify::send("READY=1\nSTATUS=upgrade abandoned: cannot execute " + binary_);
        return;
    }
    std::vector<std::string> args(argv_.begin() + (argv_.empty() ? 0 : 1), argv_.end());
    args.insert(args.end(), {"--check", "--adopt-check", std::to_string(handover_version)});
    auto p = std::make_unique<Preflight>(io_);
    try {
        namespace bp2 = boost::process::v2;
        p->process = std::make_unique<bp2::process>(io_, binary_, args, bp2::process_stdio{nullptr, nullptr, p->err},
                                                    PreflightSetup{});
    } catch (const std::exception& e) {
        spdlog::error("upgrade abandoned: cannot run {} --check: {}; generation {} keeps serving", binary_, e.what(),
                      state_.generation);
        notify::send("READY=1");
        return;
    }
    preflight_ = std::move(p);
    auto* pf = preflight_.get();
    auto read_more = [this, pf](auto& self) -> void {
        pf->err.async_read_some(boost::asio::buffer(pf->buffer), [this, pf, self](const boost::system::error_code& ec,
                                                                                    std::size_t n) {
            if (ec == boost::asio::error::operation_aborted) return;
            if (pf->output.size() < 4096) pf->output.append(pf->buffer.data(), n);
            if (ec) {
                pf->output_done = true;
                finish_preflight();
                return;
            }
            self(self);
        });
    };
    read_more(read_more);
    pf->process->async_wait([this, pf](const boost::system::error_code& ec, int code) {
        if (ec == boost::asio::error::operation_aborted) return;
        pf->exit_code = ec ? 255 : code;
        finish_preflight();
    });
    // A --check that hangs must not hold the upgrade (and the next USR2) forever.
    pf->timer.expires_after(std::chrono::seconds(10));
    pf->timer.async_wait([pf](const boost::system::error_code& ec) {
        if (ec) return;
        pf->timed_out = true;
        boost::system::error_code ignored;
        pf->process->terminate(ignored);
    });
}

void Manager::finish_preflight()
{
    auto& pf = *preflight_;
    if (!pf.exit_code || !pf.output_done) return;
    auto done = std::move(preflight_);
    done->timer.cancel();
    std::string first_line = done->output.substr(0, done->output.find('\n'));
    if (done->timed_out || *done->exit_code != 0) {
        const std::string why = done->timed_out ? "did not finish within 10 s"
                                                : "failed (exit code " + std::to_string(*done->exit_code) + ")";
        spdlog::error("upgrade abandoned: {} --check {}{}{}; generation {} keeps serving", binary_, why,
                      first_line.empty() ? "" : ": ", first_line, state_.generation);
        notify::send("READY=1\nSTATUS=upgrade abandoned: --check " + why);
        return;
    }
    // A shutdown that began during the check wins: the next image would not know of it.
    if (state_.phase != Phase::running) {
        spdlog::warn("upgrade abandoned: the manager is stopping");
        return;
    }
    // Every descriptor of the pool survives exec; the new image adopts them.
    try {
        exec_image(-1, 0, {});
    } catch (const std::exception& e) {
        spdlog::error("upgrade abandoned: {}; generation {} keeps serving", e.what(), state_.generation);
        notify::send("READY=1");
    }
}

void Manager::exec_image(int binary_fd, unsigned rollback_from, const std::string& why)
{
    ops_.discard();   // the next image would not know it
    Handover h;
    h.pool = state_;
    h.pool.rollout.reset();
    for (const auto& [pid, ch] : channels_) h.channels.emplace_back(pid, ch->pipe.native_handle());
    h.listeners = listeners_;
    h.pid_file_fd = pid_file_fd_;
    h.pid_file_path = pid_file_path_;
    h.binary = binary_;
    h.started = started_at_;
    h.rollback_from = rollback_from;
    h.rollback_why = why;
    // Going forward the running binary is what we roll back to; going back, nothing is.
    int previous = -1;
    if (!rollback_from) {
        previous = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        h.previous_binary_fd = previous;
    }

    const std::string text = encode(h);
    const int record = ::memfd_create("herd-handover", 0);
    if (record < 0) throw std::system_error(errno, std::generic_category(), "cannot create the hand-over record");
    bool written = true;
    for (std::size_t off = 0; off < text.size();) {
        const ssize_t n = ::write(record, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            written = false;
            break;
        }
        off += std::size_t(n);
    }
    ::lseek(record, 0, SEEK_SET);

    std::vector<int> inherited;
    for (const auto& l : listeners_) inherited.push_back(l.fd);
    for (const auto& [pid, fd] : h.channels) inherited.push_back(fd);
    if (pid_file_fd_ >= 0) inherited.push_back(pid_file_fd_);
    if (previous >= 0) inherited.push_back(previous);
    for (int fd : inherited) ::fcntl(fd, F_SETFD, 0);
    ::setenv(handover_env, std::to_string(record).c_str(), 1);

    std::vector<char*> argv;
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Signals wait, blocked, until the new image has its handlers: a TERM in between would
    // otherwise take its default action and end the manager.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    if (written) {
        if (binary_fd >= 0) ::fexecve(binary_fd, argv.data(), environ);
        else ::execv(binary_.c_str(), argv.data());
    }
    const int err = written ? errno : EIO;

    // Still here: exec failed, and this image carries on as if nothing happened.
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::unsetenv(handover_env);
    for (int fd : inherited) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::close(record);
    if (previous >= 0) ::close(previous);
    throw std::system_error(err, std::generic_category(), "cannot execute " + binary_);
}

void Manager::rollout_done(const RolloutDone& done)
{
    const bool upgrade = done.kind == Reason::upgrade;
    spdlog::info("{} to generation {} complete in {}: {} workers ready", upgrade ? "upgrade" : "reload",
                 done.generation, format_duration(done.took), ready_count(state_));
    handle(RolloutEnded{false}, Clock::now());
    close_listeners(previous_listeners_, false);
    previous_listeners_.clear();
    previous_options_.reset();
    if (previous_binary_fd_ >= 0) ::close(std::exchange(previous_binary_fd_, -1));
    proctitle::set(options_.name + ": manager");
    notify::ready("generation " + std::to_string(done.generation) + ": " + std::to_string(state_.target) +
                  " workers ready");
}

void Manager::rollout_failed(const RolloutFailed& failed)
{
    if (failed.kind == Reason::upgrade && previous_binary_fd_ >= 0) {
        spdlog::error("upgrade to generation {} failed: {}; going back to the previous binary", failed.generation,
                      failed.why);
        handle(RolloutEnded{true}, Clock::now());
        try {
            exec_image(previous_binary_fd_, failed.generation, failed.why);
        } catch (const std::exception& e) {
            spdlog::critical("cannot go back to the previous binary: {}; generation {} keeps serving", e.what(),
                             state_.generation);
        }
        return;
    }
    spdlog::error("{} to generation {} failed: {}; generation {} keeps serving",
                  failed.kind == Reason::upgrade ? "upgrade" : "reload", failed.generation, failed.why,
                  state_.rollout ? state_.rollout->from_generation : state_.generation);
    handle(RolloutEnded{true}, Clock::now());
    if (previous_options_) {
        options_ = *std::exchange(previous_options_, std::nullopt);
        handle(Scale{options_.workers, 0}, Clock::now());
    }
    if (!previous_listeners_.empty()) {
        close_listeners(listeners_, true);
        listeners_ = std::exchange(previous_listeners_, {});
    }
    notify::send("READY=1\nSTATUS=" + failed.why);
    proctitle::set(options_.name + ": manager (" + (failed.kind == Reason::upgrade ? "upgrade" : "reload") +
                   " to generation " + std::to_string(failed.generation) + " failed)");
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

WorkerEvent Manager::describe(const WorkerRecord& w, std::string outcome) const
{
    return WorkerEvent{w.pid, w.slot, w.generation, std::move(outcome)};
}

}  // namespace herd
