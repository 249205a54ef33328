// HUP with several pools (DESIGN.md §7a): the file is read again and folded in by pool name
// (core/reconfigure.hpp). New pools start after the others, removed pools stop gracefully and
// then go, changed pools are replaced rolling (each goes back to its old options if its new
// generation fails), untouched pools keep every worker. Sockets are bound before anything
// changes: a socket that cannot be bound refuses the whole reload.
#include <herd/manager/manager.hpp>

#include <herd/config/pools.hpp>
#include <herd/core/reconfigure.hpp>
#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/os/notify.hpp>
#include <herd/os/proctitle.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace herd {

namespace {

std::size_t spec_index(const CommandLine& line, const std::string& name)
{
    return std::size_t(std::find_if(line.pools.begin(), line.pools.end(),
                                    [&](const PoolSpec& s) { return s.name == name; }) -
                       line.pools.begin());
}

}  // namespace

void Manager::reload_pools(const std::string& said, const CommandLine& line)
{
    // Sockets first: a new pool's, and a pool's whose `listen` changed. Nothing changes if one fails.
    std::vector<std::optional<std::vector<Listener>>> bound(line.pools.size());
    struct Made {
        std::unique_ptr<std::vector<Listener>> sockets;   // where the new pool's ops find them
        std::unique_ptr<ProcessOps> ops;
    };
    std::vector<Made> made(line.pools.size());
    std::vector<std::unique_ptr<ProcessOps>> programs(line.pools.size());   // a pool's new command or worker type
    const auto release = [&] {
        for (auto& b : bound)
            if (b) close_listeners(*b, true);
        for (auto& m : made)
            if (m.sockets) close_listeners(*m.sockets, true);
    };
    try {
        for (std::size_t k = 0; k < line.pools.size(); ++k) {
            const PoolSpec& spec = line.pools[k];
            const auto i = supervisor_.find(spec.name);
            try {
                if (i && program_of(spec) != pool(*i).program) {
                    if (!pool_factory_) throw std::runtime_error("this manager cannot change a pool's program");
                    programs[k] = pool_factory_(spec, *shell_of(*i).listeners);
                }
                if (i && spec.options.listen == pool(*i).options.listen) continue;
                auto sockets = bind_listeners(spec.options.listen);
                if (i) {
                    bound[k] = std::move(sockets);
                    continue;
                }
                if (!pool_factory_) {
                    close_listeners(sockets, true);
                    throw std::runtime_error("this manager cannot start a new pool");
                }
                // A new pool's ops serve its sockets where they stay: the shell takes both.
                made[k].sockets = std::make_unique<std::vector<Listener>>(std::move(sockets));
                made[k].ops = pool_factory_(spec, *made[k].sockets);
            } catch (const std::exception& e) {
                throw std::runtime_error("pool " + spec.name + ": " + e.what());
            }
        }
    } catch (const std::exception& e) {
        release();
        refuse_reload(said + ": " + e.what() + "; keeping the running configuration", e.what());
        return;
    }

    // Manager-wide options apply at once; a pool's own options are the supervisor's from here on.
    const Options& fresh = line.options;
    if (fresh.control != options_.control)
        spdlog::warn("{}: --control changes from '{}' to '{}' at the next start; the socket stays where it is", said,
                     options_.control, fresh.control);
    if (fresh.log_level != options_.log_level || fresh.log_file != options_.log_file)
        log::setup(fresh.log_level, fresh.log_file, "manager");
    options_ = fresh;
    std::vector<Pool> before = supervisor_.pools;
    std::vector<PoolConfig> configs;
    for (const PoolSpec& spec : line.pools)
        configs.push_back(PoolConfig{spec.name, spec.options, spec.supervision, program_of(spec)});
    const auto now = Clock::now();
    supervisor_.strategy = line.strategy;   // the next exit that needs a restart is handled by it
    const Reconfigured r = reconfigure(supervisor_, configs, now);
    replan_ = true;
    watch_memory();   // --max-worker-memory: on if any pool has it now
    spdlog::info("{}: reloading {} pools: {} new, {} changed, {} removed, {} unchanged", said, configs.size(),
                 r.added.size(), r.changed.size(), r.removed.size(), r.unchanged.size());
    for (std::size_t k = 0; k < line.pools.size(); ++k) {
        const std::vector<Listener>* sockets = bound[k] ? &*bound[k] : made[k].sockets.get();
        if (sockets)
            for (const auto& l : *sockets) spdlog::info("pool {}: listening on {}", line.pools[k].name, local_address(l.fd));
    }

    for (const std::size_t i : r.added) {
        const std::size_t k = spec_index(line, pool(i).name);
        if (i >= shells_.size()) {   // reconfigure() appended it: its shell comes next, in the same order
            Made& m = made[k];
            auto shell = std::make_unique<Shell>(
                Shell{SwitchingOps(std::move(m.ops)), m.sockets.get(), nullptr, {}, {}, {}, false, {}, {}, std::move(m.sockets)});
            shell->runner = std::make_unique<Runner>(io_, shell->ops, pool(i).options);
            shells_.push_back(std::move(shell));
        } else if (bound[k]) {       // removed earlier, given again: its new sockets now
            close_listeners(*shell_of(i).listeners, true);
            *shell_of(i).listeners = std::move(*std::exchange(bound[k], std::nullopt));
        }
        reload_starting_.push_back(pool(i).name);
        const auto after = started_after(supervisor_, i);
        spdlog::info("pool {}: new, starts after {}", pool(i).name, after ? pool(*after).name : "no other pool");
    }
    for (std::size_t i = 0; i < shells_.size(); ++i) shell_of(i).runner->use(pool(i).options);   // the pools moved
    for (std::size_t k = 0; k < line.pools.size(); ++k) {   // new workers run the new program, the others theirs
        if (!programs[k]) continue;
        const std::size_t i = *supervisor_.find(line.pools[k].name);
        Shell& shell = shell_of(i);
        spdlog::info("pool {}: its workers run '{}' from now on, instead of '{}'", pool(i).name, pool(i).program,
                     before.at(i).program);
        shell.previous_program = before.at(i).program;
        std::vector<int> running;
        for (const auto& w : pool(i).state.workers) running.push_back(w.pid);
        shell.ops.switch_to(std::move(programs[k]), running);
    }
    for (const std::size_t i : r.changed) {
        Shell& shell = shell_of(i);
        auto& sockets = bound[spec_index(line, pool(i).name)];
        if (pool(i).state.rollout) {
            // Its old options and sockets stay until the new generation is in (or back, if it fails).
            shell.previous_options = before.at(i).options;
            if (sockets) shell.previous_listeners = std::exchange(*shell.listeners, std::move(*sockets));
            spdlog::info("pool {}: changed, replaced rolling; generation {} replaces {} workers", pool(i).name,
                         pool(i).state.generation, pool(i).state.workers.size());
        } else {
            if (sockets) {
                close_listeners(*shell.listeners, true);
                *shell.listeners = std::move(*sockets);
            }
            spdlog::info("pool {}: changed (plan, restart type or size), {} workers kept", pool(i).name,
                         pool(i).state.workers.size());
        }
        sockets.reset();
    }
    for (const std::size_t i : r.unchanged)
        spdlog::info("pool {}: unchanged, {} workers kept", pool(i).name, pool(i).state.workers.size());
    for (const std::size_t i : r.removed)
        spdlog::info("pool {}: removed, stopping ({} workers)", pool(i).name, pool(i).state.workers.size());
    release();   // nothing left unused, but a pool named twice would leave its sockets here
    rollout_ = Reason::reload;
    reloading_pools_ = true;
    if (!reload_starting_.empty()) {   // a new pool that never gets ready must not hold every later HUP off
        reload_timer_ = std::make_unique<boost::asio::steady_timer>(io_, options_.upgrade_timeout);
        reload_timer_->async_wait([this](const boost::system::error_code& e) {
            if (!e) reload_overdue();
        });
    }
    reload_progress();   // complete at once when nothing rolls and nothing starts
}

