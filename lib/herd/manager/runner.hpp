// One pool's processes as the manager sees them: the runner spawns workers through the process
// seam, reads each worker's heartbeat channel (at a bounded cost) and reaps through the seam.
// A fork-mode worker beats into its heartbeat page (os/beat_page.hpp) and writes to its pipe only
// what needs the manager at once (its first heartbeat, its request limit reached): the runner
// reads the pages when asked (sample()), when a deadline comes, not when a worker writes them.
// What it learns it keeps as Events, in the order it learnt them, for the manager to take; it
// never calls into the manager, so the arrows point one way: the shell asks, the runner answers.
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/heartbeat.hpp>
#include <herd/core/policy.hpp>
#include <herd/os/beat_page.hpp>
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
    /// Go on reading a channel the previous image handed over (USR2), and the worker's heartbeat
    /// page if it has one (page_fd >= 0).
    void adopt_channel(int pid, int fd, int page_fd = -1);
    /// Tell a worker its request limit (0: none), through its page: it says on its pipe when it got there.
    void set_request_limit(int pid, std::uint64_t limit);
    /// The heartbeats in the pages since the last sample: a HeartbeatSeen carrying the stamp (and
    /// the page's request count) for each worker whose stamp moved on. A load per worker.
    void sample(std::vector<Event>& out);
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
    /// Each worker's heartbeat page (pid, memfd), for USR2's hand-over.
    std::vector<std::pair<int, int>> pages() const;
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
        BeatPage page;                     // none: the worker beats on the pipe (exec mode, an older image's)
        std::uint64_t stamp = 0;           // the page's stamp at the last sample
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
