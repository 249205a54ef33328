// herd::Worker: what an application subclasses. One object lives in each worker process.
//
// Lifecycle in the worker process, after the manager forked it:
//   on_start()   before the first heartbeat (the worker is "booting"; open files, warm caches)
//   (first heartbeat: the manager now counts the worker as ready)
//   run()        the main loop; call heartbeat() often and return once stopping() is true
//   on_exit(c)   last call, with run()'s exit code; then the process exits with it
// On QUIT, on_stop() is called once, from heartbeat(), stopping(), accept(), wait_readable() or the
// io_context given to attach(), never from a signal handler; stopping() turns true once on_stop() has run.
// Heartbeats stop with QUIT: a retiring worker is bounded by --graceful-timeout instead. TERM and INT end the process
// at once (their default action). A dead manager ends the worker whatever it is doing.
//
// A plain blocking loop waits in accept() or wait_readable(): they heartbeat while the worker is
// idle and return at once on QUIT, so an idle worker is not taken for a hung one and a QUIT is
// not held up by a wait for a client. Heartbeats come from these calls on the application's own
// thread, never from a thread of ours: a worker stuck in its own request handling stops them and
// is retired as hung. QUIT and USR1 are handled with SA_RESTART, so a read() or write() in the
// middle of a request goes on through them (docs/tutorial.md, "Writing a server", lists the calls that see EINTR).
//
// Threads. heartbeat(), stopping(), accept(), wait_readable() and attach() belong to the worker's
// own thread, the one run() is called on (an attached io_context runs there too): they may run
// on_stop() and reopen the logs, and a heartbeat means "this thread is not stuck", so one sent from
// a helper thread would hide a hung worker. Call them from that thread only, never from two at once.
// add_requests() and requests() may be called from any thread (an atomic counter); listeners(),
// slot(), generation(), options() and args() are read-only after on_start() and safe from any
// thread. stop_fd() may be polled from any thread; once it is readable, the worker's own thread
// calls stopping().
#pragma once

#include <herd/export.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace boost::program_options {
class variables_map;
}

namespace herd {

struct Options;

namespace detail {
class WorkerRuntime;
}

/// The address family of a listener: what a make_acceptor() or a socket of the application's needs.
enum class ListenerFamily {
    ipv4,          // TCP over IPv4: "127.0.0.1:8080", ":8080"
    ipv6,          // TCP over IPv6: "[::1]:8080"
    unix_socket,   // a unix stream socket: "unix:/run/app.sock"
};

/// A listening socket the manager bound (or adopted from systemd) and the worker inherited.
/// The worker owns its copy of fd: closing it (on QUIT, after accepting what is already
/// queued) is how the worker stops listening. The socket is shared with the manager and every
/// other worker, so it stays open until the last copy is closed.
struct Listener {
    int fd = -1;
    std::string address;   // as given: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock"
    ListenerFamily family = ListenerFamily::ipv4;
};

/// Why wait_readable() returned.
enum class Wake {
    readable,   // the descriptor is readable (or at its end, or in error: the next read says which)
    timeout,    // the timeout passed first
    stopping,   // QUIT arrived (on_stop() has run): finish up and return from run()
};

class HERD_API Worker {
public:
    Worker() = default;
    virtual ~Worker() = default;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    /// In the worker after fork, before the first heartbeat.
    virtual void on_start() {}
    /// The main loop; returns the worker's exit code. Return soon after stopping() turns true.
    virtual int run() = 0;
    /// A graceful stop was requested (QUIT): finish the current unit of work, stop accepting.
    virtual void on_stop() {}
    /// Last call in the worker process, with the exit code run() returned.
    virtual void on_exit(int /*code*/) {}

    /// Tell the manager this worker is alive: a clock read and a store into the worker's heartbeat
    /// page, with a look at its pipe once per --heartbeat-interval (call it in a tight loop).
    /// The worker's own thread only (see "Threads" above).
    void heartbeat();
    /// True once a graceful stop was requested; runs on_stop() first. The worker's own thread only.
    bool stopping() const;
    /// Count units of work (requests) done: feeds --max-requests and status. Any thread.
    void add_requests(std::uint64_t units = 1) noexcept;
    /// Units of work (requests) counted so far by add_requests(). Any thread.
    std::uint64_t requests() const noexcept;
    /// The old name of add_requests(), kept for one release.
    [[deprecated("herd::Worker::done() is now add_requests()")]] void done(std::uint64_t units = 1) noexcept
    {
        add_requests(units);
    }
    /// The listening sockets inherited from the manager, in --listen order.
    const std::vector<Listener>& listeners() const;
    /// Stable slot number 0..N-1 of this worker.
    int slot() const;
    /// Generation of this worker (1 at start, +1 with each reload or upgrade).
    unsigned generation() const;
    /// The standard options this server runs with.
    const Options& options() const;
    /// Every parsed option, the application's own included.
    const boost::program_options::variables_map& args() const;
    /// Wait until a client connects on one of listeners(), heartbeating meanwhile; the connection (a
    /// blocking, close-on-exec socket that the caller closes), or -1 once stopping: then what was already
    /// queued has been handed out and the listeners are closed. Puts the listeners in non-blocking mode.
    int accept();
    /// Wait until fd is readable or timeout passed (negative: no limit), heartbeating meanwhile;
    /// returns Wake::stopping at once, without waiting, once QUIT has arrived.
    Wake wait_readable(int fd, std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
    /// For a poll() or epoll loop of the application's own: readable from QUIT on (never read it; call
    /// stopping() then, which runs on_stop()). Such a loop calls heartbeat() at least every --heartbeat-interval.
    int stop_fd() const;
    /// Heartbeat from io's own loop (a blocked loop is noticed), call on_stop() in it on QUIT,
    /// reopen logs on USR1. The timers are removed when stopping; io.run() then ends with the app's work.
    void attach(boost::asio::io_context& io);

private:
    friend class detail::WorkerRuntime;
    detail::WorkerRuntime* runtime_ = nullptr;
};

}  // namespace herd
