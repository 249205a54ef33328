#include <herd/os/exec_ops.hpp>

#include <herd/os/fd.hpp>
#include <herd/os/time_slice.hpp>

#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <optional>
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
    int out = -1;                    // becomes 1
    int err = -1;                    // becomes 2 (the same pipe as out, or one of its own)
    ChildEnvironment& env;
    std::vector<const char*> envp;
    const Identity& identity;
    pid_t manager = 0;

    ChildSetup(std::vector<int> f, int out, int err, ChildEnvironment& e, const Identity& id)
        : fds(std::move(f)), out(out), err(err), env(e), identity(id), manager(::getpid())
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
        std::array<int, 3> stdio_sources{null, out, err};
        for (int& fd : stdio_sources)
            if ((fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3 + n)) < 0) return failed();
        for (int& fd : fds)
            if ((fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3 + n)) < 0) return failed();
        if (::dup2(stdio_sources[0], 0) < 0 || ::dup2(stdio_sources[1], 1) < 0 || ::dup2(stdio_sources[2], 2) < 0)
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

ExecOps::ExecOps(boost::asio::io_context& io, PoolSetup pool, Program program, const std::vector<Listener>& listeners,
                 std::function<Identity()> identity)
    : pool_(std::move(pool)), output_(io, pool_.name, pool_.output_levels), program_(std::move(program)),
      listeners_(listeners), identity_(std::move(identity))
{
}

ExecOps::~ExecOps() = default;

void ExecOps::close_in_child() noexcept
{
    output_.close_in_child();
    for (int fd : launcher_fds_) ::close(fd);   // a fork-mode worker beside this pool holds none of them
}

// Spawning: the program's descriptors from 3 (listeners, then heartbeat pipe), output to the manager
Started ExecOps::spawn(int slot, unsigned generation)
{
    PipeFds heartbeat = make_pipe(O_CLOEXEC, "cannot create a heartbeat pipe");
    OutputPipes::Pipes output = output_.open();

    std::vector<int> fds;
    for (const auto& l : listeners_) fds.push_back(l.fd);
    fds.push_back(heartbeat.write.get());
    ChildEnvironment env =
        child_environment(environ, listeners_, 3 + int(listeners_.size()), slot, generation, pool_.name);
    const Identity identity = identity_ ? identity_() : Identity{};
    ChildSetup setup(fds, output.stdout_fd(), output.stderr_fd(), env, identity);
    std::vector<const char*> argv;
    for (const auto& a : program_.argv) argv.push_back(a.c_str());
    argv.push_back(nullptr);

    int pid = -1;
    {
        LowFdsTaken taken(3 + int(fds.size()) + 1);
        std::fflush(nullptr);   // nothing buffered is written twice
        bp2::error_code ec;
        bp2::posix::default_launcher launcher;
        std::optional<bp2::process> process;
        const pid_t manager = ::getpid();
        try {
            process.emplace(launcher(launcher_io_->get_executor(), ec, program_.path, argv.data(), setup));
        } catch (...) {
            // Thrown in the child, between its fork and its exec: nothing unwinds into the manager's code there.
            if (::getpid() != manager) ::_exit(127);
            // Boost.Process opens a pidfd for every program it started, and throws when the kernel
            // refuses one (pidfd_open: ENOSYS before Linux 5.3 and under valgrind 3.19, EPERM under
            // an old seccomp profile). The program runs all the same, and its pid is all we need.
            // The failed registration stays in the launcher's context, and would make the next
            // fork's notify_fork throw in the child: a fresh context for the next spawn.
            launcher_io_.emplace();
            launcher_fds_ = event_descriptors(*launcher_io_);
            if (ec || launcher.pid <= 0) throw;
        }
        if (ec) {
            // The child reported why it could not exec, and exits: it is ours to reap, nobody else's.
            if (launcher.pid > 0) {
                int status = 0;
                while (::waitpid(launcher.pid, &status, 0) < 0 && errno == EINTR) {
                }
            }
            throw std::system_error(ec.value(), std::generic_category(), "cannot start " + program_.path);
        }
        pid = launcher.pid;
        // From here the pid is reaped by try_reap() alone; the process object would kill it.
        if (process) process->detach();
    }

    output_.watch(pid, slot, std::move(output));
    return {pid, heartbeat.read.release()};
}

bool ExecOps::send(int pid, int signal)
{
    return send_signal(pid, signal);
}

std::optional<int> ExecOps::try_reap(int pid)
{
    auto status = reap_if_exited(pid);
    // Everything it wrote is in the pipes now: logged before the manager logs its exit.
    if (status) output_.drain(pid);
    return status;
}

// USR2: the output pipes go to the next image; the lines read so far are logged by this one
std::vector<std::pair<int, int>> ExecOps::hand_over()
{
    return output_.hand_over();
}

void ExecOps::adopt_output(int pid, int slot, int fd)
{
    output_.adopt(pid, slot, fd);
}

}  // namespace herd
