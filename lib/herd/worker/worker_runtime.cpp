// The worker's runtime (worker_runtime.hpp): its signals (a flag and a byte, the self-pipe trick),
// its heartbeats, its waits and accepts, and attach() to the application's io_context.
#include <herd/worker/worker_runtime.hpp>

#include <herd/core/heartbeat.hpp>
#include <herd/os/log.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace herd {

namespace {

// The only code of ours that runs in a signal handler: a flag and a byte (the self-pipe trick).
volatile std::sig_atomic_t quit_requested = 0;
volatile std::sig_atomic_t reopen_requested = 0;
int wake_write_fd = -1;
int wake_read_fd = -1;
// Readable from the first QUIT on, for good: the counter is never read (stop_fd(), the waits).
int stop_event_fd = -1;

extern "C" void on_worker_signal(int signal)
{
    const int saved = errno;
    if (signal == SIGQUIT) quit_requested = 1;
    if (signal == SIGUSR1) reopen_requested = 1;
    if (signal == SIGQUIT && stop_event_fd >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(stop_event_fd, &one, sizeof one);
    }
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
    // Without it a wait could miss a QUIT that came just before it began.
    stop_event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_event_fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create the worker's stop descriptor");
    // SA_RESTART: a read() or write() in the middle of a request goes on through QUIT and USR1, so
    // a request is finished, not cut short; the waits of accept() and wait_readable() end on QUIT
    // through stop_event_fd. Calls the kernel never restarts (poll, epoll_wait, nanosleep, socket
    // calls under SO_RCVTIMEO or SO_SNDTIMEO, see signal(7)) fail with EINTR.
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
    // Die with the manager. The kernel clears PR_SET_PDEATHSIG when a process changes its user or
    // group, so after --user or --group what the fork set is gone: set it again. A manager that
    // died before this shows on the heartbeat pipe (nobody reads it any more).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd channel{setup_.heartbeat_fd, 0, 0};
    if (::poll(&channel, 1, 0) == 1 && (channel.revents & POLLERR)) manager_gone();
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
    const bool due = now >= next_beat_;
    if (due || force) next_beat_ = now + setup_.options->heartbeat_interval;   // the waits wake for the next one
    if (BeatRecord* page = setup_.beat) {
        // The manager reads this when a deadline comes: a store, the clock read through the vDSO.
        const std::uint64_t count = requests();
        page->requests.store(count, std::memory_order_relaxed);
        page->stamp_ns.store(std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()),
                             std::memory_order_release);
        if (force) send_heartbeat();
        else check_limit(*page, count);   // a limit the manager wrote after the count got there
        // Once per interval, what a write on the pipe would have told: is anyone still reading it?
        // (A worker without PR_SET_PDEATHSIG learns so that its manager died.) It wakes nobody.
        if (due && !force) {
            pollfd channel{setup_.heartbeat_fd, 0, 0};
            if (::poll(&channel, 1, 0) == 1 && (channel.revents & (POLLERR | POLLHUP))) manager_gone();
        }
        return;
    }
    if (force || due) send_heartbeat();
}

void WorkerRuntime::done(std::uint64_t units) noexcept
{
    const std::uint64_t count = requests_.fetch_add(units, std::memory_order_relaxed) + units;
    if (BeatRecord* page = setup_.beat) {
        page->requests.store(count, std::memory_order_relaxed);
        check_limit(*page, count);
    }
}

// Once: the record that makes the manager retire this worker now, not at a deadline.
void WorkerRuntime::check_limit(BeatRecord& page, std::uint64_t count) noexcept
{
    const std::uint64_t limit = page.request_limit.load(std::memory_order_relaxed);
    if (!limit || count < limit || limit_told_.exchange(true, std::memory_order_relaxed)) return;
    send_heartbeat();
}

void WorkerRuntime::send_heartbeat()
{
    char line[max_record];
    const int n = std::snprintf(line, sizeof line, "requests=%llu\n", (unsigned long long)requests());
    for (;;) {
        if (::write(setup_.heartbeat_fd, line, std::size_t(n)) >= 0) return;
        if (errno == EINTR) continue;
        if (errno == EPIPE) manager_gone();
        return;   // EAGAIN: the manager is busy; the next beat will do
    }
}

void WorkerRuntime::manager_gone()
{
    // Nobody reads our heartbeats any more: the manager is gone, and so are we.
    spdlog::warn("manager is gone, worker {} exiting", ::getpid());
    std::fflush(nullptr);
    ::_exit(0);
}

