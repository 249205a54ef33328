// plan() and next_deadline() of the supervisor of several pools, and the small rules they and
// apply() share: how an exit bears on a restart, which pools a strategy touches.
#include <herd/core/supervisor.hpp>
#include <herd/core/policy_detail.hpp>

#include <algorithm>

namespace herd {

std::string_view to_string(PoolStage stage)
{
    switch (stage) {
    case PoolStage::waiting: return "waiting";
    case PoolStage::starting: return "starting";
    case PoolStage::running: return "running";
    case PoolStage::stopping: return "stopping";
    case PoolStage::stopped: return "stopped";
    case PoolStage::failed: return "failed";
    }
    return "unknown";
}

std::optional<std::size_t> Supervisor::find(std::string_view name) const
{
    for (std::size_t i = 0; i < pools.size(); ++i)
        if (pools[i].name == name) return i;
    return std::nullopt;
}

std::optional<std::size_t> Supervisor::pool_of(int pid) const
{
    for (std::size_t i = 0; i < pools.size(); ++i)
        if (pools[i].state.find(pid)) return i;
    return std::nullopt;
}

ExitKind exit_kind(const PoolState& state, const WorkerRecord& w, int wait_status)
{
    if (!is_failure(state, w)) return ExitKind::expected;
    // Retired or killed by the manager for no heartbeat, bad records or the boot timeout.
    if (w.reason != Reason::none) return ExitKind::abnormal;
    return classify(w, wait_status) == "finished (exit 0)" ? ExitKind::normal : ExitKind::abnormal;
}

std::string never_ready(const Pool& p, std::size_t failures)
{
    return "no worker ever became ready and " + std::to_string(failures) + " exited within " +
           format_duration(p.options.restart_limit.window);
}

bool needs_restart(RestartType type, ExitKind kind)
{
    if (kind == ExitKind::expected) return false;
    switch (type) {
    case RestartType::permanent: return true;
    case RestartType::transient: return kind == ExitKind::abnormal;
    case RestartType::temporary: return false;
    }
    return true;
}

std::vector<std::size_t> touched_by(Strategy strategy, std::size_t pool, std::size_t count)
{
    std::vector<std::size_t> out;
    for (std::size_t j = 0; j < count; ++j) {
        if (j == pool) continue;
        if (strategy == Strategy::all || (strategy == Strategy::rest && j > pool)) out.push_back(j);
    }
    return out;
}

bool is_ready(const Supervisor& sup)
{
    if (sup.phase != Phase::running) return false;
    return std::all_of(sup.pools.begin(), sup.pools.end(), [](const Pool& p) {
        return p.stage == PoolStage::stopped || (p.stage != PoolStage::failed && at_target(p.state));
    });
}

bool is_rolling(const Supervisor& sup)
{
    return std::any_of(sup.pools.begin(), sup.pools.end(), [](const Pool& p) { return p.state.rollout.has_value(); });
}

bool has_done(const Pool& p, Command command)
{
    switch (command) {
    case Command::scale: return is_settled(p.state);
    case Command::stop: return p.stage == PoolStage::stopped || p.stage == PoolStage::failed;
    case Command::start:
    case Command::restart:
        return p.stage == PoolStage::running && !p.state.rollout && !p.restart_pending && is_settled(p.state);
    default: return false;
    }
}

SupervisorActions plan(const Supervisor& sup, TimePoint now)
{
    SupervisorActions out;
    // Stages not reported yet: one log line each
    for (std::size_t i = 0; i < sup.pools.size(); ++i) {
        const Pool& p = sup.pools[i];
        if (p.stage == p.reported) continue;
        switch (p.stage) {
        case PoolStage::starting: out.push_back(PoolStarted{i}); break;
        case PoolStage::running: out.push_back(PoolReady{i}); break;
        case PoolStage::stopped: out.push_back(PoolStopped{i}); break;
        case PoolStage::failed: out.push_back(PoolFailed{i, p.why}); break;
        case PoolStage::waiting:
        case PoolStage::stopping: break;
        }
    }

    // Each pool's own decisions
    for (std::size_t i = 0; i < sup.pools.size(); ++i) {
        const Pool& p = sup.pools[i];
        if (p.stage == PoolStage::waiting) continue;   // its turn has not come
        for (Action& a : plan(p.state, p.options, now)) {
            // A pool's end is not the manager's; its exit 3 (never ready) fails the pool.
            if (const auto* exit = std::get_if<Exit>(&a)) {
                if (exit->code == 3 && p.stage != PoolStage::failed)
                    out.push_back(PoolFailed{i, never_ready(p, exit->failures)});
                continue;
            }
            if (p.stage == PoolStage::failed && std::holds_alternative<Spawn>(a)) continue;
            out.push_back(PoolAction{i, std::move(a)});
        }
    }

    // The manager's end: every pool asked to stop and empty
    const bool empty = std::all_of(sup.pools.begin(), sup.pools.end(), [](const Pool& p) {
        return p.state.phase != Phase::running && p.state.workers.empty();
    });
    if (sup.phase != Phase::running && empty) out.push_back(Exit{sup.failed ? 3 : 0});
    return out;
}

TimePoint next_deadline(const Supervisor& sup, TimePoint now)
{
    std::optional<TimePoint> next;
    bool passed = false;
    for (const Pool& p : sup.pools) {
        if (p.stage == PoolStage::waiting) continue;
        const detail::Upcoming u = detail::upcoming(p.state, p.options, now);
        passed = passed || u.passed;
        if (u.next && (!next || *u.next < *next)) next = u.next;
    }
    // As with one pool: a passed deadline wakes the manager only for something to do about it.
    if (passed && !plan(sup, now).empty()) return now;
    return std::min(next.value_or(TimePoint::max()), now + std::chrono::hours(1));
}

}  // namespace herd
