// Options: the rules between options (DESIGN.md §2), checked once every value is converted.
#include <herd/config/options.hpp>

#include <herd/config/option_table.hpp>

#include <algorithm>
#include <string>

namespace herd {

namespace {

constexpr unsigned max_workers = 4096;

}  // namespace

// Relations between options
void validate(const Options& o)
{
    // The values were converted already, so messages show them as herd prints them ("got 0 s").
    const auto fail = [](const std::string& option, const std::string& rule, const std::string& got) {
        throw UsageError("--" + option + " " + rule + " (got " + got + ")");
    };
    if (o.workers > max_workers)
        fail("workers", "must be at most " + std::to_string(max_workers), std::to_string(o.workers));
    if (o.heartbeat_interval.count() <= 0)
        fail("heartbeat-interval", "must be above 0", format_duration(o.heartbeat_interval));
    // A timeout of 0 turns heartbeat watching off (exec mode); otherwise a worker needs room to beat.
    if (o.heartbeat_timeout.count() != 0 && o.heartbeat_interval >= o.heartbeat_timeout)
        throw UsageError("--heartbeat-interval (" + format_duration(o.heartbeat_interval) +
                         ") must be below --heartbeat-timeout (" + format_duration(o.heartbeat_timeout) + ")");
    if (o.graceful_timeout.count() <= 0)
        fail("graceful-timeout", "must be above 0", format_duration(o.graceful_timeout));
    if (o.kill_timeout.count() <= 0) fail("kill-timeout", "must be above 0", format_duration(o.kill_timeout));
    const std::string restart =
        std::to_string(o.restart_limit.count) + "/" + format_duration(o.restart_limit.window);
    if (o.restart_limit.count < 1) fail("restart-limit", "needs a count of at least 1", restart);
    if (o.restart_limit.window.count() <= 0) fail("restart-limit", "needs a window above 0", restart);
    // Exec mode: `required` means a timeout to watch; 0 would silently mean `off`.
    if (o.ready_after && o.heartbeat == HeartbeatMode::required && o.heartbeat_timeout.count() == 0)
        throw UsageError("--heartbeat required needs a --heartbeat-timeout above 0 (got 0 s)");
    // Exec mode: a program that sends no heartbeat must get to be ready before it is killed for not being ready.
    const bool ready_by_time = o.heartbeat != HeartbeatMode::required || o.heartbeat_timeout.count() == 0;
    if (o.ready_after && ready_by_time && o.boot_timeout.count() > 0 && *o.ready_after >= o.boot_timeout)
        throw UsageError("--ready-after (" + format_duration(*o.ready_after) + ") must be below --boot-timeout (" +
                         format_duration(o.boot_timeout) + ")");
    // The manager samples at a quarter of the window: it needs a window to sample in.
    if (o.max_worker_memory > 0 && o.max_worker_memory_window.count() <= 0)
        fail("max-worker-memory-window", "must be above 0 while --max-worker-memory is on",
             format_duration(o.max_worker_memory_window));
    if (std::find(std::begin(log_levels), std::end(log_levels), o.log_level) == std::end(log_levels))
        throw UsageError("invalid value '" + o.log_level + "' for --log-level: expected one of " + join_levels());
}

}  // namespace herd
