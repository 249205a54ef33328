// The manager's reload (HUP) and upgrade (USR2): a new generation replaces every worker, each
// new worker ready before an old one retires. USR2 first runs the new binary's --check, then execs
// it in place with a hand-over record (upgrade.hpp, manager_upgrade.cpp); the new image rolls its
// generation in, and goes back to the previous binary if that generation does not come up.
#include <herd/manager/manager.hpp>

#include <herd/manager/preflight.hpp>

#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/os/notify.hpp>
#include <herd/os/proctitle.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace herd {

// Reload (HUP) and upgrade (USR2): a new generation rolls in, new before old
void Manager::start_reload(const std::string& said)
{
    for (auto& shell : shells_) shell->ops.discard();   // forked with the old options and sockets
    CommandLine line;
    try {
        if (!reread_) throw UsageError("no configuration to re-read");
        line = reread_();
    } catch (const std::exception& e) {
        refuse_reload(said + ": the configuration is invalid, keeping the running one: " + e.what(),
                      "the configuration is invalid: " + std::string(e.what()));
        return;
    }
    // Several pools, before or after: each pool by name (manager_reload.cpp)
    const bool one = line.pools.empty() || (line.pools.size() == 1 && line.pools.front().name == "main");
    if (!one || supervisor_.pools.size() != 1 || pool(0).name != "main") return reload_pools(said, line);
    Options fresh = std::move(line.options);
    if (fresh.control != options_.control)
        spdlog::warn("{}: --control changes from '{}' to '{}' at the next start; the socket stays where it is", said,
                     options_.control, fresh.control);
    // New addresses are bound before any worker needs them; the old ones close after the old generation.
    if (fresh.listen != options_.listen) {
        try {
            auto bound = bind_listeners(fresh.listen);
            for (const auto& l : bound) spdlog::info("listening on {}", local_address(l.fd));
            shell_of(0).previous_listeners = std::exchange(*shell_of(0).listeners, std::move(bound));
        } catch (const std::exception& e) {
            refuse_reload(said + ": " + e.what() + "; keeping the running configuration", e.what());
            return;
        }
    }
    shell_of(0).previous_options = options_;
    use_options(std::move(fresh));
    rollout_ = Reason::reload;
    handle(0, RolloutStarted{Reason::reload}, Clock::now());
    spdlog::info("{}: reloading; generation {} replaces {} workers of generation {}", said, state().generation,
                 state().workers.size(), state().rollout->from_generation);
}

// A reload that never started: one line, systemd told, the waiting client answered.
void Manager::refuse_reload(const std::string& line, const std::string& why)
{
    spdlog::error("{}", line);
    notify::send("READY=1\nSTATUS=reload refused: " + why);
    report_rollout_failure(Reason::reload, state().last_generation + 1, "reload refused: " + why);
}

// Options take effect: the target now, the log at once, everything else with the next spawn.
void Manager::use_options(Options next)
{
    if (next.log_level != options_.log_level || next.log_file != options_.log_file)
        log::setup(next.log_level, next.log_file, "manager");
    options_ = std::move(next);
    pool(0).options = options_;   // one pool: the command line's options are its options
    watch_memory();
    handle(ScalePool{0, Scale{options_.workers, 0}}, Clock::now());
}

// systemd (Type=notify-reload) waits for READY=1 after this, whatever comes of it.
void Manager::notify_reloading()
{
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now().time_since_epoch());
    notify::send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now.count()));
}

