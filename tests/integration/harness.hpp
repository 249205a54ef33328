// A small harness for integration tests that run the real binaries (hello-http, job-worker,
// test-worker) and read their log lines.
//
// Every child runs in its own process group with stdout and stderr in one pipe, read without
// blocking into a line buffer. A child's whole process group (the manager and its workers) is
// killed with SIGKILL and reaped when its Process goes away, and also when the test process is
// stopped by its hard deadline (SIGALRM) or by meson (SIGTERM, SIGINT): nothing is left running,
// and nothing is found by name. Waits poll with a deadline; nothing sleeps blindly.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace herd::testing {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
using std::chrono::milliseconds;

/// The moment `d` from now.
inline Deadline in(Clock::duration d) { return Clock::now() + d; }

/// Milliseconds elapsed since `start`, as a double.
double ms_since(Clock::time_point start);

/// A binary's path from the environment variable `var` (set by meson), else `fallback`.
std::string binary(const char* var, const std::string& fallback = {});

/// How a child ended.
struct ExitStatus {
    int code = -1;     // exit code, or -1 when killed by a signal
    int signal = 0;    // terminating signal, or 0
    bool exited() const { return signal == 0; }
    std::string describe() const;
};

/// One log line that matched, with its index in Process::lines() and the regex groups.
struct Match {
    std::size_t index = 0;
    std::string line;
    std::vector<std::string> groups;   // groups[0] is the whole match
    Clock::time_point seen;            // when the harness read the line
    const std::string& operator[](std::size_t i) const { return groups.at(i); }
    int number(std::size_t i) const { return std::stoi(groups.at(i)); }
};

/// A child process in its own process group, its output read line by line.
class Process {
public:
    /// Start argv[0] (a path) with argv; `env` entries ("K=V") are added to the environment.
    explicit Process(std::vector<std::string> argv, std::vector<std::string> env = {});
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    /// The command line, for messages.
    std::string command() const;

    /// Read what is available (waiting up to `wait` for the first byte); returns new line count.
    std::size_t pump(milliseconds wait = milliseconds(0));
    /// Every complete line read so far (a trailing partial line once the pipe is closed).
    const std::vector<std::string>& lines();
    /// When each line was read.
    const std::vector<Clock::time_point>& line_times() const { return times_; }
    /// All output so far, one string, for failure messages.
    std::string output();

    /// The first line at index >= from that matches, waiting until the deadline (or until the
    /// output ended: every process that could write has exited).
    std::optional<Match> wait_for_line(const std::regex& re, Deadline deadline, std::size_t from = 0);
    /// Wait until `count` lines at index >= from match; returns them (fewer if the deadline passed).
    std::vector<Match> wait_for_lines(const std::regex& re, std::size_t count, Deadline deadline,
                                      std::size_t from = 0);
    /// Every line at index >= from that matches, read so far (pumps once).
    std::vector<Match> matches(const std::regex& re, std::size_t from = 0);
    std::size_t count(const std::regex& re, std::size_t from = 0) { return matches(re, from).size(); }

    /// Send `sig` to the child (the manager), not to its group.
    bool signal(int sig) const;
    /// Wait for the child to exit; reads output meanwhile. Nothing if the deadline passed.
    std::optional<ExitStatus> wait_exit(Deadline deadline);
    /// The status once it exited.
    std::optional<ExitStatus> status() const { return status_; }
    /// Kill the whole process group with SIGKILL and reap the child (idempotent).
    void kill_group();

private:
    void reap(bool block);
    void split_lines(bool eof);

    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    int out_ = -1;   // read end of the stdout+stderr pipe
    bool eof_ = false;
    bool group_killed_ = false;
    std::string partial_;
    std::vector<std::string> lines_;
    std::vector<Clock::time_point> times_;
    std::optional<ExitStatus> status_;
};

/// Run a command to completion (deadline: SIGKILL); returns its status and output lines.
struct RunResult {
    std::optional<ExitStatus> status;   // empty if it had to be killed at the deadline
    std::vector<std::string> lines;
    std::string output() const;
};
RunResult run(std::vector<std::string> argv, milliseconds timeout, std::vector<std::string> env = {});

