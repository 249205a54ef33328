#include <herd/os/exec_ops.hpp>

#include <herd/os/fd.hpp>
#include <herd/os/log.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <system_error>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace herd {

namespace bp2 = boost::process::v2;

namespace {

// Boost.Process makes its exec-error pipe with pipe(), the lowest free numbers, just before our
// setup runs. Should one land where the program's descriptors go (3..3+n), the setup would dup
// a socket over it. Taking every free number below `limit` for the launch keeps it above.
struct LowFdsTaken {
    std::vector<UniqueFd> fds;
    explicit LowFdsTaken(int limit)
    {
        for (;;) {
            UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (!fd || fd.get() >= limit) return;
            fds.push_back(std::move(fd));
        }
    }
};

// What the child does between fork and exec. Async-signal-safe calls only (no allocation): the
// manager is single-threaded, but a child of a forking process should not need that to be true.
struct ChildSetup {
    std::vector<int> fds;            // become 3, 4, ...: the listeners, then the heartbeat pipe
    int output = -1;                 // becomes 1 and 2
    ChildEnvironment& env;
    std::vector<const char*> envp;
    const Identity& identity;
    pid_t manager = 0;

    ChildSetup(std::vector<int> f, int out, ChildEnvironment& e, const Identity& id)
        : fds(std::move(f)), output(out), env(e), identity(id), manager(::getpid())
    {
        for (const auto& v : env.vars) envp.push_back(v.c_str());
        envp.push_back(nullptr);
    }

    // In the manager, before fork
    bp2::error_code on_setup(bp2::posix::default_launcher& launcher, const bp2::filesystem::path&, const char* const*)
    {
        launcher.env = envp.data();
        for (std::size_t i = 0; i < fds.size(); ++i) launcher.fd_whitelist.push_back(3 + int(i));
        return {};
    }

    // In the child, before Boost.Process closes descriptors and execs
    bp2::error_code on_exec_setup(bp2::posix::default_launcher&, const bp2::filesystem::path&, const char* const*)
    {
        // Die with the manager, even if it died a moment ago
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != manager) ::_exit(127);
        default_time_slice();

        // Descriptors: sources first moved above every target, then put in place (dup2 clears
        // close-on-exec); everything above is closed by the exec (Boost 1.81's close_all leaks)
        const int n = int(fds.size());
        const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0) return failed();
        std::array<int, 2> stdio_sources{null, output};
        for (int& fd : stdio_sources)
            if ((fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3 + n)) < 0) return failed();
        for (int& fd : fds)
            if ((fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3 + n)) < 0) return failed();
        if (::dup2(stdio_sources[0], 0) < 0 || ::dup2(stdio_sources[1], 1) < 0 || ::dup2(stdio_sources[1], 2) < 0)
            return failed();
        for (int i = 0; i < n; ++i)
            if (::dup2(fds[std::size_t(i)], 3 + i) < 0) return failed();
        ::close_range(unsigned(3 + n), ~0U, CLOSE_RANGE_CLOEXEC);

        // Who it runs as
        if (const int err = take_identity(identity)) {
            errno = err;
            return failed();
        }
        // The kernel clears PR_SET_PDEATHSIG when a process changes its user or group: set it again
        if (identity.uid || identity.gid) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != manager) ::_exit(127);
        }

        // LISTEN_PID is the program's own pid: known only now
        if (env.listen_pid != std::string::npos)
            std::snprintf(env.vars[env.listen_pid].data() + listen_pid_prefix.size(), pid_digits + 1, "%d",
                          int(::getpid()));

        // Signals: nothing blocked, every one at its default action (last: nothing may arrive
        // before this that a default action would act on too early)
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; ++s)
            if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        return {};
    }

    // The exec failed: errno has gone to the manager. Never ::exit() (Boost's choice) in a copy of
    // the manager: its atexit handlers and static destructors are the manager's.
    template <class... A>
    void on_exec_error(A&&...)
    {
        ::_exit(127);
    }

    // Boost.Process reports errno to the manager, so the error code only has to say "failed".
    static bp2::error_code failed() { return {errno, bp2::system_category()}; }
};

}  // namespace

// A program's output, read by the manager until EOF or until the program is reaped
struct ExecOps::Output {
    Output(boost::asio::io_context& io, int fd, int pid, int slot) : pipe(io, fd), pid(pid), slot(slot) {}
    boost::asio::posix::stream_descriptor pipe;
    std::array<char, 4096> buffer{};
    OutputLines lines;
    int pid;
    int slot;
};

ExecOps::ExecOps(boost::asio::io_context& io, Program program, const std::vector<Listener>& listeners,
                 std::function<Identity()> identity)
    : io_(io), program_(std::move(program)), listeners_(listeners), identity_(std::move(identity))
{
}

ExecOps::~ExecOps() = default;

