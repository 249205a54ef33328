// The manager's side of USR2 (upgrade.hpp): the new binary's --check first (a pre-flight that
// runs beside the loop), then the exec in place with a hand-over record; the new image adopts the
// previous one's state, and execs the previous binary again if its generation does not come up.
#include <herd/manager/manager.hpp>

#include <herd/manager/preflight.hpp>

#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/os/notify.hpp>
#include <herd/os/proctitle.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace herd {

namespace {

// Does a reload or an upgrade replace this pool's workers? Not while it waits, stops or is stopped.
bool rolls(const Pool& p)
{
    return !p.removed && (p.stage == PoolStage::starting || p.stage == PoolStage::running);
}

}  // namespace

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
    adopted_version_ = h.version;
    history_ = h.history;
    for (const auto& [fd, op] : h.clients) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (control_) waiting_.push_back({control_->adopt_client(fd), op});
        else ::close(fd);
    }
    // Each pool by name; a record of version 1 or 2 holds one pool, `main`. A pool this image's
    // configuration does not have is adopted to stop, and then goes.
    std::vector<std::size_t> unknown;
    for (const HandoverPool& from : h.pools) {
        auto i = supervisor_.find(from.name);
        if (!i) {
            supervisor_.pools.push_back(make_pool(from.name, pool(0).options));
            shells_.push_back(std::make_unique<Shell>(Shell{SwitchingOps(system_), nullptr, nullptr, {}, {}, {}, false, {}, from.listeners, {}}));
            shells_.back()->listeners = &shells_.back()->own_listeners;
            shells_.back()->runner = std::make_unique<Runner>(io_, shells_.back()->ops, supervisor_.pools.back().options);
            i = supervisor_.pools.size() - 1;
            unknown.push_back(*i);
        }
        adopt_pool(pool(*i), from);
    }
    for (std::size_t i = 0; i < shells_.size(); ++i) shell_of(i).runner->use(pool(i).options);   // the pools moved
    if (h.failed) supervisor_.failed = supervisor_.find(*h.failed);
    // Exits by slot are the first pool's in a record (status keeps them by pool); rollouts the manager's.
    shell_of(0).history.exits = h.history.exits;
    history_.exits.clear();
    started_at_ = h.started;
    rollout_requested_ = h.upgrade_requested == TimePoint{} ? Clock::now() : h.upgrade_requested;
    // Exec mode: the programs' output goes on being logged, by this image now.
    for (const auto& [pid, fd] : h.outputs) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        const auto i = supervisor_.pool_of(pid).value_or(0);
        const WorkerRecord* w = pool(i).state.find(pid);
        shell_of(i).ops.adopt_output(pid, w ? w->slot : -1, fd);
    }
    previous_binary_fd_ = h.previous_binary_fd;
    if (previous_binary_fd_ >= 0) ::fcntl(previous_binary_fd_, F_SETFD, FD_CLOEXEC);
    const std::map<int, int> pages(h.pages.begin(), h.pages.end());
    for (const auto& [pid, fd] : h.channels) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        const auto page = pages.find(pid);
        if (page != pages.end()) ::fcntl(page->second, F_SETFD, FD_CLOEXEC);
        shell_of(supervisor_.pool_of(pid).value_or(0)).runner->adopt_channel(pid, fd, page != pages.end() ? page->second : -1);
    }
    for (const auto& [pid, fd] : h.pages)   // a worker without a channel: its page goes with it
        if (std::none_of(h.channels.begin(), h.channels.end(), [pid = pid](const auto& c) { return c.first == pid; }))
            ::close(fd);
    const auto now = Clock::now();
    for (const std::size_t i : unknown) {
        pool(i).removed = true;
        spdlog::warn("pool {} is not in this configuration: its {} workers stop", pool(i).name,
                     pool(i).state.workers.size());
        handle(StopPool{i, true}, now);
    }
    // The pool and its target (TTIN, TTOU and scale included) come from the hand-over: an upgrade
    // replaces the binary, not the pool size. The timeouts come from this image's options.
    // Heartbeats sent while the images changed wait unread in the pipes: silence of our making.
    for (std::size_t i = 0; i < shells_.size(); ++i) handle(i, ManagerResumed{}, now);
    if (h.rollback_from) {
        spdlog::error("upgrade to generation {} failed: {}; manager {} runs the previous binary again, "
                      "generation {} keeps serving", h.rollback_from, h.rollback_why, ::getpid(), state().generation);
        notify::send("READY=1\nSTATUS=upgrade to generation " + std::to_string(h.rollback_from) +
                     " failed: " + h.rollback_why);
        // ps shows it too, until the next upgrade or reload succeeds.
        proctitle::set(options_.name + ": manager (upgrade to generation " + std::to_string(h.rollback_from) +
                       " failed)");
        return;
    }
    // The upgrade took as long as it has since it was asked for, pre-flight and exec included.
    rollout_ = Reason::upgrade;
    for (std::size_t i = 0; i < shells_.size(); ++i)
        if (rolls(pool(i)))
            handle(i, RolloutStarted{Reason::upgrade, h.upgrade_requested == TimePoint{}
                                                          ? std::nullopt
                                                          : std::optional(h.upgrade_requested)},
                   now);
    if (supervisor_.pools.size() == 1 && state().rollout)
        spdlog::info("upgrade: manager {} now runs {}; generation {} replaces {} workers of generation {}", ::getpid(),
                     binary_, state().generation, state().workers.size(), state().rollout->from_generation);
    else
        spdlog::info("upgrade: manager {} now runs {}; {} workers in {} pools are replaced, pool by pool", ::getpid(),
                     binary_, worker_count(), supervisor_.pools.size());
    if (!is_rolling(supervisor_))
        rollout_.reset();   // nothing to replace: no pool runs
}

