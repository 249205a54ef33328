#include <herd/process_ops.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <system_error>
#include <sys/wait.h>
#include <unistd.h>

namespace herd {

bool send_signal(int pid, int signal)
{
    // Never signal a process group or ourselves by accident.
    if (pid <= 1) return false;
    return ::kill(pid, signal) == 0 || errno != ESRCH;
}

std::optional<int> reap_if_exited(int pid)
{
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r == 0) return std::nullopt;
        if (errno == EINTR) continue;
        // ECHILD: not (or no longer) our child; report it gone so nobody waits for it forever.
        return W_EXITCODE(255, 0);
    }
}

ForkOps::ForkOps(ChildMain child_main) : child_main_(std::move(child_main))
{
}

int ForkOps::spawn(const SpawnRequest& request)
{
    // Block signals across fork: the child takes what arrives early once its handlers are in place.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    std::fflush(nullptr);
    // No notify_fork: the child never runs, closes through or destroys anything of the manager's
    // io_context (its epoll instance is shared with the manager), and the manager uses no asio
    // signal_set, so asio's process-wide signal state is untouched for the application's own.
    const pid_t pid = ::fork();
    if (pid == 0) {
        int code = 1;
        try {
            if (child_setup_) child_setup_();
            code = child_main_(request);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "worker %d failed: %s\n", int(::getpid()), e.what());
        } catch (...) {
            std::fprintf(stderr, "worker %d failed with an unknown exception\n", int(::getpid()));
        }
        std::fflush(nullptr);
        ::_exit(code);
    }
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) throw std::system_error(err, std::generic_category(), "cannot fork a worker");
    return pid;
}

bool ForkOps::send(int pid, int signal)
{
    return send_signal(pid, signal);
}

std::optional<int> ForkOps::try_reap(int pid)
{
    return reap_if_exited(pid);
}

}  // namespace herd