// The reload of several pools is complete once every pool that rolls has rolled and every pool it
// added is ready: one line, READY=1, the waiting client answered.
void Manager::reload_progress()
{
    if (!reloading_pools_) return;
    if (!reload_complete(supervisor_, reload_starting_)) return;
    reloading_pools_ = false;
    reload_starting_.clear();
    reload_timer_.reset();
    rollout_.reset();
    unsigned generation = 0;
    for (const Pool& p : supervisor_.pools) generation = std::max(generation, p.state.generation);
    const auto now = Clock::now();
    const auto took = std::chrono::duration_cast<Duration>(now - rollout_requested_);
    spdlog::info("reload complete in {}: {} pools, {} workers", format_duration(took), supervisor_.pools.size(),
                 target_count());
    history_.add(control::RolloutRecord{Reason::reload, generation, false, {}, now});
    answer_waiting(Command::reload, control::rollout_answer(Reason::reload, generation, took));
    settle_rollout();
    proctitle::set(options_.name + ": manager");
    notify::ready("reloaded: " + std::to_string(supervisor_.pools.size()) + " pools, " +
                  std::to_string(target_count()) + " workers");
    check_readiness();
}

// A pool the reload added is not ready within --upgrade-timeout: the reload ends as failed (the
// waiting client told), the pool goes on starting as its plan says, and the next HUP may fix it.
void Manager::reload_overdue()
{
    if (!reloading_pools_) return;
    std::string names;
    for (const auto& name : reload_starting_) names += (names.empty() ? "" : ", ") + name;
    const std::string why = "pool " + names + " not ready within " + format_duration(options_.upgrade_timeout) +
                            " (--upgrade-timeout)";
    spdlog::error("reload failed: {}; it goes on starting, every other pool keeps what it has", why);
    reloading_pools_ = false;
    reload_starting_.clear();
    unsigned generation = 0;
    for (const Pool& p : supervisor_.pools) generation = std::max(generation, p.state.generation);
    if (std::none_of(supervisor_.pools.begin(), supervisor_.pools.end(), [](const Pool& p) { return p.state.rollout; }))
        rollout_.reset();   // else the last pool that rolls ends it
    report_rollout_failure(Reason::reload, generation, "reload failed: " + why);
    notify::send("READY=1\nSTATUS=reload failed: " + why);
}