// An upgrade that stops before exec: the running image and its generation carry on.
void Manager::abandon_upgrade(const std::string& why)
{
    spdlog::error("upgrade abandoned: {}; generation {} keeps serving", why, state().generation);
    notify::send("READY=1\nSTATUS=upgrade abandoned: " + why);
    report_rollout_failure(Reason::upgrade, state().last_generation + 1, "upgrade abandoned: " + why);
}

// The pre-flight check is waited for by Boost.Process (a pidfd); reaping it here would steal its status.
bool Manager::is_preflight(int pid) const
{
    return preflight_ && preflight_->pid() == pid;
}

void Manager::start_upgrade()
{
    if (::access(binary_.c_str(), X_OK) != 0) {
        abandon_upgrade("cannot execute " + binary_ + ": " + std::strerror(errno));
        return;
    }
    const std::vector<std::string> args = preflight_args(argv_, handover_version);
    auto check = std::make_unique<detail::Preflight>(io_);
    try {
        check->start(binary_, args, [this](const detail::PreflightOutcome& outcome) { finish_preflight(outcome); });
    } catch (const std::exception& e) {
        abandon_upgrade("cannot run " + binary_ + " --check: " + e.what());
        return;
    }
    preflight_ = std::move(check);
}

void Manager::finish_preflight(const detail::PreflightOutcome& outcome)
{
    const auto done = std::move(preflight_);   // the check is over; it goes with this call
    const std::string first_line = outcome.output.substr(0, outcome.output.find('\n'));
    if (outcome.timed_out || outcome.exit_code != 0) {
        const std::string why = outcome.timed_out
                                    ? "did not finish within " + format_duration(detail::Preflight::timeout)
                                    : "failed (exit code " + std::to_string(outcome.exit_code) + ")";
        abandon_upgrade(binary_ + " --check " + why + (first_line.empty() ? "" : ": ") + first_line);
        return;
    }
    // A shutdown that began during the check wins: the next image would not know of it.
    if (supervisor_.phase != Phase::running) {
        spdlog::warn("upgrade abandoned: the manager is stopping");
        return;
    }
    // Every descriptor of the pool survives exec; the new image adopts them.
    try {
        exec_image(-1, 0, {});
    } catch (const std::exception& e) {
        abandon_upgrade(e.what());
    }
}

