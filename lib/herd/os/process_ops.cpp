#include <herd/os/process_ops.hpp>

#include <herd/os/fd.hpp>
#include <herd/os/log.hpp>
#include <herd/os/time_slice.hpp>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <dirent.h>
#include <exception>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

#include <algorithm>
#include <string_view>
#include <utility>

namespace herd {

namespace {

// What wakes a standby: its slot and generation.
struct Activation {
    int slot;
    unsigned generation;
};

}  // namespace

void ProcessOps::adopt_output(int, int, int fd)
{
    ::close(fd);
}

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

ForkOps::ForkOps(boost::asio::io_context& io, PoolSetup pool, ChildMain child_main, bool standby)
    : pool_(std::move(pool)), output_(io, pool_.name, pool_.output_levels), child_main_(std::move(child_main)),
      use_standby_(standby)
{
}

ForkOps::~ForkOps()
{
    discard();
}

namespace {

// In the child: stdout and stderr into the manager's pipes, the child's copies of them closed.
void redirect_output(const OutputPipes::Pipes& output)
{
    log::keep_stderr();   // its own log lines are formatted already: not through the manager again
    ::dup2(output.stdout_fd(), 1);
    ::dup2(output.stderr_fd(), 2);
    for (int fd : {output.out_read.get(), output.out_write.get(), output.err_read.get(), output.err_write.get()})
        if (fd > 2) ::close(fd);
    // Line by line, as on a terminal: a printf() shows in the log when its line ends, not at exit.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
}

}  // namespace

int ForkOps::fork_child(SpawnRequest request, int go_fd, OutputPipes::Pipes& output,
                        std::initializer_list<int> close_in_child)
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
            // A dead manager ends its children whatever they are doing.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != request.manager_pid) ::_exit(0);
            default_time_slice();   // the manager's long one is for the manager alone
            for (int fd : close_in_child) ::close(fd);
            ForkOps::close_in_child();   // the other workers' output pipes, the standby's (other pools': child_setup)
            redirect_output(output);
            if (child_setup_) child_setup_();
            if (go_fd >= 0) {
                // Standby: wait here, before any code of the application, to be given a slot.
                Activation a{};
                ssize_t n;
                while ((n = ::read(go_fd, &a, sizeof a)) < 0 && errno == EINTR) {
                }
                if (n != ssize_t(sizeof a)) ::_exit(0);   // discarded
                ::close(go_fd);
                request.slot = a.slot;
                request.generation = a.generation;
            }
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

void ForkOps::close_in_child() noexcept
{
    output_.close_in_child();
    // Called by the forking pool's ops and again by the manager for every pool: once is all (a
    // number closed here may be in use again by the second call).
    if (auto standby = std::exchange(standby_, std::nullopt)) {
        ::close(standby->go_fd);
        ::close(standby->heartbeat_fd);
        standby->page.close_in_child();
    }
}

Started ForkOps::spawn(int slot, unsigned generation)
{
    // The standby, if it is still there, becomes this worker
    if (standby_ && !reap_if_exited(standby_->pid)) {
        const Activation a{slot, generation};
        if (::write(standby_->go_fd, &a, sizeof a) == ssize_t(sizeof a)) {
            const Started started{standby_->pid, standby_->heartbeat_fd, standby_->page.fd(), standby_->page.record()};
            standby_->page.release();
            output_.set_slot(started.pid, slot);
            ::close(standby_->go_fd);
            standby_.reset();
            return started;
        }
    }
    discard();

    PipeFds heartbeat = make_pipe(O_CLOEXEC, "cannot create a heartbeat pipe");
    BeatPage page = beat_page_for_child();
    OutputPipes::Pipes output = output_.open();
    const int pid = fork_child({slot, generation, heartbeat.write.get(), int(::getpid()), pool_.name, pool_.worker_type,
                                page.record()},
                               -1, output, {heartbeat.read.get(), page.fd()});
    output_.watch(pid, slot, std::move(output));
    page.dont_fork();
    const auto [beat_fd, beat] = page.release();
    return {pid, heartbeat.read.release(), beat_fd, beat};   // the write end is the worker's alone: closed here
}

void ForkOps::prepare()
{
    if (!use_standby_ || standby_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < standby_retry_at_) return;
    PipeFds heartbeat, go;
    OutputPipes::Pipes output;
    BeatPage page;
    int pid = -1;
    try {
        heartbeat = make_pipe(O_CLOEXEC, "cannot create a heartbeat pipe");
        go = make_pipe(O_CLOEXEC, "cannot create a standby pipe");
        page = beat_page_for_child();
        output = output_.open();
        pid = fork_child({0, 0, heartbeat.write.get(), int(::getpid()), pool_.name, pool_.worker_type, page.record()},
                         go.read.get(), output, {heartbeat.read.get(), go.write.get(), page.fd()});
    } catch (const std::exception& e) {
        // No standby this time: the next spawn forks
        if (!standby_failed_)
            spdlog::warn("{}no standby process: {}; trying again every second", pool_.name == default_pool ? "" : "pool " + pool_.name + ": ",
                         e.what());
        standby_failed_ = true;
        standby_retry_at_ = now + std::chrono::seconds(1);
        return;
    }
    standby_failed_ = false;
    // The child's ends (heartbeat write, go read, output writes) close here.
    output_.watch(pid, -1, std::move(output));
    page.dont_fork();
    standby_ = Standby{pid, go.write.release(), heartbeat.read.release(), std::move(page)};
}

void ForkOps::discard()
{
    if (!standby_) return;
    // It waits before any application code: nothing to drain, so it ends at once.
    ::close(standby_->go_fd);
    ::close(standby_->heartbeat_fd);
    send_signal(standby_->pid, SIGKILL);
    int status = 0;
    while (::waitpid(standby_->pid, &status, 0) < 0 && errno == EINTR) {
    }
    output_.forget(standby_->pid);
    standby_.reset();
}

bool ForkOps::send(int pid, int signal)
{
    return send_signal(pid, signal);
}

std::optional<int> ForkOps::try_reap(int pid)
{
    auto status = reap_if_exited(pid);
    // Everything it wrote is in the pipes now: logged before the manager logs its exit.
    if (status) output_.drain(pid);
    return status;
}

// An io_context's own descriptors
namespace {

// The open descriptors of the kinds an io_context makes for itself.
std::vector<int> anonymous_event_fds()
{
    std::vector<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return fds;
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        char target[64] = {};
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        if (::readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
        const std::string_view kind = target;
        if (kind == "anon_inode:[eventpoll]" || kind == "anon_inode:[eventfd]" || kind == "anon_inode:[timerfd]")
            fds.push_back(std::atoi(e->d_name));
    }
    ::closedir(dir);
    std::sort(fds.begin(), fds.end());
    return fds;
}

}  // namespace

std::vector<int> event_descriptors(boost::asio::io_context& io)
{
    const std::vector<int> before = anonymous_event_fds();
    { boost::asio::steady_timer first(io); }   // the reactor is made with the first timer
    std::vector<int> made;
    for (int fd : anonymous_event_fds())
        if (!std::binary_search(before.begin(), before.end(), fd)) made.push_back(fd);
    return made;
}

// Reaping and exec in place: the real system calls behind the seam
std::optional<int> ProcessOps::exited_child()
{
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return std::nullopt;
    return info.si_pid;
}

void ProcessOps::reap_orphan(int pid)
{
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) < 0 && errno == EINTR) {
    }
}