/// An HTTP response, or the error that prevented one.
struct HttpResult {
    int status = 0;   // 0 when there was no response
    std::string body;
    std::string error;   // empty on success, else e.g. "connect: Connection refused"
    int error_code = 0;  // errno of the failure, if any
    double elapsed_ms = 0;
    bool ok() const { return error.empty() && status == 200; }
};
/// GET path over TCP, "Connection: close", with one overall timeout; `on_sent` is called once
/// the whole request was written.
HttpResult http_get(const std::string& host, int port, const std::string& path, milliseconds timeout,
                    const std::function<void()>& on_sent = {});
/// GET path over a unix stream socket.
HttpResult http_get_unix(const std::string& socket_path, const std::string& path, milliseconds timeout);

/// `count` GET requests of `path` sent at once from threads of their own, in flight until they
/// are answered; the threads are joined by results() or at destruction.
class InFlight {
public:
    InFlight(int port, const std::string& path, int count, milliseconds timeout);
    ~InFlight();
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    /// True once every request was written to its socket (before the deadline).
    bool all_sent(Deadline deadline);
    /// Every answer, in order; waits for them.
    const std::vector<HttpResult>& results();

private:
    std::atomic<int> sent_{0};
    std::vector<HttpResult> results_;
    std::vector<std::thread> threads_;
};

/// Connect and close at once; returns 0 if connected, else the errno (ETIMEDOUT on the deadline).
int try_connect(const std::string& host, int port, milliseconds timeout);

/// A listener line ("listening on 127.0.0.1:43567", "listening on [::1]:43567"): the port, or -1.
/// A TCP socket listening on 127.0.0.1 at an ephemeral port, closed by the destructor.
/// `inheritable`: without close-on-exec, to be passed to a child (socket activation).
struct LoopbackListener {
    explicit LoopbackListener(bool inheritable = false);
    ~LoopbackListener();
    LoopbackListener(const LoopbackListener&) = delete;
    LoopbackListener& operator=(const LoopbackListener&) = delete;
    int fd = -1;
    int port = -1;
};

int parse_port(const std::string& line);
/// Wait for the first "listening on HOST:PORT" line of `p`; the port, or -1 after the deadline.
int wait_for_port(Process& p, Deadline deadline, const std::string& host = "127.0.0.1");

/// A duration as the log prints it ("0.4 ms", "512 ms", "1.5 s", "90 s") in ms; -1 if not.
double parse_duration_ms(const std::string& text);

/// True while pid exists and is not a zombie.
bool pid_alive(pid_t pid);
/// True once no pid of `pids` is running (a zombie counts as gone).
bool all_gone(const std::vector<int>& pids);
/// Call pred every `step` until it is true (returns true) or the deadline passed (returns false).
bool poll_until(const std::function<bool()>& pred, Deadline deadline, milliseconds step = milliseconds(5));

/// A fresh private directory under /tmp, removed with its contents by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// The lines of a text file (empty if unreadable).
std::vector<std::string> read_lines(const std::string& path);
/// Write a text file; throws on failure.
void write_file(const std::string& path, const std::string& text);
/// True if any line of the file matches.
bool file_has_line(const std::string& path, const std::regex& re);

