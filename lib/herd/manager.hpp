// The manager: the imperative shell around the policy core. It owns the pool's state, turns
// signals, heartbeats and exits into events, asks plan() what to do and does it, one syscall
// and one log line per action. Single-threaded; it sleeps until the next event or deadline.
#pragma once

#include <herd/heartbeat.hpp>
#include <herd/hooks.hpp>
#include <herd/options.hpp>
#include <herd/policy.hpp>
#include <herd/process_ops.hpp>
#include <herd/worker.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace herd {

class Manager {
public:
    Manager(boost::asio::io_context& io, Options options, std::vector<Listener>& listeners, ProcessOps& ops,
            ManagerHooks hooks = {});
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    /// Keep the pool until shutdown; returns the manager's exit code.
    int run();
    /// In a freshly forked worker: close what only the manager may hold, restore signal defaults.
    void close_in_child();
    /// Called once, the first time the pool reaches its target of ready workers.
    void on_first_ready(std::function<void()> callback) { on_first_ready_ = std::move(callback); }
    /// Descriptors the manager keeps open that children must not inherit (closed in close_in_child).
    void keep_private(int fd) { private_fds_.push_back(fd); }

    const PoolState& state() const { return state_; }

private:
    struct Channel {
        Channel(boost::asio::io_context& io, int fd) : pipe(io, fd) {}
        boost::asio::posix::stream_descriptor pipe;
        std::array<char, 512> buffer{};
        HeartbeatDecoder decoder;
        bool warned = false;
    };

    void manage();
    void handle(const Event& event, TimePoint now);
    void execute(const Action& action, TimePoint now);
    void on_signal(int signal);
    void watch_signals();
    void spawn(int slot, unsigned generation, TimePoint now);
    void watch_heartbeats(int pid);
    void on_heartbeat_bytes(int pid, std::size_t n);
    void reap(int pid, int status);
    void reap_exited();
    void check_readiness();
    void stop_listening();
    void finish();
    WorkerEvent describe(const WorkerRecord& worker, std::string outcome = {}) const;

    boost::asio::io_context& io_;
    Options options_;
    std::vector<Listener>& listeners_;
    ProcessOps& ops_;
    ManagerHooks hooks_;
    boost::asio::signal_set signals_;
    PoolState state_;
    std::unordered_map<int, std::unique_ptr<Channel>> channels_;
    std::vector<int> private_fds_;
    std::optional<int> exit_code_;
    TimePoint started_at_{};
    TimePoint last_manage_{};
    bool pool_ready_ = false;
    std::function<void()> on_first_ready_;
    bool reaps_orphans_ = false;   // PID 1 or a subreaper: every exited child is ours to reap
};

}  // namespace herd