// Waiting: the application's descriptors beside QUIT, USR1 and the manager's end of the heartbeat
// pipe, with a heartbeat whenever one is due. The heartbeats come from the application's own
// thread, and only while it waits here: a worker stuck in a request sends none and is retired as
// hung, as it should be. A thread of ours beating on its own would hide exactly that.
Wake WorkerRuntime::wait(std::vector<pollfd>& fds, std::optional<Clock::time_point> until)
{
    const std::size_t app = fds.size();
    fds.push_back({stop_event_fd, POLLIN, 0});
    fds.push_back({wake_read_fd, POLLIN, 0});
    fds.push_back({setup_.heartbeat_fd, 0, 0});   // POLLERR once nobody reads it: the manager is gone
    for (;;) {
        heartbeat();   // acts on QUIT and USR1 first
        if (stop_seen_) return Wake::stopping;
        const auto now = Clock::now();
        const auto next = until ? std::min(*until, next_beat_) : next_beat_;
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
        for (pollfd& p : fds) p.revents = 0;
        if (::poll(fds.data(), fds.size(), int(std::max<decltype(ms)>(ms, 0))) < 0) {
            if (errno == EINTR) continue;   // a signal: the loop looks at it
            throw std::system_error(errno, std::generic_category(), "poll");
        }
        if (fds[app + 2].revents & (POLLERR | POLLHUP)) manager_gone();
        if (fds[app + 1].revents & POLLIN) {
            std::array<char, 64> bytes;
            while (::read(wake_read_fd, bytes.data(), bytes.size()) > 0) {
            }
        }
        for (std::size_t i = 0; i < app; ++i)
            if (fds[i].revents) return Wake::readable;
        if (until && Clock::now() >= *until) return Wake::timeout;
    }
}

Wake WorkerRuntime::wait_readable(int fd, std::chrono::milliseconds timeout)
{
    std::vector<pollfd> fds{{fd, POLLIN, 0}};
    return wait(fds, timeout.count() < 0 ? std::nullopt : std::optional(Clock::now() + timeout));
}

int WorkerRuntime::stop_fd() const
{
    return stop_event_fd;
}

// A client queued on one listener, or -1 when none is (failed: it could not be taken, retry later).
int WorkerRuntime::take_client(Listener& listener, bool& failed)
{
    for (;;) {
        const int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        // Gone before we took it, or a signal: the next one may be there.
        if (errno == ECONNABORTED || errno == EPROTO || errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        // Out of descriptors or memory, say: the caller waits a little instead of spinning.
        spdlog::warn("worker {} cannot accept on {}: {}; retrying in 100 ms", ::getpid(), listener.address,
                     std::strerror(errno));
        failed = true;
        return -1;
    }
}

int WorkerRuntime::accept()
{
    auto& listeners = setup_.listeners;
    if (!accepting_) {
        // The listeners are shared with every worker: another one may take the client this one
        // was woken for, and a blocking accept would then wait without heartbeats, deaf to QUIT.
        accepting_ = true;
        for (const Listener& l : listeners)
            if (l.fd >= 0) ::fcntl(l.fd, F_SETFL, ::fcntl(l.fd, F_GETFL) | O_NONBLOCK);
        if (listeners.empty()) spdlog::warn("worker {} has no --listen address: accept() waits for QUIT", ::getpid());
    }
    std::vector<pollfd> fds;
    for (;;) {
        // After QUIT: the clients that were queued, then no more
        if (stopping()) {
            // Here, not as soon as QUIT is seen: a client taken from the backlog must be handed
            // out, and only a caller of accept() will take it. A loop that ends on stopping()
            // instead leaves the queued clients in the backlog, for the workers still listening.
            stop_listening();
            if (queued_.empty()) return -1;
            const int fd = queued_.front();
            queued_.pop_front();
            return fd;
        }

        // A client that is waiting, from the listeners in turn
        bool failed = false;
        for (std::size_t i = 0; i < listeners.size(); ++i) {
            const std::size_t at = (next_listener_ + i) % listeners.size();
            if (listeners[at].fd < 0) continue;
            const int fd = take_client(listeners[at], failed);
            if (fd < 0) continue;
            next_listener_ = at + 1;
            return fd;
        }

        // Wait for one, heartbeating
        fds.clear();
        if (!failed)
            for (const Listener& l : listeners) fds.push_back({l.fd, POLLIN, 0});
        wait(fds, failed ? std::optional(Clock::now() + std::chrono::milliseconds(100)) : std::nullopt);
    }
}

void WorkerRuntime::stop_listening()
{
    // Take what is already queued, then close at once: a client that comes later is refused
    // (or served by a worker still listening) instead of waiting in a backlog nobody serves.
    auto open = [](const Listener& l) { return l.fd >= 0; };
    if (std::none_of(setup_.listeners.begin(), setup_.listeners.end(), open)) return;
    for (Listener& l : setup_.listeners) {
        if (l.fd < 0) continue;
        bool failed = false;
        for (int fd; (fd = take_client(l, failed)) >= 0;) queued_.push_back(fd);
        ::close(l.fd);
        l.fd = -1;
    }
    spdlog::debug("worker {} stopped listening; {} queued clients left to serve", ::getpid(), queued_.size());
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

}  // namespace herd