void ProcessOps::exec_image(const ImageExec& image)
{
    const int record = ::memfd_create("herd-handover", 0);
    if (record < 0) throw std::system_error(errno, std::generic_category(), "cannot create the hand-over record");
    bool written = true;
    for (std::size_t off = 0; off < image.record.size();) {
        const ssize_t n = ::write(record, image.record.data() + off, image.record.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            written = false;
            break;
        }
        off += std::size_t(n);
    }
    ::lseek(record, 0, SEEK_SET);
    for (int fd : image.inherited) ::fcntl(fd, F_SETFD, 0);
    ::setenv(image.record_env.c_str(), std::to_string(record).c_str(), 1);

    std::vector<std::string> args = image.argv;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Signals wait, blocked, until the new image has its handlers: a TERM in between would
    // otherwise take its default action and end the manager.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old);
    std::fflush(nullptr);
    if (written) {
        if (image.binary_fd >= 0) ::fexecve(image.binary_fd, argv.data(), environ);
        else ::execv(image.binary.c_str(), argv.data());
    }
    const int err = written ? errno : EIO;

    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::unsetenv(image.record_env.c_str());
    for (int fd : image.inherited) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::close(record);
    throw std::system_error(err, std::generic_category(), "cannot execute " + image.binary);
}

}  // namespace herd
