// The child side of a worker: what runs in the worker process around the application's
// herd::Worker. Internal; applications see only herd::Worker.
#pragma once

#include <herd/config/options.hpp>
#include <herd/os/beat_page.hpp>
#include <herd/worker/worker.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

struct pollfd;

namespace herd::detail {

class WorkerRuntime {
public:
    struct Setup {
        int slot = 0;
        unsigned generation = 1;
        int heartbeat_fd = -1;
        const Options* options = nullptr;
        const boost::program_options::variables_map* args = nullptr;
        std::vector<Listener> listeners;
        BeatRecord* beat = nullptr;   // its heartbeat page; none: every heartbeat goes on the pipe
    };

    WorkerRuntime(Worker& worker, Setup setup);
    ~WorkerRuntime();

    /// The worker's whole life: handlers, on_start, first heartbeat, run, on_exit; returns the exit code.
    int run();
    /// Acts on QUIT and USR1, then beats: into the page (a store of the time and the request count),
    /// and on the pipe when forced (the first heartbeat), when the request limit in the page is
    /// reached, or, without a page, when one is due.
    void heartbeat(bool force = false);
    /// True once QUIT arrived; on_stop() has run by the time this returns true.
    bool stopping();
    /// Counts units of work; with a page, the count goes there too, and reaching the request limit
    /// in the page is said on the pipe at once (the manager retires the worker without waiting).
    void done(std::uint64_t units) noexcept;
    std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }
    void attach(boost::asio::io_context& io);
    /// The next client on any listener, heartbeating while none comes; -1 once stopping.
    int accept();
    /// Wait for fd to be readable, heartbeating meanwhile; stopping at once after QUIT.
    Wake wait_readable(int fd, std::chrono::milliseconds timeout);
    /// Readable from QUIT on.
    int stop_fd() const;
    const Setup& setup() const { return setup_; }

private:
    struct Attached;
    using Clock = std::chrono::steady_clock;
    void act_on_signals();
    void send_heartbeat();
    void check_limit(BeatRecord& page, std::uint64_t count) noexcept;
    [[noreturn]] void manager_gone();
    Wake wait(std::vector<pollfd>& fds, std::optional<Clock::time_point> until);
    int take_client(Listener& listener, bool& failed);
    void stop_listening();

    Worker& worker_;
    Setup setup_;
    std::atomic<std::uint64_t> requests_{0};
    std::chrono::steady_clock::time_point next_beat_{};
    bool stop_seen_ = false;
    std::atomic<bool> limit_told_{false};   // the pipe said that the request limit was reached
    std::unique_ptr<Attached> attached_;
    bool accepting_ = false;          // accept() owns the listeners: non-blocking, closed on QUIT
    std::size_t next_listener_ = 0;   // accept() takes from the listeners in turn
    std::deque<int> queued_;          // clients that were queued when QUIT came, not handed out yet
};

}  // namespace herd::detail
