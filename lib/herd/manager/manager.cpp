// The manager's run loop and its glue: construction, run(), manage(), the supervisor's events
// and actions, readiness, the end of the run. The workers' side is in manager_workers.cpp.
#include <herd/manager/manager.hpp>

#include <herd/detail/overloaded.hpp>
#include <herd/manager/preflight.hpp>
#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/os/memory.hpp>
#include <herd/os/notify.hpp>
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

using detail::overloaded;

namespace {

// How long the loop runs handlers that are ready before it plans again.
constexpr auto ready_handlers_limit = std::chrono::milliseconds(5);

}  // namespace

Manager::Manager(boost::asio::io_context& io, Options options, Strategy strategy, std::vector<ManagedPool> pools,
                 ManagerHooks hooks)
    : io_(io), options_(std::move(options)), hooks_(std::move(hooks)), signal_fd_(io), system_(pools.at(0).ops)
{
    std::vector<Pool> made;
    for (auto& setup : pools) {
        made.push_back(make_pool(setup.name, setup.options, setup.supervision));
        made.back().program = setup.program;
        shells_.push_back(std::make_unique<Shell>(Shell{SwitchingOps(setup.ops), &setup.listeners, nullptr, {}, {}, {}, false, {}, {}, {}}));
    }
    supervisor_ = make_supervisor(strategy, std::move(made));
    const auto seed = std::uint64_t(::getpid()) * 0x100000001b3ull ^ std::uint64_t(Clock::now().time_since_epoch().count());
    for (std::size_t i = 0; i < shells_.size(); ++i) {
        pool(i).state.seed ^= seed + i;
        shells_[i]->runner = std::make_unique<Runner>(io_, shells_[i]->ops, pool(i).options);
    }
    int subreaper = 0;
    ::prctl(PR_GET_CHILD_SUBREAPER, &subreaper);
    reaps_orphans_ = ::getpid() == 1 || subreaper;
}

Manager::Manager(boost::asio::io_context& io, Options options, std::vector<Listener>& listeners, ProcessOps& ops,
                 ManagerHooks hooks)
    : Manager(io, options, Strategy::one, std::vector<ManagedPool>{ManagedPool{"main", options, {}, {}, ops, listeners}},
              std::move(hooks))
{
}

Manager::~Manager() = default;

int Manager::run()
{
    if (started_at_ == TimePoint{}) started_at_ = Clock::now();
    wake_at_ = Clock::now();
    watch_signals();   // an image started by USR2 inherits every signal blocked; this sets the mask right
    watch_watchdog();
    watch_memory();
    if (!adopted_ && supervisor_.pools.size() == 1)
        spdlog::info("manager {} started: {} workers, generation {}", ::getpid(), state().target, state().generation);
    else if (!adopted_)
        spdlog::info("manager {} started: {} pools, {} workers in all, started in order", ::getpid(),
                     supervisor_.pools.size(), target_count());
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
    for (std::size_t i = 0; i < supervisor_.pools.size(); ++i)
        if (const auto timeout = pool(i).options.heartbeat_timeout; timeout.count() > 0 && now - wake_at_ > timeout)
            handle(i, ManagerResumed{}, now);

    // Decide and act, when something changed or a deadline came
    if (replan_ || now >= wake_at_) {
        if (now >= wake_at_) sample_beats(now);   // a deadline came: what the heartbeat pages say first
        replan_ = false;
        execute(plan(supervisor_, now), now);
        if (exit_code_) return;
        wake_at_ = next_deadline(supervisor_, Clock::now());
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
    if (preflight_) return;
    for (std::size_t i = 0; i < shells_.size(); ++i)
        if (is_steady(pool(i).state)) shell_of(i).ops.prepare();
}

void Manager::handle(std::size_t pool, const Event& event, TimePoint now)
{
    apply(supervisor_, PoolEvent{pool, event}, now);
    replan_ = true;
}

void Manager::handle(const SupervisorEvent& event, TimePoint now)
{
    apply(supervisor_, event, now);
    replan_ = true;
}

// A plan's actions in order, but no spawn once a deadline that was still ahead has come: a fork
// takes a millisecond or more, and a worker that fell silent meanwhile is retired at its deadline,
// not after a whole batch of forks. The spawns left out are planned again at once (the core plans
// from what happened, and they did not).
void Manager::execute(const SupervisorActions& actions, TimePoint now)
{
    std::optional<TimePoint> due;   // the next deadline, as the actions before the first spawn left it
    for (const SupervisorAction& action : actions) {
        const auto* pool_action = std::get_if<PoolAction>(&action);
        if (pool_action && std::holds_alternative<Spawn>(pool_action->action)) {
            if (!due) due = next_deadline(supervisor_, now);
            if (*due > now && Clock::now() >= *due) {
                replan_ = true;
                continue;
            }
        }
        execute(action, now);
        if (exit_code_) return;
    }
}

void Manager::execute(const SupervisorAction& action, TimePoint now)
{
    std::visit(overloaded{
                   [&](const PoolAction& a) { execute(a.pool, a.action, now); },
                   [&](const Exit& a) { exit_code_ = a.code; },
                   [&](const auto&) { report_stage(action, now); },
               },
               action);
}

// Readiness: announced each time every running pool reaches its target
void Manager::check_readiness()
{
    const bool ready = is_ready(supervisor_);
    // During a reload or upgrade the old generation keeps the pools ready; the rollout's own
    // "complete" line (and READY=1) says when the new generation took over.
    if (ready && !all_ready_ && !is_rolling(supervisor_)) {
        if (supervisor_.pools.size() == 1) {
            spdlog::info("all {} workers ready", state().target);
            notify::ready(std::to_string(state().target) + " workers ready");
        } else {
            // A stopped pool is not among them, nor its workers (its target is kept for its start)
            std::size_t serving = 0, workers = 0;
            for (const Pool& p : supervisor_.pools)
                if (p.stage != PoolStage::stopped) ++serving, workers += p.state.target;
            const std::size_t stopped = supervisor_.pools.size() - serving;
            const std::string also = stopped ? fmt::format(" ({} stopped)", stopped) : "";
            spdlog::info("all {} pools ready: {} workers{}", serving, workers, also);
            notify::ready(fmt::format("{} pools ready, {} workers{}", serving, workers, also));
        }
        if (on_first_ready_) std::exchange(on_first_ready_, nullptr)();
    }
    all_ready_ = ready;
    answer_pools();
}

void Manager::stop_listening()
{
    for (auto& shell : shells_) close_listeners(*shell->listeners, true);
}

void Manager::finish()
{
    for (auto& shell : shells_) shell->ops.discard();
    // A failed pool may leave booting workers behind: they go with the manager.
    for (std::size_t i = 0; i < shells_.size(); ++i)
        for (const auto& w : pool(i).state.workers) shell_of(i).ops.send(w.pid, SIGKILL);
    for (const Pool& p : supervisor_.pools)
        for (const auto& w : p.state.workers) {
            int status = 0;
            while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
    for (auto& shell : shells_) shell->runner->clear();
    if (control_) {
        answer_waiting(Command::stop, control::stop_answer(*exit_code_));
        for (auto command : {Command::scale, Command::reload, Command::upgrade})
            fail_waiting(command, "the manager exited with code " + std::to_string(*exit_code_));
        control_->close_and_unlink();
    }
    if (hooks_.on_shutdown) hooks_.on_shutdown();
    spdlog::info("manager {} exiting with code {}", ::getpid(), *exit_code_);
}

}  // namespace herd
