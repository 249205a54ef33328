// herd-bench's floors (floors.hpp): raw fork + pipe, reap + pipe and pipe round trips.
#include "floors.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <initializer_list>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

namespace {

// A child that answers each byte on `in` with one on `out` until `in` closes.
pid_t echo_child(int in, int out, std::initializer_list<int> close_in_child)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        for (int fd : close_in_child) ::close(fd);
        char byte;
        while (::read(in, &byte, 1) == 1)
            if (::write(out, &byte, 1) != 1) break;
        ::_exit(0);
    }
    return pid;
}

// One byte to `out`, one back from `in`.
bool round_trip(int out, int in)
{
    const char byte = 'x';
    if (::write(out, &byte, 1) != 1) return false;
    char back;
    ssize_t n;
    do {
        n = ::read(in, &back, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1;
}

}  // namespace

Stats raw_fork_pipe(int samples)
{
    constexpr int warm_up = 20;   // not counted: first forks fault in page tables
    std::vector<double> ms;
    for (int i = 0; i < samples + warm_up; ++i) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) continue;
        const auto t0 = Clock::now();
        const pid_t pid = ::fork();
        if (pid == 0) {
            const char byte = 'x';
            (void)!::write(fds[1], &byte, 1);
            ::_exit(0);
        }
        char byte;
        ssize_t n;
        do {
            n = ::read(fds[0], &byte, 1);
        } while (n < 0 && errno == EINTR);
        const auto t1 = Clock::now();
        ::waitpid(pid, nullptr, 0);
        ::close(fds[0]);
        ::close(fds[1]);
        if (n == 1 && i >= warm_up) ms.push_back(ms_between(t0, t1));
    }
    return stats(ms);
}

Floors measure_floors(int samples)
{
    constexpr int warm_up = 20;
    Floors f;
    std::vector<double> reap_ms, pipe_ms;
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) return f;
    const pid_t echo = echo_child(to[0], from[1], {to[1], from[0]});
    for (int i = 0; i < samples + warm_up; ++i) {
        // A victim that is running (it said so), and the echo child waiting in read()
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) break;
        const pid_t victim = ::fork();
        if (victim == 0) {
            const char byte = 'r';
            (void)!::write(ready[1], &byte, 1);
            for (;;) ::pause();
        }
        ::close(ready[1]);
        char byte;
        (void)!::read(ready[0], &byte, 1);
        ::close(ready[0]);

        const auto t0 = Clock::now();
        const bool ok = round_trip(to[1], from[0]);
        const auto t1 = Clock::now();
        ::kill(victim, SIGKILL);
        ::waitpid(victim, nullptr, 0);
        const bool ok2 = round_trip(to[1], from[0]);
        const auto t2 = Clock::now();
        if (i >= warm_up && ok && ok2) {
            pipe_ms.push_back(ms_between(t0, t1));
            reap_ms.push_back(ms_between(t1, t2));
        }
    }
    ::close(to[1]);
    ::close(from[0]);
    ::close(to[0]);
    ::close(from[1]);
    ::waitpid(echo, nullptr, 0);
    f.reap_pipe = stats(reap_ms);
    f.pipe = stats(pipe_ms);
    return f;
}

}  // namespace herd::bench
