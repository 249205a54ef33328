// The manager's side of the control socket (DESIGN.md §6): each request becomes the same command
// a signal gives (scale, reload, upgrade, stop), and the client waits until the operation has
// finished or failed. Waiting clients survive an upgrade: their connections are handed over with
// the rest of the pool, and the new image answers them.
#include <herd/manager/manager.hpp>

#include <herd/config/supervision_values.hpp>
#include <herd/core/text.hpp>
#include <herd/detail/overloaded.hpp>
#include <herd/manager/control_status.hpp>
#include <herd/os/notify.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace herd {

using detail::overloaded;

namespace {

// "1 worker", "4 workers"
std::string count(std::size_t n, const std::string& what)
{
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

}  // namespace

// Commands: from a signal, or from the control socket with a client waiting for the outcome
// (answered when the operation has finished or failed). `said` is who asked, for the log.
void Manager::scale(std::size_t i, const Scale& request, const std::string& said, std::optional<std::uint64_t> client,
                    bool named)
{
    if (supervisor_.phase != Phase::running) {
        spdlog::warn("{}: the manager is stopping, ignored", said);
        if (client) control_->answer(*client, control::error_answer("the manager is stopping"));
        return;
    }
    handle(ScalePool{i, request}, Clock::now());
    spdlog::info("{}: {}target is now {} workers", said, in_pool(i), pool(i).state.target);
    if (client) waiting_.push_back({*client, Command::scale, i, named});
    check_readiness();
}

void Manager::stop(bool graceful, const std::string& said, std::optional<std::uint64_t> client)
{
    if (client) waiting_.push_back({*client, Command::stop, 0});
    const Options& first = pool(0).options;
    const std::string pools = supervisor_.pools.size() == 1 ? "" : " in " + std::to_string(supervisor_.pools.size()) +
                                                                       " pools, the last pool first";
    if (graceful)
        spdlog::info("{}: graceful shutdown of {} workers{} (graceful timeout {})", said, worker_count(), pools,
                     format_duration(first.graceful_timeout));
    else
        spdlog::info("{}: fast shutdown of {} workers{} (kill timeout {})", said, worker_count(), pools,
                     format_duration(first.kill_timeout));
    shut_down(graceful);
}

// What every shutdown does beside telling the supervisor: a stop, or a failed pool.
void Manager::shut_down(bool graceful)
{
    notify::stopping(graceful ? "stopping gracefully" : "stopping");
    for (auto& shell : shells_) shell->ops.discard();
    abandon_preflight();
    // Nobody is left waiting in a backlog that will be reset: the manager's copies close now,
    // each worker closes its own after accepting what was already queued.
    stop_listening();
    handle(ShutdownRequested{graceful}, Clock::now());
    for (auto command : {Command::scale, Command::reload, Command::upgrade, Command::start,
                    Command::restart})
        fail_waiting(command, "the manager is stopping");
}

// Why a reload or an upgrade cannot start now; nothing when it can.
std::optional<std::string> Manager::rollout_refusal() const
{
    if (supervisor_.phase != Phase::running) return "the manager is stopping";
    if (preflight_ || rollout_ == Reason::upgrade) return "an upgrade is in progress";
    if (rollout_) return "a reload is in progress";
    return std::nullopt;
}

void Manager::start_rollout(Reason kind, const std::string& said, std::optional<std::uint64_t> client)
{
    if (const auto refusal = rollout_refusal()) {
        spdlog::warn("{}: {}, ignored", said, *refusal);
        if (client) control_->answer(*client, control::error_answer(*refusal));
        return;
    }
    if (client) waiting_.push_back({*client, control::command_for(kind), 0});
    rollout_requested_ = Clock::now();
    notify_reloading();
    if (kind == Reason::reload) {
        start_reload(said);
    } else {
        spdlog::info("{}: upgrading to {}", said, binary_);
        start_upgrade();
    }
}

// "pool web: " before a line about one of several pools; nothing with one pool
std::string Manager::in_pool(std::size_t i) const
{
    return supervisor_.pools.size() == 1 ? std::string() : "pool " + pool(i).name + ": ";
}

const Options& Manager::pool_options(std::string_view name) const
{
    const auto i = supervisor_.find(name);
    return i ? pool(*i).options : options_;
}

std::size_t Manager::worker_count() const
{
    std::size_t n = 0;
    for (const Pool& p : supervisor_.pools) n += p.state.workers.size();
    return n;
}

std::size_t Manager::target_count() const
{
    std::size_t n = 0;
    for (const Pool& p : supervisor_.pools) n += p.state.target;
    return n;
}

// A pool's stage changed: one line (with several pools), acknowledged so that it is planned once
void Manager::report_stage(const SupervisorAction& action, TimePoint now)
{
    const bool several = supervisor_.pools.size() > 1;
    std::visit(overloaded{
                   [&](const PoolStarted& a) {
                       if (several)
                           spdlog::info("pool {} starting: {}", pool(a.pool).name, count(pool(a.pool).state.target, "worker"));
                       handle(PoolReported{a.pool, PoolStage::starting}, now);
                   },
                   [&](const PoolReady& a) {
                       if (several)
                           spdlog::info("pool {}: all {} workers ready", pool(a.pool).name, pool(a.pool).state.target);
                       handle(PoolReported{a.pool, PoolStage::running}, now);
                       reload_progress();   // a pool a reload added is ready
                   },
                   [&](const PoolStopped& a) {
                       if (several) spdlog::info("pool {} stopped", pool(a.pool).name);
                       handle(PoolReported{a.pool, PoolStage::stopped}, now);
                       answer_pools();
                   },
                   [&](const PoolFailed& a) {
                       if (several)
                           spdlog::critical("giving up: pool {} failed: {}; every pool stops, the last first, then "
                                            "exit code 3", pool(a.pool).name, a.why);
                       else
                           spdlog::critical("giving up: {}, exit code 3", a.why);
                       handle(PoolReported{a.pool, PoolStage::failed}, now);
                       shut_down(true);
                   },
                   [&](const auto&) {},
               },
               action);
}


void Manager::set_control(int fd, std::string path)
{
    control_ = std::make_unique<control::Server>(io_, fd, std::move(path),
                                                 [this](std::uint64_t client, const control::Peer& peer,
                                                        const Request& request) {
                                                     on_request(client, peer, request);
                                                 });
}

void Manager::on_request(std::uint64_t client, const control::Peer& peer, const Request& request)
{
    std::vector<std::string> names;
    for (const Pool& p : supervisor_.pools) names.push_back(p.name);
    // A status or a stop without a pool is about the whole manager; the rest names a pool, or the only one
    const bool whole = (request.command == Command::status || request.command == Command::stop) && !request.pool;
    const bool rollout = request.command == Command::reload || request.command == Command::upgrade;
    std::size_t i = 0;
    if (!whole && !rollout) {
        const auto picked = control::pick_pool(request, names);
        if (const auto* why = std::get_if<std::string>(&picked)) {
            control_->answer(client, control::error_answer(*why));
            return;
        }
        i = std::get<std::size_t>(picked);
    }
    if (request.command == Command::status) {
        sample_beats(Clock::now());   // heartbeat ages and request counts as the pages say now
        control::ManagerFacts facts{::getpid(), options_.name, binary_, started_at_,
                                    preflight_ ? std::optional(rollout_requested_) : std::nullopt, supervisor_.phase};
        std::vector<control::PoolView> views;
        for (std::size_t j = 0; j < supervisor_.pools.size(); ++j)
            if (whole || j == i) views.push_back(view(j));
        control_->answer(client, control::status_answer(views, facts, history_, Clock::now()));
        return;
    }
    if (request.command == Command::plan) return change_plan(client, i, request.plan);
    const std::string said = "control request from pid " + std::to_string(peer.pid);
    switch (request.command) {
    case Command::scale: scale(i, Scale{request.workers, request.delta}, said, client, request.pool.has_value()); break;
    case Command::reload: start_rollout(Reason::reload, said, client); break;
    case Command::upgrade: start_rollout(Reason::upgrade, said, client); break;
    case Command::stop:
        if (whole) stop(request.graceful, said, client);
        else steer(i, request, said, client);
        break;
    case Command::restart:
    case Command::start: steer(i, request, said, client); break;
    default: break;
    }
}

// A pool as the control socket shows it
control::PoolView Manager::view(std::size_t i) const
{
    const Pool& p = pool(i);
    unsigned held = 0;
    for (const auto& [slot, until] : p.state.held) held += until == TimePoint::max() ? 1 : 0;
    return control::PoolView{p.name, p.state, p.options, shells_.at(i)->history, to_string(p.stage), p.supervision,
                             control::PlanPosition{p.step, p.runs + 1}, held};
}

// herdctl plan POOL ["PLAN"]: shown, or changed at once (its count starts over)
void Manager::change_plan(std::uint64_t client, std::size_t i, const std::optional<std::string>& text)
{
    if (text) {
        std::optional<RestartPlan> plan;
        try {
            // The steps change; the count stays the pool's (plan-count in its configuration)
            plan = RestartPlan{parse_plan(*text), std::nullopt};
            if (pool(i).supervision.plan) plan->count = pool(i).supervision.plan->count;
        } catch (const std::invalid_argument& e) {
            control_->answer(client, control::error_answer("invalid plan '" + printable(*text, 200) + "': " + e.what()));
            return;
        }
        handle(ChangePlan{i, plan}, Clock::now());
        spdlog::info("pool {}: plan is now \"{}\" (count {}), from its first step", pool(i).name,
                     to_string(plan->steps), plan_count_to_string(plan->count));
    }
    control_->answer(client, control::plan_answer(view(i)));
}

// herdctl stop POOL, start POOL, restart POOL: answered once the pool is stopped, running, or rolled
void Manager::steer(std::size_t i, const Request& request, const std::string& said, std::uint64_t client)
{
    if (supervisor_.phase != Phase::running) {
        control_->answer(client, control::error_answer("the manager is stopping"));
        return;
    }
    const Pool& p = pool(i);
    const auto now = Clock::now();
    if (request.command == Command::stop) {
        spdlog::info("{}: stopping pool {} ({} workers, {})", said, p.name, p.state.workers.size(),
                     request.graceful ? "gracefully" : "fast");
        handle(StopPool{i, request.graceful}, now);
    } else if (request.command == Command::start) {
        if (p.stage != PoolStage::stopped && p.stage != PoolStage::stopping) {
            control_->answer(client, control::pool_answer(view(i)));   // nothing to start: it runs
            return;
        }
        spdlog::info("{}: starting pool {} ({} workers)", said, p.name, p.wanted);
        handle(StartPool{i}, now);
    } else {
        spdlog::info("{}: restarting pool {} ({} workers, rolling)", said, p.name, p.state.workers.size());
        handle(RestartPool{i}, now);
    }
    waiting_.push_back({client, request.command, i, true});
    check_readiness();
}

// Clients waiting on one pool: answered once it is where they asked it to be
void Manager::answer_pools()
{
    std::erase_if(waiting_, [&](const Waiting& w) {
        if (w.command != Command::scale && !w.named) return false;   // the manager's own stop, reload, upgrade
        const Pool& p = pool(w.pool);
        if (p.stage == PoolStage::failed && w.command != Command::stop) {
            control_->answer(w.client, control::error_answer("pool " + p.name + " failed: " + p.why));
            return true;
        }
        if (!has_done(p, w.command)) return false;
        control_->answer(w.client, w.command == Command::scale && !w.named ? control::scale_answer(p.state)
                                                                 : control::pool_answer(view(w.pool)));
        return true;
    });
}

void Manager::answer_waiting(Command command, const std::string& line)
{
    if (!control_) return;
    std::erase_if(waiting_, [&](const Waiting& w) {
        if (w.command != command) return false;
        control_->answer(w.client, line);
        return true;
    });
}

void Manager::fail_waiting(Command command, const std::string& why)
{
    answer_waiting(command, control::error_answer(why));
}

void Manager::report_rollout_failure(Reason kind, unsigned generation, const std::string& why)
{
    history_.add(control::RolloutRecord{kind, generation, true, why, Clock::now()});
    fail_waiting(control::command_for(kind), why);
}

}  // namespace herd
