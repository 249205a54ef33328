#include <herd/worker.hpp>

#include <herd/detail/worker_runtime.hpp>
#include <herd/heartbeat.hpp>
#include <herd/log.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>

namespace herd {

namespace {

// The only code of ours that runs in a signal handler: a flag and a byte (the self-pipe trick).
volatile std::sig_atomic_t quit_requested = 0;
volatile std::sig_atomic_t reopen_requested = 0;
int wake_write_fd = -1;
int wake_read_fd = -1;

extern "C" void on_worker_signal(int signal)
{
    const int saved = errno;
    if (signal == SIGQUIT) quit_requested = 1;
    if (signal == SIGUSR1) reopen_requested = 1;
    if (wake_write_fd >= 0) [[maybe_unused]] auto n = ::write(wake_write_fd, "!", 1);
    errno = saved;
}

void install_worker_signals()
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
        wake_read_fd = fds[0];
        wake_write_fd = fds[1];
    }
    struct sigaction sa {};
    sa.sa_handler = on_worker_signal;
    sa.sa_flags = SA_RESTART;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGQUIT, &sa, nullptr);
    ::sigaction(SIGUSR1, &sa, nullptr);
    // TERM and INT keep their default action: exit now. EPIPE is handled where it happens.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU, SIGCHLD}) ::sigaction(s, &dfl, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    // The child was born with every signal blocked (see ForkOps); its handlers are in place now.
    sigset_t none;
    ::sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

namespace detail {

// What attach() adds to the application's io_context.
struct WorkerRuntime::Attached {
    explicit Attached(boost::asio::io_context& io) : wake(io), timer(io) {}
    boost::asio::posix::stream_descriptor wake;
    boost::asio::steady_timer timer;
    std::array<char, 16> buffer{};
};

WorkerRuntime::WorkerRuntime(Worker& worker, Setup setup) : worker_(worker), setup_(std::move(setup))
{
    worker_.runtime_ = this;
}

WorkerRuntime::~WorkerRuntime()
{
    worker_.runtime_ = nullptr;
}

int WorkerRuntime::run()
{
    install_worker_signals();
    worker_.on_start();
    heartbeat(true);   // the first heartbeat: this worker is ready
    const int code = worker_.run();
    worker_.on_exit(code);
    return code;
}

bool WorkerRuntime::stopping()
{
    // on_stop() runs before anyone learns that we are stopping, so a loop that tests
    // stopping() never skips it.
    if (quit_requested && !stop_seen_) act_on_signals();
    return stop_seen_;
}

void WorkerRuntime::act_on_signals()
{
    if (quit_requested && !stop_seen_) {
        stop_seen_ = true;
        spdlog::info("worker {} stopping gracefully (QUIT)", ::getpid());
        if (attached_) attached_->timer.cancel();
        worker_.on_stop();
    }
    if (reopen_requested) {
        reopen_requested = 0;
        log::reopen();
    }
}

void WorkerRuntime::heartbeat(bool force)
{
    act_on_signals();
    const auto now = std::chrono::steady_clock::now();
    if (!force && now < next_beat_) return;
    next_beat_ = now + setup_.options->heartbeat_interval;
    send_heartbeat();
}

void WorkerRuntime::send_heartbeat()
{
    char line[max_record];
    const int n = std::snprintf(line, sizeof line, "requests=%llu\n", (unsigned long long)requests());
    for (;;) {
        if (::write(setup_.heartbeat_fd, line, std::size_t(n)) >= 0) return;
        if (errno == EINTR) continue;
        if (errno == EPIPE) {
            // Nobody reads our heartbeats any more: the manager is gone, and so are we.
            spdlog::warn("manager is gone, worker {} exiting", ::getpid());
            std::fflush(nullptr);
            ::_exit(0);
        }
        return;   // EAGAIN: the manager is busy; the next beat will do
    }
}

void WorkerRuntime::attach(boost::asio::io_context& io)
{
    attached_ = std::make_unique<Attached>(io);
    if (wake_read_fd >= 0) attached_->wake.assign(::dup(wake_read_fd));

    // Signals arrive as bytes on the wake pipe
    auto wait_wake = [this](auto& self) -> void {
        attached_->wake.async_read_some(boost::asio::buffer(attached_->buffer),
                                        [this, self](const boost::system::error_code& ec, std::size_t) {
                                            if (ec) return;
                                            act_on_signals();
                                            if (!stop_seen_) self(self);
                                            else attached_->wake.close();
                                        });
    };
    wait_wake(wait_wake);

    // Heartbeats from inside the loop: a blocked loop stops them
    auto beat = [this](auto& self) -> void {
        if (stop_seen_) return;
        attached_->timer.expires_after(setup_.options->heartbeat_interval);
        attached_->timer.async_wait([this, self](const boost::system::error_code& ec) {
            if (ec) return;
            heartbeat();
            self(self);
        });
    };
    beat(beat);
}

}  // namespace detail

// herd::Worker: thin forwarding to the runtime of this process
void Worker::heartbeat()
{
    if (runtime_) runtime_->heartbeat();
}

bool Worker::stopping() const
{
    return runtime_ && runtime_->stopping();
}

void Worker::done(std::uint64_t units) noexcept
{
    if (runtime_) runtime_->done(units);
}

std::uint64_t Worker::requests() const noexcept
{
    return runtime_ ? runtime_->requests() : 0;
}

const std::vector<Listener>& Worker::listeners() const
{
    static const std::vector<Listener> none;
    return runtime_ ? runtime_->setup().listeners : none;
}

int Worker::slot() const
{
    return runtime_ ? runtime_->setup().slot : -1;
}

unsigned Worker::generation() const
{
    return runtime_ ? runtime_->setup().generation : 0;
}

const Options& Worker::options() const
{
    if (!runtime_) throw std::logic_error("herd::Worker::options() outside a worker process");
    return *runtime_->setup().options;
}

const boost::program_options::variables_map& Worker::args() const
{
    if (!runtime_ || !runtime_->setup().args) throw std::logic_error("herd::Worker::args() outside a worker process");
    return *runtime_->setup().args;
}

void Worker::attach(boost::asio::io_context& io)
{
    if (runtime_) runtime_->attach(io);
}

}  // namespace herd
