// The manager's side of the control socket (DESIGN.md §6): each request becomes the same command
// a signal gives (scale, reload, upgrade, stop), and the client waits until the operation has
// finished or failed. Waiting clients survive an upgrade: their connections are handed over with
// the rest of the pool, and the new image answers them.
#include <herd/manager/manager.hpp>

#include <herd/manager/control_status.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace herd {

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
        control_->answer(client, control::status_answer(state_, options_, facts, history_, Clock::now()));
        return;
    }
    const std::string said = "control request from pid " + std::to_string(peer.pid);
    switch (request.op) {
    case Op::scale: scale(Scale{request.workers, request.delta}, said, client); break;
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
