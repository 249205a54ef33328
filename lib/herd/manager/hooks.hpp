// Manager-side hooks for applications, called in the manager process (Mojo's Prefork events).
#pragma once

#include <functional>
#include <string>

namespace herd {

/// What a manager-side hook is told about a worker.
struct WorkerEvent {
    int pid = 0;
    int slot = 0;
    unsigned generation = 0;
    std::string outcome;   // after_reap: "finished (exit 0)", "crashed (signal 11)", ...
    std::string pool;      // its pool's name ("main" with one pool)
};

/// Called in the manager; keep them short, the manager loop waits for them.
struct ManagerHooks {
    std::function<void(const WorkerEvent&)> after_spawn;
    std::function<void(const WorkerEvent&)> after_reap;
    std::function<void(const WorkerEvent&)> on_heartbeat;
    std::function<void()> on_shutdown;
};

}  // namespace herd