/// The lifecycle log lines of the contract (/tmp/herd-contract.md) as regexes; groups noted.
namespace lines {
// 1 address
inline const std::regex listening{R"(listening on (\S+)$)"};
// 1 manager pid, 2 workers, 3 generation
inline const std::regex started{R"(manager (\d+) started: (\d+) workers, generation (\d+))"};
// 1 pid, 2 slot, 3 generation
inline const std::regex spawned{R"(worker (\d+) spawned in slot (\d+) \(generation (\d+)\))"};
// 1 pid, 2 slot, 3 duration
inline const std::regex ready{R"(worker (\d+) ready in slot (\d+) after (\S+ \S+)$)"};
// 1 count
inline const std::regex all_ready{R"(all (\d+) workers ready)"};
// 1 pid, 2 silence, 3 timeout
inline const std::regex no_heartbeat{R"(worker (\d+) has no heartbeat for (\S+ \S+) \(timeout (\S+ \S+)\), retiring)"};
// 1 pid, 2 duration
inline const std::regex boot_timeout{R"(worker (\d+) not ready (\S+ \S+) after spawn \(boot timeout\), killing)"};
// 1 pid, 2 reason ("max age (3600 s)", "max requests (1000)", "scaled down")
inline const std::regex retiring{R"(worker (\d+) retiring: (.+)$)"};
// 1 pid, 2 duration
inline const std::regex graceful_kill{R"(worker (\d+) still running (\S+ \S+) after QUIT \(graceful timeout\), killing)"};
inline const std::regex term_kill{R"(worker (\d+) still running (\S+ \S+) after TERM \(kill timeout\), killing)"};
// 1 pid, 2 classification, 3 slot, 4 duration
inline const std::regex reaped{R"(worker (\d+) reaped: (.+), slot (\d+), ran (\S+ \S+)$)"};
// 1 exits, 2 window, 3 limit, 4 delay
inline const std::regex backing_off{R"(backing off: (\d+) unexpected worker exits within (\S+ \S+) \(limit (\d+)\), next spawn in (\S+ \S+)$)"};
// 1 exits, 2 window
inline const std::regex giving_up{R"(giving up: no worker ever became ready and (\d+) exited within (\S+ \S+), exit code 3)"};
// 1 manager pid, 2 code
inline const std::regex exiting{R"(manager (\d+) exiting with code (\d+))"};

// Upgrade and reload (/tmp/herd-upgrade-contract.md)
// 1 binary
inline const std::regex upgrading{R"(received USR2: upgrading to (\S+)$)"};
// 1 manager pid, 2 binary, 3 new generation, 4 workers, 5 old generation
inline const std::regex upgrade_runs{R"(upgrade: manager (\d+) now runs (\S+); generation (\d+) replaces (\d+) workers of generation (\d+))"};
// 1 generation, 2 duration, 3 workers
inline const std::regex upgrade_complete{R"(upgrade to generation (\d+) complete in (\S+ \S+): (\d+) workers ready)"};
// 1 why, 2 generation
inline const std::regex upgrade_abandoned{R"(upgrade abandoned: (.+); generation (\d+) keeps serving$)"};
// 1 generation, 2 why
inline const std::regex upgrade_going_back{R"(upgrade to generation (\d+) failed: (.+); going back to the previous binary$)"};
// 1 generation, 2 why, 3 manager pid, 4 generation still serving
inline const std::regex upgrade_rolled_back{
    R"(upgrade to generation (\d+) failed: (.+); manager (\d+) runs the previous binary again, generation (\d+) keeps serving)"};
// 1 new generation, 2 workers, 3 old generation
inline const std::regex reloading{R"(received HUP: reloading; generation (\d+) replaces (\d+) workers of generation (\d+))"};
// 1 generation, 2 duration, 3 workers
inline const std::regex reload_complete{R"(reload to generation (\d+) complete in (\S+ \S+): (\d+) workers ready)"};
// 1 message
inline const std::regex config_invalid{R"(received HUP: the configuration is invalid, keeping the running one: (.+)$)"};
// 1 signal, 2 what
inline const std::regex in_progress{R"(received (USR2|HUP): an? (upgrade|reload) is in progress, ignored)"};
}  // namespace lines

/// A regex for "worker PID <rest>" (rest is a regex).
std::regex worker_line(int pid, const std::string& rest);

/// Pids that logged "ready" and have not been reaped (the ready pool as the log tells it).
std::set<int> ready_pids(Process& p);
/// Pids that logged "spawned".
std::vector<int> spawned_pids(Process& p);
/// The generation of every worker that logged "spawned": pid -> generation.
std::map<int, int> worker_generations(Process& p);
/// Pids that logged "spawned" in generation `generation`.
std::set<int> generation_pids(Process& p, int generation);
/// Pids that logged "reaped" (at index >= from), with their classification.
std::map<int, std::string> reaped_pids(Process& p, std::size_t from = 0);
/// The fewest workers ready and not leaving at any line at index >= from, as the log tells it
/// (ready adds a worker; retiring, no heartbeat, a kill or reaped removes it).
std::size_t min_serving(Process& p, std::size_t from);

/// Fast supervision timing for tests (heartbeat 100 ms, timeout 500 ms, ...), then `extra`;
/// an option given in `extra` replaces the default (Program_options refuses an option twice).
std::vector<std::string> fast_options(const std::vector<std::string>& extra = {});
/// a followed by b.
std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b);

/// The first decimal number in text, or -1.
long first_number(const std::string& text);

// Deploying a binary, as a deploy does it

/// Copy `from` to `dest`.new (mode 0755) and rename it over `dest`: the old inode lives on
/// for whoever runs it, the path names the new file at once.
void deploy(const std::string& from, const std::string& dest);
/// Write a shell script to `dest`.new (mode 0755) and rename it over `dest`.
void deploy_script(const std::string& text, const std::string& dest);