void Manager::rollout_done(std::size_t i, const RolloutDone& done)
{
    handle(i, RolloutEnded{false}, Clock::now());
    // A pool the strategy restarted: that pool's own line
    if (done.kind == Reason::restart) {
        spdlog::info("{}restart to generation {} complete in {}: {} workers ready", in_pool(i), done.generation,
                     format_duration(done.took), ready_count(pool(i).state));
        check_readiness();
        return;
    }
    const bool rolling = std::any_of(supervisor_.pools.begin(), supervisor_.pools.end(),
                                     [&](const Pool& p) { return p.state.rollout && p.state.rollout->kind == done.kind; });
    if (supervisor_.pools.size() > 1)
        spdlog::info("{}{} to generation {} complete in {}: {} workers ready", in_pool(i), to_string(done.kind),
                     done.generation, format_duration(done.took), ready_count(pool(i).state));
    if (rolling) return;   // the manager's reload or upgrade ends with its last pool
    if (reloading_pools_) return reload_progress();
    rollout_.reset();
    if (supervisor_.pools.size() == 1)
        spdlog::info("{} to generation {} complete in {}: {} workers ready", to_string(done.kind), done.generation,
                     format_duration(done.took), ready_count(state()));
    else
        spdlog::info("{} complete in {}: {} workers in {} pools ready", to_string(done.kind),
                     format_duration(std::chrono::duration_cast<Duration>(Clock::now() - rollout_requested_)),
                     std::accumulate(supervisor_.pools.begin(), supervisor_.pools.end(), std::size_t{0},
                                     [](std::size_t n, const Pool& p) { return n + ready_count(p.state); }),
                     supervisor_.pools.size());
    history_.add(control::RolloutRecord{done.kind, done.generation, false, {}, Clock::now()});
    answer_waiting(control::command_for(done.kind), control::rollout_answer(done.kind, done.generation, done.took));
    settle_rollout();
    if (previous_binary_fd_ >= 0) ::close(std::exchange(previous_binary_fd_, -1));
    proctitle::set(options_.name + ": manager");
    notify::ready("generation " + std::to_string(done.generation) + ": " + std::to_string(target_count()) +
                  " workers ready");
    check_readiness();
}

void Manager::rollout_failed(std::size_t i, const RolloutFailed& failed)
{
    // "upgrade to generation 3 failed: <why>", in the log, to the waiting client and in status
    const std::string what =
        to_string(failed.kind) + " to generation " + std::to_string(failed.generation) + " failed: " + failed.why;
    const PoolState& state = pool(i).state;
    if (failed.kind == Reason::upgrade && previous_binary_fd_ >= 0) {
        spdlog::error("{}{}; going back to the previous binary", in_pool(i), what);
        report_rollout_failure(failed.kind, failed.generation, what + "; the previous binary serves again");
        for (std::size_t j = 0; j < shells_.size(); ++j) handle(j, RolloutEnded{true}, Clock::now());
        try {
            exec_image(previous_binary_fd_, failed.generation, failed.why);
        } catch (const std::exception& e) {
            spdlog::critical("cannot go back to the previous binary: {}; generation {} keeps serving", e.what(),
                             state.generation);
        }
        return;
    }
    spdlog::error("{}{}; generation {} keeps serving", in_pool(i), what,
                  state.rollout ? state.rollout->from_generation : state.generation);
    handle(i, RolloutEnded{true}, Clock::now());
    if (failed.kind == Reason::restart) return;   // the pool's plan and restart limit go on
    rollout_.reset();
    report_rollout_failure(failed.kind, failed.generation, what);
    Shell& shell = shell_of(i);
    if (shell.previous_options && reloading_pools_) {   // this pool goes back; the others keep what they rolled to
        pool(i).options = *std::exchange(shell.previous_options, std::nullopt);
        if (shell.previous_program) {
            pool(i).program = *std::exchange(shell.previous_program, std::nullopt);
            shell.ops.switch_back();
        }
        handle(ScalePool{i, Scale{pool(i).options.workers, 0}}, Clock::now());
    }
    reloading_pools_ = false;
    reload_starting_.clear();
    reload_timer_.reset();
    if (shell.previous_options) use_options(*std::exchange(shell.previous_options, std::nullopt));
    if (!shell.previous_listeners.empty()) {
        close_listeners(*shell.listeners, true);
        *shell.listeners = std::exchange(shell.previous_listeners, {});
    }
    notify::send("READY=1\nSTATUS=" + failed.why);
    proctitle::set(options_.name + ": manager (" + to_string(failed.kind) + " to generation " +
                   std::to_string(failed.generation) + " failed)");
}

// A rollout is complete: what each pool could have gone back to goes (sockets, options, program).
void Manager::settle_rollout()
{
    for (auto& shell : shells_) {
        close_listeners(shell->previous_listeners, false);
        shell->previous_listeners.clear();
        shell->previous_options.reset();
        shell->previous_program.reset();
        shell->ops.settle();
    }
}

}  // namespace herd
