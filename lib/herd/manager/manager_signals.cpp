// The manager's signals (DESIGN.md §3): blocked and read from a signalfd as data, then turned into
// the same commands the control socket gives (manager_control.cpp).
#include <herd/manager/manager.hpp>

#include <herd/os/log.hpp>
#include <herd/os/signals.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/signalfd.h>
#include <system_error>
#include <unistd.h>

namespace herd {

// Signals: blocked and read from a signalfd, so no code of ours runs in a signal handler and a
// forked worker inherits no handler, no signal pipe and no registration of the manager's.
void Manager::watch_signals()
{
    if (!signal_fd_.is_open()) {
        sigset_t set;
        ::sigemptyset(&set);
        for (int s : manager_signals()) ::sigaddset(&set, s);
        ::pthread_sigmask(SIG_SETMASK, &set, nullptr);   // and every other signal unblocked
        const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create a signalfd");
        signal_fd_.assign(fd);
        std::signal(SIGPIPE, SIG_IGN);
        // A log file past RLIMIT_FSIZE fails its write (EFBIG, see log.cpp) instead of ending the
        // manager, or a worker (they inherit this), with SIGXFSZ.
        std::signal(SIGXFSZ, SIG_IGN);
    }
    // Wait for readability and read in the handler: asio's async_read_some reads inside its reactor
    // and runs the handler later, so a USR2 exec in between lost a signal already taken off the fd.
    signal_fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec) return;
        read_pending_signals();
        watch_signals();
    });
}

void Manager::dispatch_signals(const char* data, std::size_t n)
{
    for (std::size_t off = 0; off + sizeof(signalfd_siginfo) <= n; off += sizeof(signalfd_siginfo)) {
        signalfd_siginfo info;
        std::memcpy(&info, data + off, sizeof info);
        on_signal(int(info.ssi_signo));
    }
}

// Signals already delivered but not yet read. A worker's exit is seen first on its heartbeat
// channel at times; the INT or TERM that the whole process group got (and that killed it) must be
// acted on before that exit is judged, or a shutdown reads as a crash.
void Manager::read_pending_signals()
{
    std::array<char, 16 * sizeof(signalfd_siginfo)> buffer;
    for (;;) {
        const ssize_t n = ::read(signal_fd_.native_handle(), buffer.data(), buffer.size());
        if (n <= 0) return;   // EAGAIN: nothing pending
        dispatch_signals(buffer.data(), std::size_t(n));
    }
}

void Manager::on_signal(int signal)
{
    if (signal == SIGCHLD) return reap_exited();
    const auto request = request_for(signal);
    if (!request) return;
    const std::string said = "received " + signal_name(signal);
    switch (request->command) {
    case Command::scale: scale(0, Scale{std::nullopt, request->delta}, said); break;   // the first pool
    case Command::stop: stop(request->graceful, said); break;
    case Command::reload: start_rollout(Reason::reload, said); break;
    case Command::upgrade: start_rollout(Reason::upgrade, said); break;
    case Command::reopen_logs: reopen_logs(said); break;
    default: break;   // no signal asks for the rest
    }
}

// USR1: the manager's log file, then every worker's that reopens its own
void Manager::reopen_logs(const std::string& said)
{
    spdlog::info("{}: reopening log files", said);
    log::reopen();
    for (std::size_t i = 0; i < shells_.size(); ++i) {
        ProcessOps& ops = shell_of(i).ops;
        ops.discard();   // a standby would log to the old file
        if (ops.forwards_log_reopen())
            for (const auto& w : pool(i).state.workers) ops.send(w.pid, SIGUSR1);
    }
}

}  // namespace herd
