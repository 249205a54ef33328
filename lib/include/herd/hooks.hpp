// Manager-side hooks for applications, called in the manager process (Mojo's Prefork events).
#pragma once

#include <functional>
#include <string>

namespace boost::program_options {
class variables_map;
}

namespace herd {

struct Options;

/// How a worker's life ended, as after_reap is told (WorkerEvent::exit); `none` in the other hooks.
enum class WorkerExit {
    none,           // not reaped: after_spawn, on_heartbeat
    finished,       // returned from run() (exit 0) without being asked to
    retired,        // asked to go (age, requests, memory, TTOU, reload, upgrade) and went
    stopped,        // stopped by a shutdown of the manager or of its pool
    no_heartbeat,   // silent past --heartbeat-timeout: retired or killed as hung
    boot_timeout,   // not ready within --boot-timeout: killed
    killed,         // killed after --graceful-timeout or --kill-timeout
    crashed,        // died of a signal or exited with a non-zero code, unasked
};

/// What a manager-side hook is told about a worker.
struct WorkerEvent {
    int pid = 0;
    int slot = 0;
    unsigned generation = 0;
    WorkerExit exit = WorkerExit::none;   // after_reap: how it ended
    std::string outcome;   // after_reap: the log's words for it, "finished (exit 0)", "crashed (signal 11)", ...
    std::string pool;      // its pool's name ("main" with one pool)
};

/// Called in the manager; keep them short, the manager loop waits for them.
struct ManagerHooks {
    /// Once, in the manager, before the first worker is forked: build the state every worker
    /// shares copy-on-write (a loaded model, a parsed data set; docs/tutorial.md, "Writing a server"), from
    /// the standard options and every parsed option (the application's too). A reload (HUP)
    /// keeps that state; an upgrade (USR2) builds it again in the new binary. An exception is one
    /// line on stderr and exit 1, before any worker runs.
    std::function<void(const Options&, const boost::program_options::variables_map&)> preload;
    std::function<void(const WorkerEvent&)> after_spawn;
    std::function<void(const WorkerEvent&)> after_reap;
    std::function<void(const WorkerEvent&)> on_heartbeat;
    std::function<void()> on_shutdown;
};

}  // namespace herd
