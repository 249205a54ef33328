#include <herd/core/reconfigure.hpp>

#include <algorithm>

namespace herd {

Reconfigured reconfigure(Supervisor& sup, const std::vector<PoolConfig>& pools, TimePoint now)
{
    Reconfigured out;
    for (std::size_t i = 0; i < sup.pools.size(); ++i) {
        const bool kept = std::any_of(pools.begin(), pools.end(),
                                      [&](const PoolConfig& c) { return c.name == sup.pools[i].name; });
        if (kept || sup.pools[i].removed) continue;
        sup.pools[i].removed = true;
        apply(sup, StopPool{i, true}, now);
        out.removed.push_back(i);
    }
    for (const PoolConfig& c : pools) {
        const auto found = sup.find(c.name);
        if (!found) {
            Pool p = make_pool(c.name, c.options, c.supervision);
            p.program = c.program;
            sup.pools.push_back(std::move(p));
            out.added.push_back(sup.pools.size() - 1);
            apply(sup, PoolReported{sup.pools.size() - 1, PoolStage::waiting}, now);   // settles: it starts in turn
            continue;
        }
        const std::size_t i = *found;
        Pool& p = sup.pools[i];
        const bool again = p.removed;
        if (!again && p.options == c.options && p.supervision == c.supervision && p.program == c.program) {
            out.unchanged.push_back(i);
            continue;
        }
        p.removed = false;
        const bool new_options = !(p.options == c.options) || p.program != c.program;
        p.options = c.options;
        p.program = c.program;
        p.wanted = c.options.workers;
        p.supervision = c.supervision;
        apply(sup, ChangePlan{i, c.supervision.plan}, now);   // the plan starts over, the restart limit's rule anew
        if (again || p.stage == PoolStage::stopped || p.stage == PoolStage::stopping) {
            apply(sup, StartPool{i}, now);
            (again ? out.added : out.changed).push_back(i);
            continue;
        }
        apply(sup, ScalePool{i, Scale{c.options.workers, 0}}, now);
        // Workers started with other options or another program are replaced; a new plan or restart type needs no new worker.
        if (new_options && !p.state.rollout && !p.state.workers.empty())
            apply(p.state, RolloutStarted{Reason::reload}, p.options, now);
        out.changed.push_back(i);
    }
    return out;
}

bool is_gone(const Pool& pool)
{
    return pool.removed && pool.state.workers.empty() &&
           (pool.stage == PoolStage::stopped || pool.stage == PoolStage::failed);
}

bool reload_complete(const Supervisor& sup, const std::vector<std::string>& added)
{
    const bool rolling = std::any_of(sup.pools.begin(), sup.pools.end(), [](const Pool& p) {
        return p.state.rollout && p.state.rollout->kind == Reason::reload;
    });
    return !rolling && std::none_of(added.begin(), added.end(), [&](const std::string& name) {
        const auto i = sup.find(name);
        return i && !sup.pools[*i].removed &&
               (sup.pools[*i].stage == PoolStage::waiting || sup.pools[*i].stage == PoolStage::starting);
    });
}

std::optional<std::size_t> started_after(const Supervisor& sup, std::size_t pool)
{
    for (std::size_t j = std::min(pool, sup.pools.size()); j-- > 0;)
        if (!sup.pools[j].removed) return j;
    return std::nullopt;
}

}  // namespace herd
