// Exec mode's launcher (`herd [options] -- COMMAND [ARGS...]`): every worker is a copy of a
// program, started with Boost.Process v2 and handed its sockets the systemd way. Which program
// is decided at start (executable.hpp), its environment before each fork (child_environment.hpp).
//
// A program starts with
//   fd 0            /dev/null
//   fds 1 and 2     pipes to the manager, which logs each line written to them as
//                   "[POOL[SLOT] PID] [LEVEL] <line>" (output_pipes.hpp: one pipe for both
//                   while --stdout-level and --stderr-level are the same, as they are by
//                   default in exec mode, both info); read until the program is reaped, then
//                   closed (what a child it left behind writes later is not read: it gets EPIPE)
//   fds 3..3+n-1    the listening sockets, in --listen order: LISTEN_FDS=n, LISTEN_PID=its own
//                   pid, LISTEN_FDNAMES=one name each (fd_name()); none of the three when n = 0
//   fd 3+n          the write end of its heartbeat pipe: HERD_HEARTBEAT_FD=3+n (heartbeat.hpp
//                   has the record format; an empty line is a heartbeat)
//   HERD_SLOT, HERD_GENERATION, HERD_POOL
// and no other descriptor of the manager's; no signal blocked and every signal at its default
// action (the manager blocks its own for a signalfd and ignores SIGPIPE: a program inherits
// neither); PR_SET_PDEATHSIG SIGKILL, so it dies with the manager; the kernel's default time
// slice; --user and --group taken on before the exec. The manager's own systemd variables
// (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) are not passed on: the manager talks to systemd,
// the program to the manager.
//
// Reaping: the Boost.Process object is detached as soon as the program runs; try_reap() is the
// only waitpid() of its pid, so nobody else can take its exit status.
#pragma once

#include <herd/os/child_environment.hpp>
#include <herd/os/executable.hpp>
#include <herd/os/identity.hpp>
#include <herd/os/output_pipes.hpp>
#include <herd/os/process_ops.hpp>
#include <herd/worker/worker.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

class ExecOps : public ProcessOps {
public:
    /// `listeners` is the manager's (a reload may change it); `identity` is asked at each spawn.
    ExecOps(boost::asio::io_context& io, PoolSetup pool, Program program, const std::vector<Listener>& listeners,
            std::function<Identity()> identity);
    ~ExecOps() override;

    Started spawn(int slot, unsigned generation) override;
    bool send(int pid, int signal) override;
    std::optional<int> try_reap(int pid) override;
    bool forwards_log_reopen() const override { return false; }
    std::vector<std::pair<int, int>> hand_over() override;
    void adopt_output(int pid, int slot, int fd) override;
    void close_in_child() noexcept override;

    const Program& program() const { return program_; }

private:
    PoolSetup pool_;
    OutputPipes output_;
    // Boost.Process calls notify_fork() on the context it launches with. The child execs at once
    // and never touches the manager's epoll instance; a context of its own, with nothing
    // registered, spares every spawn re-registering the manager's descriptors in the child.
    std::optional<boost::asio::io_context> launcher_io_{std::in_place};
    std::vector<int> launcher_fds_ = event_descriptors(*launcher_io_);   // a forked worker closes them
    Program program_;
    const std::vector<Listener>& listeners_;
    std::function<Identity()> identity_;
};

}  // namespace herd