// A pool a reload removed goes once its last worker is: its shell, its sockets and its place.
void Manager::forget_gone_pools()
{
    if (supervisor_.phase != Phase::running) return;
    for (std::size_t i = supervisor_.pools.size(); i-- > 0;) {
        if (supervisor_.pools.size() == 1 || !is_gone(pool(i)) || supervisor_.failed == i) continue;
        const std::string name = pool(i).name;
        Shell& shell = shell_of(i);
        shell.ops.discard();
        close_listeners(*shell.listeners, true);
        close_listeners(shell.previous_listeners, true);
        // Clients waiting on a pool: on this one they are answered, on a later one they follow it.
        std::erase_if(waiting_, [&](Waiting& w) {
            const bool on_pool = w.named || w.command == Command::scale || w.command == Command::start ||
                                 w.command == Command::restart;
            if (!on_pool) return false;
            if (w.pool > i) --w.pool;
            else if (w.pool == i) {
                control_->answer(w.client, control::error_answer("pool " + name + " was removed"));
                return true;
            }
            return false;
        });
        if (supervisor_.failed && *supervisor_.failed > i) --*supervisor_.failed;
        supervisor_.pools.erase(supervisor_.pools.begin() + std::ptrdiff_t(i));
        shells_.erase(shells_.begin() + std::ptrdiff_t(i));
        spdlog::info("pool {}: removed, its last worker is gone", name);
        replan_ = true;
    }
    for (std::size_t i = 0; i < shells_.size(); ++i) shell_of(i).runner->use(pool(i).options);
}

}  // namespace herd
