// USR2's pre-flight check (detail/preflight.hpp).
#include <herd/manager/preflight.hpp>

#include <herd/os/process_ops.hpp>
#include <herd/os/time_slice.hpp>

#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <cerrno>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace herd::detail {

namespace {

// How the pre-flight check starts: without the manager's blocked signals (they are read from a
// signalfd; a program must not inherit that mask) and with the kernel's default time slice (not
// the manager's long one), at the manager's own priority: beside workers that keep every core busy
// a niced check starves (at nice 19 one needing 200 ms of CPU got about 1 % of a core and missed its
// 10 s bound; at nice 10 it took 4 s), and an upgrade must go through under load, when a fix is most
// wanted. The check is one short process; serving workers lose at most its share while it runs. In a process group of its own: a check that hangs is killed with
// whatever it started (a wrapper script's children hold its output open).
struct PreflightSetup {
    boost::process::v2::error_code on_exec_setup(boost::process::v2::posix::default_launcher&,
                                                 const boost::process::v2::filesystem::path&, const char* const*)
    {
        ::setpgid(0, 0);
        sigset_t none;
        ::sigemptyset(&none);
        ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
        default_time_slice();
        return {};
    }
};

}  // namespace

Preflight::Preflight(boost::asio::io_context& io) : err_(io), timer_(io) {}

// Pending handlers see operation_aborted and touch nothing of this object.
Preflight::~Preflight() = default;

int Preflight::pid() const
{
    return process_ ? process_->id() : -1;
}

void Preflight::start(const std::string& binary, const std::vector<std::string>& args, Finished finished)
{
    namespace bp2 = boost::process::v2;
    // Launched from a context of its own, then watched from the manager's: where the kernel refuses
    // a pidfd (pidfd_open: before Linux 5.3, an old seccomp profile, valgrind 3.19) Boost.Process
    // throws after the fork and leaves a failed registration in the context it launched from,
    // which would make the next launch's notify_fork throw in its child.
    boost::asio::io_context launch_io;
    bp2::posix::default_launcher launcher;
    const pid_t manager = ::getpid();
    bp2::error_code ec;
    try {
        auto launched = launcher(launch_io.get_executor(), ec, binary, args,
                                 bp2::process_stdio{nullptr, nullptr, err_}, PreflightSetup{});
        if (ec) throw boost::system::system_error(ec, "cannot start the check");
        launched.detach();
        process_ = std::make_unique<bp2::process>(err_.get_executor(), launcher.pid);
    } catch (...) {
        // Thrown in the child, between its fork and its exec: nothing unwinds into the manager's code there.
        if (::getpid() != manager) ::_exit(127);
        // A check that started but cannot be watched is ended and reaped here.
        if (!ec && launcher.pid > 0) {
            ::kill(-launcher.pid, SIGKILL);
            while (::waitpid(launcher.pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
        throw;
    }
    finished_ = std::move(finished);
    read_output();
    process_->async_wait([this](const boost::system::error_code& ec, int code) {
        if (ec == boost::asio::error::operation_aborted) return;
        exit_code_ = ec ? 255 : code;
        finish_if_done();
    });
    timer_.expires_after(timeout);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        timed_out_ = true;
        ::kill(-process_->id(), SIGKILL);
        boost::system::error_code ignored;
        process_->terminate(ignored);
    });
}

void Preflight::read_output()
{
    err_.async_read_some(boost::asio::buffer(buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (output_.size() < 4096) output_.append(buffer_.data(), n);
        if (ec) {
            output_done_ = true;
            finish_if_done();
            return;
        }
        read_output();
    });
}

void Preflight::finish_if_done()
{
    if (!exit_code_ || !output_done_) return;
    timer_.cancel();
    const PreflightOutcome outcome{*exit_code_, timed_out_, output_};
    // The caller may destroy this object: nothing of it is touched after the call.
    const Finished finished = std::move(finished_);
    if (finished) finished(outcome);
}

void Preflight::abandon()
{
    if (process_) ::kill(-process_->id(), SIGKILL);   // with what it started
    finished_ = nullptr;
}

}  // namespace herd::detail