void Manager::exec_image(int binary_fd, unsigned rollback_from, const std::string& why)
{
    for (auto& shell : shells_) shell->ops.discard();   // the next image would not know it
    Handover h;
    for (std::size_t i = 0; i < shells_.size(); ++i) {
        h.pools.push_back(handover_pool(pool(i), *shell_of(i).listeners));
        h.pools.back().state.rollout.reset();
    }
    if (supervisor_.failed) h.failed = pool(*supervisor_.failed).name;
    for (auto& shell : shells_) {
        for (const auto& c : shell->runner->channels()) h.channels.push_back(c);
        for (const auto& c : shell->runner->pages()) h.pages.push_back(c);
        for (const auto& o : shell->ops.hand_over()) h.outputs.push_back(o);
    }
    h.pid_file_fd = pid_file_fd_;
    h.pid_file_path = pid_file_path_;
    h.binary = binary_;
    h.started = started_at_;
    h.rollback_from = rollback_from;
    h.rollback_why = why;
    // Going back, the record is written in the version the previous binary wrote (it may know no newer).
    h.version = rollback_from ? adopted_version_ : handover_version;
    if (h.version < handover_version && h.pools.size() == 1) {   // one pool, the way older binaries read it
        h.pool = h.pools.front().state;
        h.listeners = h.pools.front().listeners;
        h.pools.clear();
    }
    if (h.version >= 2) {
        h.history = history_;
        h.history.exits = shell_of(0).history.exits;
        h.upgrade_requested = rollout_requested_;
        if (control_) {
            h.control_fd = control_->listen_fd();
            h.control_path = control_->path();
            // A client waiting on one pool asks again of the next image, which cannot tell which pool it was.
            for (auto command : {Command::start, Command::restart}) fail_waiting(command, "the manager is upgrading; ask again");
            std::erase_if(waiting_, [&](const Waiting& w) {
                if (!w.named) return false;
                control_->answer(w.client, control::error_answer("the manager is upgrading; ask again"));
                return true;
            });
            for (const auto& w : waiting_) h.clients.emplace_back(control_->client_fd(w.client), w.command);
        }
    } else {
        for (auto command : {Command::scale, Command::reload, Command::upgrade, Command::stop})
            fail_waiting(command, "the manager goes back to a binary without a control socket");
    }
    // Going forward the running binary is what we roll back to; going back, nothing is.
    int previous = -1;
    if (!rollback_from) {
        previous = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        h.previous_binary_fd = previous;
    }

    ImageExec image{encode(h), handover_env, {}, binary_fd, binary_, argv_};
    for (const auto& l : h.listeners) image.inherited.push_back(l.fd);
    for (const auto& p : h.pools)
        for (const auto& l : p.listeners) image.inherited.push_back(l.fd);
    for (const auto& [pid, fd] : h.channels) image.inherited.push_back(fd);
    for (const auto& [pid, fd] : h.outputs) image.inherited.push_back(fd);
    for (const auto& [pid, fd] : h.pages) image.inherited.push_back(fd);
    if (pid_file_fd_ >= 0) image.inherited.push_back(pid_file_fd_);
    if (previous >= 0) image.inherited.push_back(previous);
    if (h.control_fd >= 0) image.inherited.push_back(h.control_fd);
    for (const auto& [fd, op] : h.clients) image.inherited.push_back(fd);
    spdlog::default_logger()->flush();
    try {
        system_.exec_image(image);
    } catch (...) {
        // Still here: exec failed, and this image carries on as if nothing happened.
        if (previous >= 0) ::close(previous);
        throw;
    }
}

void Manager::abandon_preflight()
{
    if (!preflight_) return;
    spdlog::warn("upgrade abandoned: the manager is stopping");
    preflight_->abandon();   // kills it with what it started
    preflight_.reset();      // its handlers see operation_aborted
}

}  // namespace herd
