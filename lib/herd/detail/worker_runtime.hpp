// The child side of a worker: what runs in the worker process around the application's
// herd::Worker. Internal; applications see only herd::Worker.
#pragma once

#include <herd/options.hpp>
#include <herd/worker.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

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
    };

    WorkerRuntime(Worker& worker, Setup setup);
    ~WorkerRuntime();

    /// The worker's whole life: handlers, on_start, first heartbeat, run, on_exit; returns the exit code.
    int run();
    /// Send a heartbeat if one is due (or now, when forced); acts on QUIT and USR1 first.
    void heartbeat(bool force = false);
    /// True once QUIT arrived; on_stop() has run by the time this returns true.
    bool stopping();
    void done(std::uint64_t units) noexcept { requests_.fetch_add(units, std::memory_order_relaxed); }
    std::uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }
    void attach(boost::asio::io_context& io);
    const Setup& setup() const { return setup_; }

private:
    struct Attached;
    void act_on_signals();
    void send_heartbeat();

    Worker& worker_;
    Setup setup_;
    std::atomic<std::uint64_t> requests_{0};
    std::chrono::steady_clock::time_point next_beat_{};
    bool stop_seen_ = false;
    std::unique_ptr<Attached> attached_;
};

}  // namespace herd::detail
