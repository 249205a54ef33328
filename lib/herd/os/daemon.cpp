// Daemon mode (daemon.hpp): the double fork and the starting command's wait for the report.
#include <herd/os/daemon.hpp>

#include <herd/os/fd.hpp>

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace herd {

// Daemon: the starting command waits on a pipe until the pool is ready (or the manager failed).
int daemonize(int& ready_fd)
{
    PipeFds ready = make_pipe(O_CLOEXEC, "pipe");
    std::fflush(nullptr);
    const pid_t first = ::fork();
    if (first < 0) throw std::system_error(errno, std::generic_category(), "cannot fork");
    if (first > 0) {
        ready.write.reset();
        std::string message;
        char buf[512];
        ssize_t n;
        while ((n = ::read(ready.read.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
            if (n > 0) message.append(buf, std::size_t(n));
        if (message.starts_with("ok")) return 0;
        if (message.empty()) message = "the manager exited before its workers were ready (see the log)";
        std::fprintf(stderr, "%s\n", message.c_str());
        return 1;
    }
    ready.read.reset();
    ::setsid();
    if (const pid_t second = ::fork(); second != 0) ::_exit(second < 0 ? 1 : 0);
    if (const UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC)); null) {
        ::dup2(null.get(), 0);
        ::dup2(null.get(), 1);
    }
    ready_fd = ready.write.release();
    return -1;   // continue as the daemon
}

void report(int fd, const std::string& message)
{
    if (fd < 0) return;
    [[maybe_unused]] auto n = ::write(fd, message.data(), message.size());
}

}  // namespace herd
