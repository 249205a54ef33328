// Every worker's stdout and stderr into the log, in fork mode and exec mode alike.
//
// A worker starts with its fds 1 and 2 on pipes whose read ends the manager holds; the manager
// reads them when they are readable (a bounded share per wake-up, so a chatty worker does not
// hold up heartbeats and signals) and logs each line in the worker's name:
//   [web[2] 1240] [info] <a line written to stdout>      at the pool's --stdout-level
//   [web[2] 1240] [warn] <a line written to stderr>      at the pool's --stderr-level
// (names.hpp for "web[2]"; output.hpp splits the lines and cuts long ones; printable() makes
// each one safe for the log). With both levels the same, one pipe takes both streams, so their
// lines stay in the order they were written. A pool's read ends are all in one epoll instance of
// their own (one epoll_ctl per pipe), and only that instance is in the manager's io_context: a
// spawn costs no per-descriptor state or registration there. A pipe is read until EOF, or until its worker is
// reaped: then what is in it is read (bounded), an unfinished last line logged, and it is closed
// (a child the worker left behind that writes later gets EPIPE, and costs the manager nothing).
//
// USR2: hand_over() gives every pipe's read end to the next image, which adopt()s them: per
// worker its stdout pipe (or its only one) first, then its stderr pipe.
#pragma once

#include <herd/core/output.hpp>
#include <herd/os/fd.hpp>
#include <herd/os/log.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace herd {

/// The levels a pool's workers' output is logged at: names as --log-level takes them.
struct OutputLevels {
    std::string stdout_level = "info";
    std::string stderr_level = "info";
};

class OutputPipes {
public:
    /// A worker's pipes, from before its start until watch() takes the manager's ends.
    struct Pipes {
        UniqueFd out_read, out_write;   // stdout, and stderr too when err_read is empty
        UniqueFd err_read, err_write;   // stderr, when its level differs from stdout's
        log::Level out_level = log::Level::info;
        log::Level err_level = log::Level::info;
        /// The child's ends: what becomes its fds 1 and 2.
        int stdout_fd() const { return out_write.get(); }
        int stderr_fd() const { return err_write ? err_write.get() : out_write.get(); }
    };

    /// `pool` names the workers in log lines; `levels` is asked at each open() (a reload may
    /// change them; unset: info for both).
    OutputPipes(boost::asio::io_context& io, std::string pool, std::function<OutputLevels()> levels);
    ~OutputPipes();
    OutputPipes(const OutputPipes&) = delete;
    OutputPipes& operator=(const OutputPipes&) = delete;

    /// New pipes for a worker about to start (close-on-exec; the manager's ends non-blocking);
    /// throws std::system_error, or std::invalid_argument for an unknown level.
    Pipes open();
    /// The worker runs: read and log what it writes. `pipes` is spent (the child's ends close).
    void watch(int pid, int slot, Pipes pipes);
    /// A worker started before its slot was known (a standby) now has one.
    void set_slot(int pid, int slot);
    /// The worker was reaped: log what it wrote (bounded) and close its pipes.
    void drain(int pid);
    /// Drop a worker's pipes without reading them (a standby that never ran any code of the application).
    void forget(int pid);
    /// In a forked child: close every read end held here (raw close: the child shares the
    /// manager's epoll instance and must not touch it). Async-signal-safe.
    void close_in_child() noexcept;
    /// USR2: the lines read so far logged, every read end as (pid, fd), stdout's first.
    std::vector<std::pair<int, int>> hand_over();
    /// Take over a pipe the previous image handed over: a worker's first is its stdout (or its
    /// only one, logged at the stdout level), the second its stderr.
    void adopt(int pid, int slot, int fd);

private:
    struct Stream;
    struct Worker;
    enum class Read { drained, more, closed };   // read until EAGAIN, stopped at the bound, EOF
    void watch_stream(int pid, bool err);
    void close_stream(Worker& w, bool err);
    void arm();
    void on_readable();
    Read read_stream(int pid, bool err, std::size_t max_reads);
    void log_lines(const Worker& w, const Stream& s, const std::vector<OutputLine>& lines) const;
    void erase_if_done(int pid);

    boost::asio::io_context& io_;
    std::string pool_;
    std::function<OutputLevels()> levels_;
    // Every read end of this pool's workers, level-triggered, keyed by pid and stream; the
    // io_context waits on this one descriptor.
    boost::asio::posix::stream_descriptor epoll_;
    bool armed_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);   // for a continuation posted to io_
    std::unordered_map<int, std::unique_ptr<Worker>> workers_;   // by pid
    // Every read goes here and is split into lines at once: one buffer for all streams, not one
    // each (memory per worker, and pages a fork would share and then copy).
    std::array<char, 4096> buffer_{};
    bool closed_in_child_ = false;   // in a child: its copies are closed (a second close could hit a reused number)
};

}  // namespace herd
