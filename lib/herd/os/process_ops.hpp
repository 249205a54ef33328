// The seam between the manager and the operating system's processes: spawn, signal, reap.
// The manager talks to processes only through ProcessOps, so its shell can be tested with a
// fake, and exec mode can start programs another way than fork-mode workers. One ProcessOps
// starts the workers of one pool (PoolSetup): a manager of several pools owns one per pool.
#pragma once

#include <herd/core/names.hpp>
#include <herd/os/beat_page.hpp>
#include <herd/os/output_pipes.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd {

/// The pool a ProcessOps starts workers for.
struct PoolSetup {
    std::string name = std::string(default_pool);   // HERD_POOL; titles and log lines (names.hpp)
    std::string worker_type;                         // fork mode: the herd::Worker type to make ("": the default)
    std::function<OutputLevels()> output_levels;     // asked at each spawn; unset: stdout and stderr at info
};

/// What a new worker is told, in the worker.
struct SpawnRequest {
    int slot = 0;
    unsigned generation = 1;
    int heartbeat_fd = -1;   // write end of the worker's heartbeat pipe
    int manager_pid = 0;
    std::string_view pool;          // its pool's name
    std::string_view worker_type;   // fork mode: the herd::Worker type to make ("": the default)
    BeatRecord* beat = nullptr;     // fork mode: its heartbeat page, mapped (beat_page.hpp); none: beats on the pipe
};

/// A started worker, as the manager sees it.
struct Started {
    int pid = -1;
    int heartbeat_fd = -1;   // read end of its heartbeat pipe (close-on-exec), now the manager's
    int beat_fd = -1;               // its heartbeat page's memfd (close-on-exec), now the manager's; -1: none
    BeatRecord* beat = nullptr;     // ... and the manager's writable mapping of it
};

/// USR2's exec in place: the hand-over record goes into a memfd whose number is in the
/// environment variable `record_env`, the descriptors the next image adopts stay open across the exec, and every
/// signal stays blocked until the next image has set its own up.
struct ImageExec {
    std::string record;              // the hand-over record's text
    std::string record_env;          // names the record's descriptor in the next image
    std::vector<int> inherited;      // descriptors the next image adopts
    int binary_fd = -1;              // the binary to go back to (fexecve), or -1: `binary`
    std::string binary;
    std::vector<std::string> argv;
};

class ProcessOps {
public:
    virtual ~ProcessOps() = default;
    /// Start a worker with a heartbeat pipe of its own; throws std::system_error.
    virtual Started spawn(int slot, unsigned generation) = 0;
    /// Send a signal; false when the process is already gone.
    virtual bool send(int pid, int signal) = 0;
    /// The raw wait status of pid if it has exited (and is now reaped), else nullopt.
    virtual std::optional<int> try_reap(int pid) = 0;
    /// Get ready for the next spawn while nothing else is going on.
    virtual void prepare() {}
    /// Forget what prepare() made: the next spawn must see the manager as it is now.
    virtual void discard() {}
    /// Is pid a child that prepare() made (and that is not a worker yet)?
    virtual bool owns(int /*pid*/) const { return false; }
    /// Do the workers reopen their own log files on USR1? herd workers do. Exec mode's programs
    /// log through the manager, and USR1's default action would end one that does not handle it.
    virtual bool forwards_log_reopen() const { return true; }
    /// Descriptors held for workers beside their heartbeat pipes (each worker's output pipes), by
    /// worker pid, for USR2's hand-over; what was read from them is logged first. A worker with
    /// a pipe for stdout and one for stderr has two entries, stdout's first.
    virtual std::vector<std::pair<int, int>> hand_over() { return {}; }
    /// Take over a worker's output pipe that the previous image handed over, in hand_over()'s
    /// order (closes it by default).
    virtual void adopt_output(int pid, int slot, int fd);
    /// A child that has exited and is not reaped yet (waitid with WNOWAIT: it stays to be reaped by
    /// whoever owns it), or nullopt when none has.
    virtual std::optional<int> exited_child();
    /// Reap a child that is nobody's worker: an orphan that PID 1 or a subreaper inherited.
    virtual void reap_orphan(int pid);
    /// Replace this process's image (USR2): see ImageExec. Returns only when the exec failed,
    /// by throwing std::system_error, with every descriptor as it was.
    virtual void exec_image(const ImageExec& image);
    /// In a child forked by any pool's ForkOps: close what this one holds for its workers (their
    /// output pipes' read ends), raw, without touching the manager's epoll instance. A manager of
    /// several pools calls it for every pool's ProcessOps from ForkOps::set_child_setup.
    virtual void close_in_child() noexcept {}
};

