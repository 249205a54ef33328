// herd::Worker: what an application subclasses. One object lives in each worker process.
//
// Lifecycle in the worker process, after the manager forked it:
//   on_start()   before the first heartbeat (the worker is "booting"; open files, warm caches)
//   (first heartbeat: the manager now counts the worker as ready)
//   run()        the main loop; call heartbeat() often and return once stopping() is true
//   on_exit(c)   last call, with run()'s exit code; then the process exits with it
// On QUIT, on_stop() is called once, from heartbeat(), stopping() or the io_context given to
// attach(), never from a signal handler; stopping() turns true once on_stop() has run.
// Heartbeats stop with QUIT: a retiring worker is bounded by --graceful-timeout instead. TERM and INT end the process
// at once (their default action). A dead manager ends the worker whatever it is doing.
#pragma once

#include <herd/export.hpp>

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

/// A listening socket the manager bound (or adopted from systemd) and the worker inherited.
/// The worker owns its copy of fd: closing it (on QUIT, after accepting what is already
/// queued) is how the worker stops listening. The socket is shared with the manager and every
/// other worker, so it stays open until the last copy is closed.
struct Listener {
    int fd = -1;
    std::string address;   // as given: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock"
    int family = 0;        // AF_INET, AF_INET6 or AF_UNIX
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

    /// Tell the manager this worker is alive; cheap, rate limited inside (call it in a tight loop).
    void heartbeat();
    /// True once a graceful stop was requested.
    bool stopping() const;
    /// Report units of work done (feeds --max-requests and status).
    void done(std::uint64_t units = 1) noexcept;
    /// Units of work reported so far.
    std::uint64_t requests() const noexcept;
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
    /// Heartbeat from io's own loop (a blocked loop is noticed), call on_stop() in it on QUIT,
    /// reopen logs on USR1. The timers are removed when stopping; io.run() then ends with the app's work.
    void attach(boost::asio::io_context& io);

private:
    friend class detail::WorkerRuntime;
    detail::WorkerRuntime* runtime_ = nullptr;
};

}  // namespace herd
