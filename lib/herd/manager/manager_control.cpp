// The manager's side of the control socket (DESIGN.md §6): each request becomes the same command
// a signal gives (scale, reload, upgrade, stop), and the client waits until the operation has
// finished or failed. Waiting clients survive an upgrade: their connections are handed over with
// the rest of the pool, and the new image answers them.
#include <herd/manager/manager.hpp>

#include <herd/manager/control_status.hpp>
#include <herd/os/notify.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace herd {

namespace {

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace

// Commands: from a signal, or from the control socket with a client waiting for the outcome
// (answered when the operation has finished or failed). `said` is who asked, for the log.
void Manager::scale(std::size_t i, const Scale& request, const std::string& said, std::optional<std::uint64_t> client)
{
    if (supervisor_.phase != Phase::running) {
        spdlog::warn("{}: the manager is stopping, ignored", said);
        if (client) control_->answer(*client, control::error_answer("the manager is stopping"));
        return;
    }
    handle(ScalePool{i, request}, Clock::now());
    spdlog::info("{}: {}target is now {} workers", said, in_pool(i), pool(i).state.target);
    if (client) waiting_.push_back({*client, control::Op::scale, i});
    check_readiness();
}

void Manager::stop(bool graceful, const std::string& said, std::optional<std::uint64_t> client)
{
    if (client) waiting_.push_back({*client, control::Op::stop, 0});
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
    for (auto op : {control::Op::scale, control::Op::reload, control::Op::upgrade})
        fail_waiting(op, "the manager is stopping");
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
    if (client) waiting_.push_back({*client, control::op_for(kind), 0});
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
                           spdlog::info("pool {} starting: {} workers", pool(a.pool).name, pool(a.pool).state.target);
                       handle(PoolReported{a.pool, PoolStage::starting}, now);
                   },
                   [&](const PoolReady& a) {
                       if (several)
                           spdlog::info("pool {}: all {} workers ready", pool(a.pool).name, pool(a.pool).state.target);
                       handle(PoolReported{a.pool, PoolStage::running}, now);
                   },
                   [&](const PoolStopped& a) {
                       if (several) spdlog::info("pool {} stopped", pool(a.pool).name);
                       handle(PoolReported{a.pool, PoolStage::stopped}, now);
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
                                                        const control::Request& request) {
                                                     on_request(client, peer, request);
                                                 });
}

void Manager::on_request(std::uint64_t client, const control::Peer& peer, const control::Request& request)
{
    using control::Op;
    // One pool, "main": the operations on a pool of several are not this manager's
    const auto picked = request.pool ? control::pick_pool(request, {"main"}) : std::size_t{0};
    if (const auto* why = std::get_if<std::string>(&picked)) {
        control_->answer(client, control::error_answer(*why));
        return;
    }
    if (request.op == Op::restart || request.op == Op::start || request.op == Op::plan ||
        (request.op == Op::stop && request.pool)) {
        control_->answer(client, control::error_answer(std::string(control::to_string(request.op)) +
                                                       " of a pool is not supported by this manager"));
        return;
    }
    if (request.op == Op::status) {
        const control::ManagerFacts facts{::getpid(), options_.name, binary_, started_at_,
                                          preflight_ ? std::optional(rollout_requested_) : std::nullopt};
        control_->answer(client, control::status_answer(state(), pool(0).options, facts, history_, Clock::now()));
        return;
    }
    const std::string said = "control request from pid " + std::to_string(peer.pid);
    switch (request.op) {
    case Op::scale: scale(0, Scale{request.workers, request.delta}, said, client); break;
    case Op::reload: start_rollout(Reason::reload, said, client); break;
    case Op::upgrade: start_rollout(Reason::upgrade, said, client); break;
    case Op::stop: stop(request.graceful, said, client); break;
    default: break;   // status above; restart, start and plan refused above
    }
}

void Manager::answer_waiting(control::Op op, const std::string& line)
{
    if (!control_) return;
    std::erase_if(waiting_, [&](const Waiting& w) {
        if (w.op != op) return false;
        control_->answer(w.client, line);
        return true;
    });
}

void Manager::fail_waiting(control::Op op, const std::string& why)
{
    answer_waiting(op, control::error_answer(why));
}

void Manager::report_rollout_failure(Reason kind, unsigned generation, const std::string& why)
{
    history_.add(control::RolloutRecord{kind, generation, true, why, Clock::now()});
    fail_waiting(control::op_for(kind), why);
}

}  // namespace herd