/// fork()-based workers running a function of this program.
///
/// A child starts with its stdout and stderr on pipes to the manager (output_pipes.hpp; stdout
/// line buffered, as on a terminal; log lines of its own go on to the manager's stderr or the log
/// file, log::keep_stderr()), with every signal blocked, and dies with the manager (PR_SET_PDEATHSIG);
/// child_setup closes what only the manager may hold (raw close, never through the manager's
/// io_context, whose epoll instance the child shares), and child_main must unblock signals once
/// its own handlers are in place. The child never returns into the manager's code: it _exit()s
/// with child_main's result.
///
/// Standby: prepare() forks a child ahead of need that stops before child_main, waiting for its
/// slot and generation on a pipe. spawn() then only writes to that pipe, so a replacement starts
/// without waiting for a fork. discard() ends the standby (reload, upgrade, shutdown, log reopen).
class ForkOps : public ProcessOps {
public:
    using ChildMain = std::function<int(const SpawnRequest&)>;

    ForkOps(boost::asio::io_context& io, PoolSetup pool, ChildMain child_main, bool standby);
    ~ForkOps() override;
    /// Run in every child right after fork, before child_main.
    void set_child_setup(std::function<void()> setup) { child_setup_ = std::move(setup); }

    Started spawn(int slot, unsigned generation) override;
    bool send(int pid, int signal) override;
    std::optional<int> try_reap(int pid) override;
    void prepare() override;
    void discard() override;
    bool owns(int pid) const override { return standby_ && standby_->pid == pid; }
    std::vector<std::pair<int, int>> hand_over() override { return output_.hand_over(); }
    void adopt_output(int pid, int slot, int fd) override { output_.adopt(pid, slot, fd); }
    /// Its workers' output pipes and its standby's pipes: a child of another pool holding the
    /// standby's go pipe could hand it a slot.
    void close_in_child() noexcept override;

private:
    struct Standby {
        int pid = -1;
        int go_fd = -1;          // write end: the activation record goes here
        int heartbeat_fd = -1;   // read end of its heartbeat pipe
        BeatPage page;           // its heartbeat page, if one could be made
    };
    int fork_child(SpawnRequest request, int go_fd, OutputPipes::Pipes& output, std::initializer_list<int> close_in_child);

    PoolSetup pool_;
    OutputPipes output_;
    ChildMain child_main_;
    std::function<void()> child_setup_;
    bool use_standby_;
    std::optional<Standby> standby_;
    // A standby that could not be made (out of processes or descriptors) is tried again a second
    // later, not at every wake-up of the manager, and the failure is logged once until one is made.
    std::chrono::steady_clock::time_point standby_retry_at_{};
    bool standby_failed_ = false;
};

/// kill() that retries EINTR; false when the process is gone (ESRCH).
bool send_signal(int pid, int signal);
/// waitpid(pid, WNOHANG) that retries EINTR.
std::optional<int> reap_if_exited(int pid);

/// The descriptors a fresh `io` works with itself (its epoll instance, the eventfd that wakes it,
/// its timerfd), made now. A forked child must close them (child_setup, close_in_child): a worker
/// holding them could re-arm the manager's timer, wake it at will, or steal its events and add
/// events of its own choosing to its epoll instance, even after switching to --user.
std::vector<int> event_descriptors(boost::asio::io_context& io);

}  // namespace herd