// Spawning: the program's descriptors from 3 (listeners, then heartbeat pipe), output to the manager
Started ExecOps::spawn(int slot, unsigned generation)
{
    PipeFds heartbeat = make_pipe(O_CLOEXEC, "cannot create a heartbeat pipe");
    PipeFds output = make_pipe(O_CLOEXEC, "cannot create an output pipe");
    // Only the manager's end: the program's stdout stays blocking, as programs expect.
    ::fcntl(output.read.get(), F_SETFL, ::fcntl(output.read.get(), F_GETFL) | O_NONBLOCK);

    std::vector<int> fds;
    for (const auto& l : listeners_) fds.push_back(l.fd);
    fds.push_back(heartbeat.write.get());
    ChildEnvironment env = child_environment(environ, listeners_, 3 + int(listeners_.size()), slot, generation);
    const Identity identity = identity_ ? identity_() : Identity{};
    ChildSetup setup(fds, output.write.get(), env, identity);
    std::vector<const char*> argv;
    for (const auto& a : program_.argv) argv.push_back(a.c_str());
    argv.push_back(nullptr);

    int pid = -1;
    {
        LowFdsTaken taken(3 + int(fds.size()) + 1);
        std::fflush(nullptr);   // nothing buffered is written twice
        bp2::error_code ec;
        bp2::posix::default_launcher launcher;
        auto process = launcher(launcher_io_.get_executor(), ec, program_.path, argv.data(), setup);
        if (ec) {
            // The child reported why it could not exec, and exits: it is ours to reap, nobody else's.
            if (launcher.pid > 0) {
                int status = 0;
                while (::waitpid(launcher.pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
            throw std::system_error(ec.value(), std::generic_category(), "cannot start " + program_.path);
        }
        pid = process.id();
        // From here the pid is reaped by try_reap() alone; the process object would kill it.
        process.detach();
    }

    const int out = output.read.release();
    outputs_.emplace(pid, std::make_unique<Output>(io_, out, pid, slot));
    watch_output(pid);
    return {pid, heartbeat.read.release()};
}

bool ExecOps::send(int pid, int signal)
{
    return send_signal(pid, signal);
}

std::optional<int> ExecOps::try_reap(int pid)
{
    auto status = reap_if_exited(pid);
    // Everything it wrote is in the pipe now: logged before the manager logs its exit.
    if (status) drain_output(pid);
    return status;
}

// Output: one log line per line a program writes. The manager does every read itself, when the
// pipe is readable (a read completed by asio but not yet handed over could be overtaken by the
// drain at reap time, and its bytes lost).
void ExecOps::watch_output(int pid)
{
    auto it = outputs_.find(pid);
    if (it == outputs_.end()) return;
    it->second->pipe.async_wait(boost::asio::posix::descriptor_base::wait_read,
                                [this, pid](const boost::system::error_code& ec) {
                                    if (ec == boost::asio::error::operation_aborted) return;
                                    // A bounded share per wake-up: a chatty program does not hold up
                                    // the manager's heartbeats and signals.
                                    if (read_output(pid, 4)) watch_output(pid);
                                });
}

bool ExecOps::read_output(int pid, std::size_t max_reads)
{
    auto it = outputs_.find(pid);
    if (it == outputs_.end()) return false;
    Output& o = *it->second;
    for (std::size_t reads = 0; reads < max_reads;) {
        const ssize_t n = ::read(o.pipe.native_handle(), o.buffer.data(), o.buffer.size());
        if (n < 0 && errno == EINTR) continue;
        ++reads;
        if (n > 0) {
            log_lines(o, o.lines.feed(std::string_view(o.buffer.data(), std::size_t(n))));
            continue;
        }
        if (n < 0 && errno == EAGAIN) return true;
        // EOF (or a broken pipe): the program and whatever inherited its stdout are gone.
        if (auto last = o.lines.finish()) log_lines(o, {*last});
        outputs_.erase(it);
        return false;
    }
    return true;
}

void ExecOps::drain_output(int pid)
{
    // What the program wrote is in the pipe: read it (bounded), log an unfinished last line, and
    // close. A child it left behind may still hold the pipe's write end, for as long as it lives:
    // reading on would cost the manager one descriptor per restart of such a program.
    if (!read_output(pid, 64)) return;   // EOF: closed already
    const auto it = outputs_.find(pid);
    if (it == outputs_.end()) return;
    if (auto last = it->second->lines.finish()) log_lines(*it->second, {*last});
    outputs_.erase(it);
}

void ExecOps::log_lines(const Output& o, const std::vector<OutputLine>& lines) const
{
    const std::string role = "worker[" + (o.slot >= 0 ? std::to_string(o.slot) : std::string("?")) + "]";
    for (const auto& line : lines)
        log::write_as(role, o.pid,
                      line.cut ? line.text + " [cut: longer than " + std::to_string(max_output_line) + " bytes]"
                               : line.text);
}

// USR2: the output pipes go to the next image; the lines read so far are logged by this one
std::vector<std::pair<int, int>> ExecOps::hand_over()
{
    std::vector<std::pair<int, int>> fds;
    std::vector<int> pids;
    for (const auto& [pid, o] : outputs_) pids.push_back(pid);
    for (int pid : pids) read_output(pid, 64);
    for (auto& [pid, o] : outputs_) {
        if (auto last = o->lines.finish()) log_lines(*o, {*last});
        fds.emplace_back(pid, o->pipe.native_handle());
    }
    return fds;
}

void ExecOps::adopt_output(int pid, int slot, int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    outputs_.insert_or_assign(pid, std::make_unique<Output>(io_, fd, pid, slot));
    watch_output(pid);
}

}  // namespace herd
