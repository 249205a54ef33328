// One pool's processes as the manager sees them: the runner spawns workers through the process
// seam, reads each worker's heartbeat channel (at a bounded cost) and reaps through the seam.
// What it learns it keeps as Events, in the order it learnt them, for the manager to take; it
// never calls into the manager, so the arrows point one way: the shell asks, the runner answers.
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/heartbeat.hpp>
#include <herd/core/policy.hpp>
#include <herd/os/process_ops.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace herd {

/// A worker's heartbeat channel reached its end: it exited or closed its end. Whether it
/// exited is for the manager to ask (reap()), after it read the signals that may explain it.
struct ChannelClosed {
    int pid;
};

/// What a runner learnt: an event for the core, or a closed channel.
using Notice = std::variant<Event, ChannelClosed>;

class Runner {
public:
    /// `options` is the pool's: read at each new channel, so a reload's new values apply to new workers.
    Runner(boost::asio::io_context& io, ProcessOps& ops, const Options& options);
    ~Runner();
    /// Where the pool's options are now (the supervisor's pools moved).
    void use(const Options& options) { options_ = &options; }
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    /// Start a worker in `slot`: Spawned, or SpawnFailed with why in `error`.
    Event spawn(int slot, unsigned generation, std::string& error);
    /// Go on reading a channel the previous image handed over (USR2).
    void adopt_channel(int pid, int fd);
    /// The raw wait status of pid once it has exited (and is now reaped).
    std::optional<int> reap(int pid) { return ops_.try_reap(pid); }
    /// Forget a worker: it was reaped; its channel closes.
    void forget(int pid) { channels_.erase(pid); }

    /// What the channels said since the last call, oldest first.
    std::vector<Notice> take() { return std::exchange(notices_, {}); }
    bool has_news() const { return !notices_.empty(); }

    /// The first malformed record a worker sent, printable; empty if its channel is gone.
    std::string bad_record_sample(int pid) const;
    /// Each worker's channel (pid, read end), for USR2's hand-over.
    std::vector<std::pair<int, int>> channels() const;
    /// In a freshly forked child: close every channel (raw close; the epoll is shared).
    void close_in_child();
    /// Close every channel (the manager is exiting).
    void clear() { channels_.clear(); }

private:
    struct Channel {
        Channel(boost::asio::io_context& io, int fd, const Options& options)
            : pipe(io, fd), pause(io), budget(channel_budget(options.heartbeat_timeout)) {}
        boost::asio::posix::stream_descriptor pipe;
        boost::asio::steady_timer pause;   // a channel that spent its read budget waits here
        std::array<char, read_chunk> buffer{};
        HeartbeatDecoder decoder;
        ReadBudget budget;
        std::string sample;                // the first malformed record, printable
        TimePoint next_warning{};          // malformed records are logged at most once a minute
        bool flood_logged = false;
    };

    void watch(int pid);
    void on_bytes(int pid, std::size_t n);
    void pace(int pid, std::size_t n);

    boost::asio::io_context& io_;
    ProcessOps& ops_;
    const Options* options_;
    std::unordered_map<int, std::unique_ptr<Channel>> channels_;
    std::vector<Notice> notices_;
};

}  // namespace herd
