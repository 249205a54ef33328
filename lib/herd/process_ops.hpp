// The seam between the manager and the operating system's processes: spawn, signal, reap.
// The manager talks to processes only through ProcessOps, so its shell can be tested with a
// fake, and exec mode can start programs another way than fork-mode workers.
#pragma once

#include <functional>
#include <optional>

namespace herd {

/// What a new worker needs to know.
struct SpawnRequest {
    int slot = 0;
    unsigned generation = 1;
    int heartbeat_fd = -1;   // write end of the worker's heartbeat pipe
    int manager_pid = 0;
};

class ProcessOps {
public:
    virtual ~ProcessOps() = default;
    /// Start a worker; returns its pid; throws std::system_error.
    virtual int spawn(const SpawnRequest& request) = 0;
    /// Send a signal; false when the process is already gone.
    virtual bool send(int pid, int signal) = 0;
    /// The raw wait status of pid if it has exited (and is now reaped), else nullopt.
    virtual std::optional<int> try_reap(int pid) = 0;
};

/// fork()-based workers running a function of this program.
///
/// The child starts with every signal blocked; child_setup closes what only the manager may
/// hold (raw close, never through the manager's io_context, whose epoll instance the child
/// shares), and child_main must unblock signals once its own handlers are in place. The child never returns into the
/// manager's code: it _exit()s with child_main's result.
class ForkOps : public ProcessOps {
public:
    using ChildMain = std::function<int(const SpawnRequest&)>;

    explicit ForkOps(ChildMain child_main);
    /// Run in every child right after fork, before child_main.
    void set_child_setup(std::function<void()> setup) { child_setup_ = std::move(setup); }

    int spawn(const SpawnRequest& request) override;
    bool send(int pid, int signal) override;
    std::optional<int> try_reap(int pid) override;

private:
    ChildMain child_main_;
    std::function<void()> child_setup_;
};

/// kill() that retries EINTR; false when the process is gone (ESRCH).
bool send_signal(int pid, int signal);
/// waitpid(pid, WNOHANG) that retries EINTR.
std::optional<int> reap_if_exited(int pid);

}  // namespace herd