// Watching a manager from outside

/// A server binary copied into a fresh directory and run from there, so that a test can replace
/// it on disk (deploy) and upgrade to it (USR2) without touching the build tree.
class Deployment {
public:
    /// Copy `binary` to DIR/app.
    explicit Deployment(const std::string& binary);
    Deployment(const Deployment&) = delete;
    Deployment& operator=(const Deployment&) = delete;

    /// Start DIR/app with `args`, then "--pid-file DIR/app.pid" (before a `--`: exec mode's
    /// command follows it); `env` as for Process.
    Process& start(const std::vector<std::string>& args, std::vector<std::string> env = {});
    /// Wait for the 127.0.0.1 port and "all N workers ready": empty, or what went wrong.
    std::string wait_ready(unsigned workers, Deadline deadline);

    const TempDir& dir() const { return dir_; }
    const std::string& app() const { return app_; }
    const std::string& pid_file() const { return pid_file_; }
    Process& process() { return *process_; }
    pid_t pid() const { return process_ ? process_->pid() : -1; }
    int port() const { return port_; }

private:
    TempDir dir_;
    std::string app_;
    std::string pid_file_;
    std::unique_ptr<Process> process_;
    int port_ = -1;
};

/// A child process as /proc shows it.
struct Child {
    int pid = 0;
    char state = 0;      // 'R', 'S', 'Z', ...
    std::string title;   // argv[0] as ps shows it ("app: standby")
};
/// The children of `parent` (scanning /proc).
std::vector<Child> children_of(pid_t parent);
/// Number of open descriptors of pid (/proc/PID/fd), or -1.
int open_fds(pid_t pid);
/// Number of open sockets of pid, or -1.
int open_sockets(pid_t pid);
/// VmRSS of pid in kB (/proc/PID/status), or -1.
long vm_rss_kb(pid_t pid);
/// Time pid has spent on a CPU so far, in seconds (/proc/PID/schedstat, in nanoseconds: clock
/// ticks of /proc/PID/stat say 0 for a process that ran a few ms), or -1 once it is gone.
double cpu_seconds(pid_t pid);

/// Reads a pid file every 200 us on a thread, until stopped, and counts every sample whose
/// content is not `expected` (missing, empty, partial or another pid).
class PidFileWatch {
public:
    PidFileWatch(std::string path, pid_t expected);
    ~PidFileWatch();
    PidFileWatch(const PidFileWatch&) = delete;
    PidFileWatch& operator=(const PidFileWatch&) = delete;
    /// Stop sampling (idempotent).
    void stop();
    std::uint64_t samples() const { return samples_.load(); }
    std::uint64_t mismatches() const { return mismatches_.load(); }
    /// What the first wrong sample read, for messages.
    std::string first_mismatch() const;

private:
    std::string path_;
    std::string expected_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> samples_{0};
    std::atomic<std::uint64_t> mismatches_{0};
    mutable std::mutex mutex_;
    std::string first_mismatch_;
    std::thread thread_;
};

/// A connection to a manager's control socket (--control): request lines out, answer lines in.
class ControlClient {
public:
    /// Connect to `path`; a read waits at most `timeout`.
    explicit ControlClient(const std::string& path, milliseconds timeout = milliseconds(5000));
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;
    /// errno of the connect, 0 when connected.
    int error() const { return error_; }
    /// Send `bytes` as they are and read one answer line (without "\n"); "EOF" if the
    /// connection closed first, "send failed" if it could not be sent.
    std::string ask(const std::string& bytes);
    /// The next line (without "\n"), or "EOF".
    std::string read_line();

private:
    int fd_ = -1;
    int error_ = 0;
    std::string buffer_;
};

/// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
class NotifySocket {
public:
    /// Bound at `path`.
    explicit NotifySocket(std::string path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    const std::string& path() const { return path_; }
    /// The next datagram, waiting until the deadline.
    std::optional<std::string> receive(Deadline deadline);
    /// Datagrams until one contains `needle` (returned last), or nothing after the deadline;
    /// every datagram read meanwhile is appended to `seen`.
    std::optional<std::string> wait_for(const std::string& needle, Deadline deadline, std::vector<std::string>& seen);

private:
    std::string path_;
    int fd_ = -1;
};

// Load

/// A bounded HTTP/1.1 keep-alive load: `connections` threads, each on its own connection,
/// sending GET `path` back to back until stopped, until `duration` passed or `max_requests`
/// were sent. A response with "Connection: close" is honoured (the next request opens a new
/// connection); everything else that is not a 2xx response is counted as a failure. Nothing is
/// retried. Each connection pauses between requests: 32 client threads sending back to back
/// would starve the workers of CPU on a small machine (heartbeats late, workers retired).
struct LoadOptions {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/pid";
    unsigned connections = 32;
    std::chrono::microseconds pause{2'000};
    milliseconds duration{30'000};
    std::uint64_t max_requests = 10'000'000;
    milliseconds request_timeout{5'000};
};

/// When a worker pid (the first number of a response body) answered.
struct PidSeen {
    std::uint64_t count = 0;
    Clock::time_point first_sent{};   // the earliest request it answered was sent then
    Clock::time_point last_sent{};    // the latest one
};

struct LoadStats {
    std::uint64_t ok = 0;               // 2xx responses
    std::uint64_t non_2xx = 0;
    std::uint64_t connect_errors = 0;   // refused, reset or timed out while connecting
    std::uint64_t write_errors = 0;     // the request could not be sent
    std::uint64_t read_errors = 0;      // reset, or closed before a whole response
    std::uint64_t timeouts = 0;         // no whole response within request_timeout
    std::uint64_t connections = 0;      // connections opened
    std::uint64_t closed_by_server = 0; // responses with "Connection: close"
    double max_latency_ms = 0;
    double total_latency_ms = 0;
    std::vector<std::string> first_errors;   // the first few failures, described
    std::map<int, PidSeen> pids;

    std::uint64_t failed() const { return non_2xx + connect_errors + write_errors + read_errors + timeouts; }
    std::uint64_t requests() const { return ok + failed(); }
    /// One paragraph for messages.
    std::string describe() const;
    /// Pids that answered a request sent at or after `t`.
    std::set<int> pids_sent_since(Clock::time_point t) const;
};

class LoadClient {
public:
    explicit LoadClient(LoadOptions options);
    ~LoadClient();
    LoadClient(const LoadClient&) = delete;
    LoadClient& operator=(const LoadClient&) = delete;

    /// Stop sending and wait for the requests in flight (idempotent).
    void stop();
    /// A snapshot of the counts so far.
    LoadStats stats() const;
    /// Successful responses so far.
    std::uint64_t answered() const { return answered_.load(); }
    /// Wait until `more` responses were answered after this call; false at the deadline.
    bool wait_answered(std::uint64_t more, Deadline deadline) const;

private:
    struct Connection;
    void run(unsigned index);

    LoadOptions options_;
    Clock::time_point start_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> answered_{0};
    std::vector<std::unique_ptr<Connection>> connections_;
    std::vector<std::thread> threads_;
};

/// What wrk reported. Its "Socket errors" and "Non-2xx" lines appear only when not zero.
struct WrkResult {
    bool parsed = false;   // the "requests in" line was found
    std::uint64_t requests = 0;
    std::uint64_t connect_errors = 0, read_errors = 0, write_errors = 0, timeouts = 0;
    std::uint64_t non_2xx = 0;
    std::uint64_t errors() const { return connect_errors + read_errors + write_errors + timeouts + non_2xx; }
};
WrkResult parse_wrk(const std::vector<std::string>& lines);

/// The running test case cannot run here: print why ("SKIPPED: <reason>") and count it. The case
/// must then end at once: HERD_SKIP does both. main.cpp exits 77 (meson's "skipped") when every
/// case that ran was skipped and none failed, so a skip-prone case runs as a meson test of its own.
void skip(const std::string& reason);
/// How many times skip() was called in this process.
std::size_t skips();

#define HERD_SKIP(reason)                     \
    do {                                      \
        ::herd::testing::skip(reason);        \
        return;                               \
    } while (0)

/// The test's hard deadline: after `limit`, every child group is killed and the test process
/// exits 124 with a message. Disarmed by the destructor. One at a time.
class HardDeadline {
public:
    explicit HardDeadline(std::chrono::seconds limit);
    ~HardDeadline();
    HardDeadline(const HardDeadline&) = delete;
    HardDeadline& operator=(const HardDeadline&) = delete;
    Deadline at() const { return at_; }

private:
    Deadline at_;
};

}  // namespace herd::testing
