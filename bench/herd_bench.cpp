// herd-bench: how fast the manager spawns, replaces, notices and upgrades, and what it costs,
// each time beside the raw fork + pipe round trip measured in the same run, and against the floor
// that applies to it (a respawn by the standby: a reap and a pipe round trip, no fork).
//
//   herd-bench [--check] [PART...]
//
// TEST_WORKER=path/to/test-worker HELLO_HTTP=path/to/hello-http are set by `meson test`; the
// paths of the build are the defaults. PART: spawn, respawn, hang, load, upgrade, control, pools.
// --check exits 1 when a target is missed (without parts: the quick ones).
//
// Every figure comes from running test-worker or hello-http and reading its log lines from a
// pipe; the time a line is read is the time it happened (the manager logs synchronously). The
// upgrade figures put hello-http under a steady keep-alive HTTP load from the bench's own client
// threads, on 127.0.0.1 only. Bounded in time: every wait has a deadline, and every server's
// process group is killed when its step ends.
#include "harness.hpp"
#include "pools_bench.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

#ifndef HERD_TEST_WORKER
#define HERD_TEST_WORKER ""
#endif

#ifndef HERD_HELLO_HTTP
#define HERD_HELLO_HTTP ""
#endif

std::string test_worker() { return binary("TEST_WORKER", HERD_TEST_WORKER); }
std::string hello_http() { return binary("HELLO_HTTP", HERD_HELLO_HTTP); }

// Percentiles

struct Stats {
    std::size_t n = 0;
    double p50 = NAN;
    double p99 = NAN;
    double max = NAN;
};

Stats stats(std::vector<double> v)
{
    Stats s;
    s.n = v.size();
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
        return v[std::min(i, v.size() - 1)];
    };
    s.p50 = at(0.50);
    s.p99 = at(0.99);
    s.max = v.back();
    return s;
}

double ms_between(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Raw fork + pipe round trip: the child writes one byte, the parent reads it.

Stats raw_fork_pipe(int samples)
{
    constexpr int warm_up = 20;   // not counted: first forks fault in page tables
    std::vector<double> ms;
    for (int i = 0; i < samples + warm_up; ++i) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) continue;
        const auto t0 = Clock::now();
        const pid_t pid = ::fork();
        if (pid == 0) {
            const char byte = 'x';
            (void)!::write(fds[1], &byte, 1);
            ::_exit(0);
        }
        char byte;
        ssize_t n;
        do {
            n = ::read(fds[0], &byte, 1);
        } while (n < 0 && errno == EINTR);
        const auto t1 = Clock::now();
        ::waitpid(pid, nullptr, 0);
        ::close(fds[0]);
        ::close(fds[1]);
        if (n == 1 && i >= warm_up) ms.push_back(ms_between(t0, t1));
    }
    return stats(ms);
}

// The floor of a respawn that the pre-forked standby serves (no fork): reap a child killed with
// SIGKILL, then a pipe round trip to a process that exists already (the standby woken with its
// slot, answering with its first heartbeat). Also the pipe round trip alone: the floor of a
// request answered by a process that is already running (control status, scale +1 by the standby).
struct Floors {
    Stats reap_pipe;
    Stats pipe;
};

// A child that answers each byte on `in` with one on `out` until `in` closes.
pid_t echo_child(int in, int out, std::initializer_list<int> close_in_child)
{
    const pid_t pid = ::fork();
    if (pid == 0) {
        for (int fd : close_in_child) ::close(fd);
        char byte;
        while (::read(in, &byte, 1) == 1)
            if (::write(out, &byte, 1) != 1) break;
        ::_exit(0);
    }
    return pid;
}

// One byte to `out`, one back from `in`.
bool round_trip(int out, int in)
{
    const char byte = 'x';
    if (::write(out, &byte, 1) != 1) return false;
    char back;
    ssize_t n;
    do {
        n = ::read(in, &back, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1;
}

Floors measure_floors(int samples)
{
    constexpr int warm_up = 20;
    Floors f;
    std::vector<double> reap_ms, pipe_ms;
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) return f;
    const pid_t echo = echo_child(to[0], from[1], {to[1], from[0]});
    for (int i = 0; i < samples + warm_up; ++i) {
        // A victim that is running (it said so), and the echo child waiting in read()
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) break;
        const pid_t victim = ::fork();
        if (victim == 0) {
            const char byte = 'r';
            (void)!::write(ready[1], &byte, 1);
            for (;;) ::pause();
        }
        ::close(ready[1]);
        char byte;
        (void)!::read(ready[0], &byte, 1);
        ::close(ready[0]);

        const auto t0 = Clock::now();
        const bool ok = round_trip(to[1], from[0]);
        const auto t1 = Clock::now();
        ::kill(victim, SIGKILL);
        ::waitpid(victim, nullptr, 0);
        const bool ok2 = round_trip(to[1], from[0]);
        const auto t2 = Clock::now();
        if (i >= warm_up && ok && ok2) {
            pipe_ms.push_back(ms_between(t0, t1));
            reap_ms.push_back(ms_between(t1, t2));
        }
    }
    ::close(to[1]);
    ::close(from[0]);
    ::close(to[0]);
    ::close(from[1]);
    ::waitpid(echo, nullptr, 0);
    f.reap_pipe = stats(reap_ms);
    f.pipe = stats(pipe_ms);
    return f;
}

// /proc readings of one process

long rss_kb(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// utime + stime in clock ticks
long cpu_ticks(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(in, text);
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream fields(text.substr(paren + 2));
    std::string f;
    long utime = 0, stime = 0;
    // fields after the command: state(3) ... utime(14) stime(15)
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::stol(f);
        if (i == 15) stime = std::stol(f);
    }
    return utime + stime;
}

// Keep reading a server's output for `d` (the manager must never block on a full pipe).
void drain_for(Process& p, Clock::duration d)
{
    const auto until = Clock::now() + d;
    while (Clock::now() < until) p.pump(milliseconds(50));
}

std::vector<std::string> server_args(unsigned workers, std::vector<std::string> extra)
{
    std::vector<std::string> args{test_worker(), "-w", std::to_string(workers), "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// Spawn to ready

struct SpawnResult {
    std::vector<double> ms;   // from starting the manager until the Nth ready line
    long rss_kb = -1;          // manager RSS once all were ready (and 1 s of heartbeats later)
    std::string error;
};

SpawnResult spawn_to_ready(unsigned workers, int runs, bool measure_rss)
{
    SpawnResult r;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = Clock::now();
        Process p(server_args(workers, {"--heartbeat-interval", "100ms", "--heartbeat-timeout", "5s",
                                        "--boot-timeout", "20s", "--restart-limit", "1000/1s"}));
        const auto ready = p.wait_for_lines(lines::ready, workers, in(20s));
        if (ready.size() < workers) {
            r.error = std::to_string(ready.size()) + " of " + std::to_string(workers) + " ready after 20 s";
            return r;
        }
        r.ms.push_back(ms_between(t0, ready.back().seen));
        if (measure_rss && i == runs - 1) {
            drain_for(p, 1s);
            r.rss_kb = rss_kb(p.pid());
        }
    }
    return r;
}

// Respawn after kill -9

struct RespawnResult {
    std::vector<double> ms;
    std::string error;
};

RespawnResult respawn_latency(unsigned workers, int kills)
{
    RespawnResult r;
    Process p(server_args(workers, {"--heartbeat-interval", "100ms", "--heartbeat-timeout", "5s",
                                    "--restart-limit", "1000000/1s"}));
    const auto ready = p.wait_for_lines(lines::ready, workers, in(20s));
    if (ready.size() < workers) {
        r.error = "pool not ready";
        return r;
    }
    std::vector<int> pool;
    for (const auto& m : ready) pool.push_back(m.number(1));

    for (int i = 0; i < kills; ++i) {
        const std::size_t index = static_cast<std::size_t>(i) % pool.size();
        const int victim = pool[index];
        const std::size_t mark = p.lines().size();
        const auto t0 = Clock::now();
        if (::kill(victim, SIGKILL) != 0) {
            r.error = "kill failed";
            return r;
        }
        const auto next = p.wait_for_line(lines::ready, in(3s), mark);
        if (!next) {
            r.error = "no replacement 3 s after kill " + std::to_string(i);
            return r;
        }
        r.ms.push_back(ms_between(t0, next->seen));
        pool[index] = next->number(1);
    }
    return r;
}

// Hang detection overshoot

struct HangResult {
    std::vector<double> log_ms;    // X - Y from "has no heartbeat for X (timeout Y)"
    std::vector<double> wall_ms;   // no-heartbeat line read - "stops heartbeating" line read - Y
    std::string error;
};

HangResult hang_overshoot(unsigned workers)
{
    HangResult r;
    // test-worker ticks every 10 ms; with a 10 ms interval every tick sends a heartbeat, and its
    // "stops heartbeating" line comes right after the last one.
    Process p(server_args(workers, {"--mode", "hang-after=400", "--heartbeat-interval", "10ms",
                                    "--heartbeat-timeout", "200ms", "--graceful-timeout", "100ms",
                                    "--restart-limit", "1000000/1s"}));
    const auto found = p.wait_for_lines(lines::no_heartbeat, workers, in(15s));
    if (found.size() < workers) {
        r.error = std::to_string(found.size()) + " of " + std::to_string(workers) + " hangs detected";
        return r;
    }
    const std::regex stops(R"(test worker (\d+) stops heartbeating)");
    std::map<int, Clock::time_point> stopped;
    for (const auto& m : p.matches(stops)) stopped.emplace(m.number(1), m.seen);
    for (const auto& m : found) {
        const double silence = parse_duration_ms(m.groups[2]);
        const double timeout = parse_duration_ms(m.groups[3]);
        r.log_ms.push_back(silence - timeout);
        if (const auto s = stopped.find(m.number(1)); s != stopped.end())
            r.wall_ms.push_back(ms_between(s->second, m.seen) - timeout);
    }
    return r;
}

// Manager CPU and RSS under heartbeats

struct LoadResult {
    double cpu_percent = NAN;
    long rss_kb = -1;
    double ready_ms = NAN;
    std::string error;
};

LoadResult manager_load(unsigned workers, Clock::duration window)
{
    LoadResult r;
    const auto t0 = Clock::now();
    Process p(server_args(workers, {"--heartbeat-interval", "100ms", "--heartbeat-timeout", "10s",
                                    "--boot-timeout", "60s", "--restart-limit", "1000/1s"}));
    const auto ready = p.wait_for_lines(lines::ready, workers, in(60s));
    if (ready.size() < workers) {
        r.error = std::to_string(ready.size()) + " of " + std::to_string(workers) + " ready after 60 s";
        return r;
    }
    r.ready_ms = ms_between(t0, ready.back().seen);
    drain_for(p, 1s);   // let every worker settle into its heartbeat rhythm

    const long ticks0 = cpu_ticks(p.pid());
    const auto w0 = Clock::now();
    drain_for(p, window);
    const long ticks1 = cpu_ticks(p.pid());
    const double wall_s = ms_between(w0, Clock::now()) / 1000.0;
    r.cpu_percent = 100.0 * static_cast<double>(ticks1 - ticks0) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / wall_s;
    r.rss_kb = rss_kb(p.pid());
    return r;
}

// Keep-alive HTTP load: one thread per connection, one request every `interval`

// One request: when it was due, how long it took from then, and whether it got its 200.
struct Sample {
    Clock::time_point due;
    float ms;
    bool ok;
};

class Load {
public:
    Load(int port, unsigned connections, Clock::duration interval) : port_(port), interval_(interval)
    {
        per_thread_.resize(connections);
        const auto start = Clock::now() + 20ms;
        for (unsigned i = 0; i < connections; ++i) {
            // Spread the connections over one interval, so the load is steady, not bursts.
            const auto first = start + interval * i / connections;
            threads_.emplace_back([this, i, first] { client(per_thread_[i], first); });
        }
    }
    ~Load() { stop(); }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    void stop()
    {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    /// Every sample, once stopped.
    std::vector<Sample> samples() const
    {
        std::vector<Sample> all;
        for (const auto& t : per_thread_) all.insert(all.end(), t.samples.begin(), t.samples.end());
        return all;
    }
    /// Why requests failed, with counts, once stopped.
    std::map<std::string, int> errors() const
    {
        std::map<std::string, int> all;
        for (const auto& t : per_thread_)
            for (const auto& [why, n] : t.errors) all[why] += n;
        return all;
    }

private:
    struct PerThread {
        std::vector<Sample> samples;
        std::map<std::string, int> errors;
    };

    int connect_to() const
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        const timeval timeout{2, 0};   // a response later than this is an error, not a latency
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc;
        do {
            rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            const int err = errno;
            ::close(fd);
            return -err;
        }
        return fd;
    }

    // One request on fd; "" on a 200, else why not. `keep` is false when the server closes.
    static std::string exchange(int fd, bool& keep)
    {
        static constexpr std::string_view request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        keep = false;
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
            return std::string("send: ") + std::strerror(errno);
        std::string data;
        char buf[4096];
        std::size_t header_end = std::string::npos, length = 0;
        for (;;) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno == EAGAIN ? "no response within 2 s" : std::string("recv: ") + std::strerror(errno);
            if (n == 0) return data.empty() ? "closed without a response" : "closed in the middle of a response";
            data.append(buf, static_cast<std::size_t>(n));
            if (header_end == std::string::npos) {
                header_end = data.find("\r\n\r\n");
                if (header_end == std::string::npos) continue;
                std::string head = data.substr(0, header_end);
                std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
                const auto cl = head.find("\r\ncontent-length:");
                if (cl == std::string::npos) return "response without Content-Length";
                length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
                keep = head.find("\r\nconnection: close") == std::string::npos;
                if (head.rfind("http/1.1 200 ", 0) != 0) return "status " + head.substr(9, 3);
            }
            if (data.size() >= header_end + 4 + length) return {};
        }
    }

    void client(PerThread& out, Clock::time_point due)
    {
        out.samples.reserve(16384);
        int fd = -1;
        while (!stop_) {
            std::this_thread::sleep_until(due);
            // Latency counts from when the request was due, so a stall is not hidden by
            // requests that were never sent (coordinated omission).
            std::string why;
            bool keep = false;
            if (fd < 0) {
                fd = connect_to();
                if (fd < 0) why = std::string("connect: ") + std::strerror(-fd);
            }
            if (fd >= 0) why = exchange(fd, keep);
            const auto done = Clock::now();
            out.samples.push_back({due, static_cast<float>(ms_between(due, done)), why.empty()});
            if (!why.empty()) ++out.errors[why];
            if (fd >= 0 && (!keep || !why.empty())) {
                ::close(fd);
                fd = -1;
            }
            due += interval_;
        }
        if (fd >= 0) ::close(fd);
    }

    int port_;
    Clock::duration interval_;
    std::atomic<bool> stop_{false};
    std::vector<PerThread> per_thread_;
    std::vector<std::thread> threads_;
};

// Upgrade (USR2) and reload (HUP) under load

struct RolloutRun {
    std::vector<double> complete_ms;      // signal sent -> "... complete in" line read
    std::vector<double> exec_ms;          // USR2 sent -> the new image's "upgrade: manager P now runs" line
    std::vector<std::pair<Clock::time_point, Clock::time_point>> windows;   // signal sent .. complete
    std::vector<std::pair<Clock::time_point, Clock::time_point>> seconds;   // signal sent .. one second later
};

/// Request latencies (ms) of one kind of stretch, and how many of them failed.
struct Sampled {
    std::vector<double> ms;
    std::size_t errors = 0;
};

struct UpgradeResult {
    RolloutRun upgrade, reload;
    // Request latency (ms) from when each was due: in the quiet seconds, in the second after each
    // signal, and (strictly) from each signal to its complete line.
    Sampled quiet, upgrade_second, upgrade_strict, reload_second, reload_strict;
    std::size_t other_errors = 0;
    std::map<std::string, int> why;
    std::string error;
};

UpgradeResult upgrade_under_load(unsigned workers, unsigned connections, Clock::duration interval, int rounds)
{
    UpgradeResult r;
    // USR2 execs the path the manager was started from: a copy in a private directory, replaced
    // by a rename before each upgrade the way a deploy does it.
    TempDir dir;
    const std::string path = dir / "hello-http";
    namespace fs = std::filesystem;
    auto deploy = [&] {
        fs::copy_file(hello_http(), path + ".new", fs::copy_options::overwrite_existing);
        fs::rename(path + ".new", path);
    };
    deploy();
    Process p({path, "-l", "127.0.0.1:0", "-w", std::to_string(workers), "--graceful-timeout", "5s",
               "--upgrade-timeout", "10s", "--pid-file", dir / "hello-http.pid"});
    const int port = wait_for_port(p, in(10s));
    if (port < 0 || p.wait_for_lines(lines::ready, workers, in(10s)).size() < workers) {
        r.error = "hello-http not ready on 127.0.0.1";
        return r;
    }

    const std::regex exec_line(R"(upgrade: manager (\d+) now runs )");
    const std::regex ended(R"((upgrade|reload) to generation (\d+) (complete in|failed)|upgrade abandoned|configuration is invalid)");

    Load load(port, connections, interval);
    drain_for(p, 500ms);   // connections open, workers warm

    // Each round: a quiet second, then the signal and the second after it. An upgrade may take up
    // to a second (the budget it is held to), and what it costs clients, reconnects included, lands
    // in that second. The strict window, signal to complete line, is reported beside it.
    std::vector<std::pair<Clock::time_point, Clock::time_point>> quiet;
    auto quiet_second = [&] {
        drain_for(p, 300ms);   // the clients of the last round have reconnected
        const auto q0 = Clock::now();
        drain_for(p, 1s);
        quiet.emplace_back(q0, Clock::now());
    };
    // Quiet and rollout alternate the same way for every round and kind, so the machine's drift
    // hits both sides of the comparison alike.
    auto round = [&](int sig, RolloutRun& run) -> bool {
        quiet_second();
        if (sig == SIGUSR2) deploy();
        const std::size_t mark = p.lines().size();
        const auto t0 = Clock::now();
        p.signal(sig);
        const auto end = p.wait_for_line(ended, in(15s), mark);
        if (!end || end->groups[3] != "complete in") {
            r.error = std::string(sig == SIGUSR2 ? "USR2" : "HUP") + ": " + (end ? end->line : "no outcome within 15 s");
            return false;
        }
        run.complete_ms.push_back(ms_between(t0, end->seen));
        run.windows.emplace_back(t0, end->seen);
        drain_for(p, t0 + 1s - Clock::now());
        run.seconds.emplace_back(t0, std::max(t0 + 1s, end->seen));
        if (sig == SIGUSR2) {
            const auto exec = p.matches(exec_line, mark);
            if (exec.empty() || exec.front().number(1) != p.pid()) {
                r.error = "USR2: the manager's pid changed or the new image said nothing";
                return false;
            }
            run.exec_ms.push_back(ms_between(t0, exec.front().seen));
        }
        return true;
    };
    bool ok = true;
    for (int i = 0; ok && i < rounds; ++i) ok = round(SIGUSR2, r.upgrade);
    for (int i = 0; ok && i < rounds; ++i) ok = round(SIGHUP, r.reload);
    load.stop();

    // Sort every request into the stretches it was due in
    auto inside = [](const auto& windows, Clock::time_point t) {
        return std::any_of(windows.begin(), windows.end(), [&](const auto& w) { return t >= w.first && t < w.second; });
    };
    for (const Sample& s : load.samples()) {
        bool counted = false;
        auto add = [&](Sampled& into) {
            into.ms.push_back(s.ms);
            into.errors += s.ok ? 0 : 1;
            counted = true;
        };
        if (inside(quiet, s.due)) add(r.quiet);
        if (inside(r.upgrade.seconds, s.due)) add(r.upgrade_second);
        if (inside(r.upgrade.windows, s.due)) add(r.upgrade_strict);
        if (inside(r.reload.seconds, s.due)) add(r.reload_second);
        if (inside(r.reload.windows, s.due)) add(r.reload_strict);
        if (!counted && !s.ok) ++r.other_errors;
    }
    r.why = load.errors();
    return r;
}

// Control socket: a status round trip, and a scale answered when the pool has settled

struct ControlResult {
    std::vector<double> status_ms;      // status request to its answer, one connection
    std::vector<double> scale_up_ms;    // scale +1 to its answer: fork, first heartbeat, answer
    std::vector<double> scale_down_ms;  // scale -1 to its answer: QUIT, exit, reap, answer
    std::string error;
};

ControlResult control_latency(unsigned workers, int rounds)
{
    ControlResult r;
    TempDir dir;
    const std::string socket = dir / "control.sock";
    Process p(server_args(workers, {"--heartbeat-interval", "100ms", "--heartbeat-timeout", "5s",
                                    "--control", socket}));
    if (p.wait_for_lines(lines::ready, workers, in(20s)).size() < workers) {
        r.error = "pool not ready";
        return r;
    }
    ControlClient c(socket);
    if (c.error()) {
        r.error = std::string("cannot connect to the control socket: ") + std::strerror(c.error());
        return r;
    }
    auto timed = [&](const std::string& request, std::vector<double>& into) {
        const auto t0 = Clock::now();
        const std::string answer = c.ask(request);
        into.push_back(ms_between(t0, Clock::now()));
        if (answer.rfind("{\"ok\":true", 0) != 0 && r.error.empty()) r.error = request + " answered " + answer;
    };
    for (int i = 0; i < rounds * 10; ++i) timed("{\"command\":\"status\"}\n", r.status_ms);
    for (int i = 0; i < rounds && r.error.empty(); ++i) {
        timed("{\"command\":\"scale\",\"delta\":1}\n", r.scale_up_ms);
        timed("{\"command\":\"scale\",\"delta\":-1}\n", r.scale_down_ms);
        p.pump();   // the manager must never block on a full log pipe
    }
    return r;
}

// Table

// What a figure is measured against: the least the same work can cost on this machine, measured
// in this run, so that a target holds on a slow machine as on a fast one.
enum class Floor {
    none,        // not a time, or nothing to compare with
    fork_pipe,   // a fork and a pipe round trip: a new worker
    reap_pipe,   // a reap and a pipe round trip: a worker replaced by the standby (no fork)
    pipe,        // a pipe round trip: a process that runs already answers
    interval,    // the heartbeat interval of the run (10 ms): how late a hang can be seen
};

struct FloorValues {
    Stats fork_pipe;
    Floors floors;
    double interval_ms = 10;

    const char* name(Floor f) const
    {
        switch (f) {
        case Floor::fork_pipe: return "fork+pipe";
        case Floor::reap_pipe: return "reap+pipe";
        case Floor::pipe: return "pipe";
        case Floor::interval: return "interval";
        case Floor::none: break;
        }
        return "";
    }
    double value(Floor f, bool p99) const
    {
        const auto pick = [&](const Stats& s) { return p99 ? s.p99 : s.p50; };
        switch (f) {
        case Floor::fork_pipe: return pick(fork_pipe);
        case Floor::reap_pipe: return pick(floors.reap_pipe);
        case Floor::pipe: return pick(floors.pipe);
        case Floor::interval: return interval_ms;
        case Floor::none: break;
        }
        return NAN;
    }
};

struct Row {
    std::string figure;
    double value = NAN;
    std::string unit;              // "ms", "MB", "%", "x" (a ratio), "" (a count)
    Floor floor = Floor::none;
    bool p99 = false;              // measured against the floor's p99 (else its p50)
    double scale = 1;              // the floor times this (64 workers: 64 forks)
    double max_ratio = NAN;        // target: value <= max_ratio x floor
    double max_value = NAN;        // target in the figure's own unit (memory, errors, the contract's budgets)
};

struct Verdict {
    std::string target;
    std::optional<bool> met;   // nothing: no target, or no value (an error says why)
    double ratio = NAN;
};

Verdict judge(const Row& row, const FloorValues& f)
{
    Verdict v;
    const double floor = f.value(row.floor, row.p99) * row.scale;
    if (row.floor != Floor::none && floor > 0) v.ratio = row.value / floor;
    const bool have = !std::isnan(row.value);
    if (!std::isnan(row.max_ratio)) {
        v.target = "<= " + std::to_string(int(row.max_ratio)) + "x " + f.name(row.floor);
        if (row.floor != Floor::interval) v.target += row.p99 ? " p99" : " p50";
        if (row.scale != 1) v.target += " x" + std::to_string(int(row.scale));
        if (have && !std::isnan(v.ratio)) v.met = v.ratio <= row.max_ratio;
    } else if (!std::isnan(row.max_value)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "<= %g%s%s", row.max_value, row.unit.empty() ? "" : " ", row.unit.c_str());
        v.target = buf;
        if (have) v.met = row.value <= row.max_value;
    }
    return v;
}

std::string fmt(double v, int decimals)
{
    if (std::isnan(v)) return "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// The table; returns how many targets were missed.
int print_table(const FloorValues& f, const std::vector<Row>& rows)
{
    std::printf("\nfloors (this run): fork + pipe round trip p50 %s ms, p99 %s ms (%zu samples); "
                "reap + pipe round trip p50 %s ms, p99 %s ms; pipe round trip p50 %s ms, p99 %s ms (%zu samples)\n\n",
                fmt(f.fork_pipe.p50, 3).c_str(), fmt(f.fork_pipe.p99, 3).c_str(), f.fork_pipe.n,
                fmt(f.floors.reap_pipe.p50, 3).c_str(), fmt(f.floors.reap_pipe.p99, 3).c_str(),
                fmt(f.floors.pipe.p50, 3).c_str(), fmt(f.floors.pipe.p99, 3).c_str(), f.floors.pipe.n);
    std::printf("%-46s %11s %10s %21s %8s   %-26s %s\n", "figure", "value", "fork+pipe", "floor", "ratio", "target", "");
    std::printf("%s\n", std::string(136, '-').c_str());
    int missed = 0;
    for (const auto& row : rows) {
        const int decimals = row.unit == "ms" || row.unit == "%" || row.unit == "x" ? 2 : row.unit.empty() ? 0 : 1;
        const std::string value = fmt(row.value, decimals) + (row.unit.empty() ? "" : " " + row.unit);
        const bool timed = row.unit == "ms";
        const std::string raw = timed ? fmt(f.fork_pipe.p50, 3) + " ms" : "-";
        std::string floor = "-";
        if (row.floor != Floor::none)
            floor = std::string(f.name(row.floor)) + (row.p99 ? " p99 " : " ") + fmt(f.value(row.floor, row.p99) * row.scale, 3) + " ms";
        const Verdict v = judge(row, f);
        const std::string ratio = std::isnan(v.ratio) ? "-" : fmt(v.ratio, 1) + "x";
        const char* verdict = !v.met ? "" : (*v.met ? "ok" : "MISSED");
        if (v.met && !*v.met) ++missed;
        std::printf("%-46s %11s %10s %21s %8s   %-26s %s\n", row.figure.c_str(), value.c_str(), raw.c_str(), floor.c_str(),
                    ratio.c_str(), v.target.c_str(), verdict);
    }
    return missed;
}

}  // namespace

// ASan keeps shadow memory and quarantines freed blocks: resident memory says nothing there.
// And in a sanitizer or unoptimized build the manager's own code runs 10-50x slower while the
// system calls of the floors do not: its times are the build's, not herd's (--check skips).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

int main(int argc, char** argv)
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // herd-bench [--check] [spawn|respawn|hang|load|upgrade|control ...]: only those parts; without
    // parts all of them, or with --check the quick ones (spawn, respawn, hang, control, pools).
    // --check: exit 1 when a target is missed, not only when a step failed.
    bool check = false;
    std::vector<std::string_view> only;
    for (int i = 1; i < argc; ++i) {
        const std::string_view part = argv[i];
        if (part == "--check") {
            check = true;
            continue;
        }
        if (part != "spawn" && part != "respawn" && part != "hang" && part != "load" && part != "upgrade" &&
            part != "control" && part != "pools") {
            std::fprintf(stderr, "herd-bench: unknown part '%.*s' (spawn, respawn, hang, load, upgrade, control, pools; --check)\n",
                         int(part.size()), part.data());
            return 2;
        }
        only.push_back(part);
    }
    if (check && only.empty()) only = {"spawn", "respawn", "hang", "control", "pools"};
    auto wanted = [&](std::string_view part) { return only.empty() || std::find(only.begin(), only.end(), part) != only.end(); };
    HardDeadline guard(std::chrono::seconds(280));
    const auto bench_start = Clock::now();
    std::printf("herd-bench: test-worker at %s, hello-http at %s\n", test_worker().c_str(), hello_http().c_str());

    FloorValues floors;
    floors.fork_pipe = raw_fork_pipe(300);
    floors.floors = measure_floors(300);
    std::vector<Row> rows;
    std::vector<std::string> errors;
    // A time against its floor; `max_ratio` NAN: shown, no target.
    auto ms_row = [&](std::string figure, double value, Floor floor, bool p99 = false, double max_ratio = NAN,
                      double scale = 1) {
        rows.push_back({std::move(figure), value, "ms", floor, p99, scale, max_ratio, NAN});
    };
    auto value_row = [&](std::string figure, double value, std::string unit, double max_value = NAN) {
        rows.push_back({std::move(figure), value, std::move(unit), Floor::none, false, 1, NAN, max_value});
    };

    // Spawn to ready: the manager's start, then one fork per worker at least
    for (auto [workers, runs] : {std::pair{1u, 10}, std::pair{8u, 5}, std::pair{64u, 5}}) {
        if (!wanted("spawn")) break;
        std::printf("spawn to ready: %u workers, %d runs ...\n", workers, runs);
        const auto r = spawn_to_ready(workers, runs, workers == 64);
        if (!r.error.empty()) errors.push_back("spawn " + std::to_string(workers) + ": " + r.error);
        const Stats s = stats(r.ms);
        const std::string name = "spawn to ready, " + std::to_string(workers) + " worker" + (workers > 1 ? "s" : "") + " (p50)";
        if (workers == 64) {
            ms_row(name, s.p50, Floor::fork_pipe, false, 40, workers);
            value_row("manager RSS, 64 workers ready", r.rss_kb > 0 ? r.rss_kb / 1024.0 : NAN, "MB", sanitized ? NAN : 8);
        } else {
            ms_row(name, s.p50, Floor::fork_pipe, false, NAN, workers);
        }
    }

    // Respawn after kill -9: served by the standby, no fork
    if (wanted("respawn")) {
        std::printf("respawn after kill -9: 8 workers, 200 kills ...\n");
        const auto r = respawn_latency(8, 200);
        if (!r.error.empty()) errors.push_back("respawn: " + r.error);
        const Stats s = stats(r.ms);
        ms_row("respawn after kill -9, p50 (" + std::to_string(s.n) + " kills)", s.p50, Floor::reap_pipe, false, 100);
        // A tail is the machine's as much as herd's (another process on the core): shown, not held
        ms_row("respawn after kill -9, p99", s.p99, Floor::reap_pipe, true);
    }

    // Hang detection overshoot: within two heartbeat intervals of the timeout
    if (wanted("hang")) {
        std::printf("hang detection: 24 workers, hang-after=400, heartbeat every 10 ms, timeout 200 ms ...\n");
        const auto r = hang_overshoot(24);
        if (!r.error.empty()) errors.push_back("hang: " + r.error);
        const Stats log = stats(r.log_ms);
        const Stats wall = stats(r.wall_ms);
        ms_row("hang overshoot past timeout, p99 (log, " + std::to_string(log.n) + ")", log.p99, Floor::interval, false, 2);
        ms_row("hang overshoot past timeout, p50 (log)", log.p50, Floor::interval);
        // The wall clock adds how late the bench itself read the line: shown, not held
        ms_row("hang overshoot past timeout, p99 (wall clock)", wall.p99, Floor::interval);
    }

    // Manager CPU and RSS with 256 workers heartbeating every 100 ms
    if (wanted("load")) {
        constexpr unsigned workers = 256;
        std::printf("manager load: %u workers, heartbeat every 100 ms, 5 s window ...\n", workers);
        const auto r = manager_load(workers, 5s);
        if (!r.error.empty()) errors.push_back("load: " + r.error);
        ms_row("spawn to ready, 256 workers (1 run)", r.ready_ms, Floor::fork_pipe, false, NAN, workers);
        value_row("manager CPU, 256 workers x 10 heartbeats/s", r.cpu_percent, "%");
        // CPU time per heartbeat (reading a record, one timer update) against a pipe round trip
        ms_row("  manager CPU per heartbeat", r.cpu_percent / 100.0 * 1000.0 / (workers * 10.0), Floor::pipe, false, 2);
        value_row("manager RSS, 256 workers", r.rss_kb > 0 ? r.rss_kb / 1024.0 : NAN, "MB");
    }

    // Control socket, 8 workers
    if (wanted("control")) {
        std::printf("control socket: 8 workers, 500 status requests, 50 x scale +1 and -1 ...\n");
        const auto r = control_latency(8, 50);
        if (!r.error.empty()) errors.push_back("control: " + r.error);
        const Stats status = stats(r.status_ms), up = stats(r.scale_up_ms), down = stats(r.scale_down_ms);
        ms_row("control status round trip, 8 workers, p50", status.p50, Floor::pipe, false, 20);
        ms_row("control status round trip, p99", status.p99, Floor::pipe, true);
        // The standby becomes the new worker: no fork on the way to the answer
        ms_row("scale +1 answered (standby, ready, answer), p50", up.p50, Floor::pipe, false, 100);
        ms_row("scale +1 answered, p99", up.p99, Floor::pipe, true);
        ms_row("scale -1 answered (QUIT, exit, reap), p50", down.p50, Floor::reap_pipe);
    }

    // Several pools (hello-http's web workers): a restart by strategy all, and what 192 workers cost
    if (wanted("pools")) {
        std::printf("several pools: restart-strategy all, 3 pools x 8 workers, 20 kills ...\n");
        const auto a = herd::bench::all_restart(hello_http(), 3, 8, 20);
        if (!a.error.empty()) errors.push_back("pools all: " + a.error);
        const Stats all = stats(a.ms);
        // The killed worker's slot is refilled, the two other pools are rolled (new ready before old retire)
        const std::string n = std::to_string(a.replaced);
        ms_row("all, 3x8: kill -9 to " + n + " replaced, p50 (" + std::to_string(all.n) + ")", all.p50, Floor::fork_pipe, false,
               NAN, a.replaced);
        ms_row("all, 3x8: kill -9 to " + n + " replaced, p99", all.p99, Floor::fork_pipe, true, NAN, a.replaced);
        std::printf("several pools: 3 pools x 64 workers, 200 status requests ...\n");
        const auto c = herd::bench::pools_cost(hello_http(), 3, 64, 200);
        if (!c.error.empty()) errors.push_back("pools cost: " + c.error);
        ms_row("3x64: start to all 192 ready", c.ready_ms, Floor::fork_pipe, false, NAN, 192);
        value_row("manager RSS, 3 pools x 64 workers ready", c.rss_kb > 0 ? c.rss_kb / 1024.0 : NAN, "MB",
                  sanitized ? NAN : 10);
        const Stats st = stats(c.status_ms);
        ms_row("status of 192 workers (" + std::to_string(c.status_bytes / 1024) + " KB), p50 (" + std::to_string(st.n) + ")",
               st.p50, Floor::pipe);
        value_row("  status of 192 workers, p50 (target)", st.p50, "ms", 2);
        ms_row("status of 192 workers, p99", st.p99, Floor::pipe, true);
    }

    // Upgrade and reload under load, hello-http with 8 workers
    if (wanted("upgrade")) {
        constexpr unsigned workers = 8, connections = 32;
        constexpr int rounds = 10;
        constexpr auto interval = 8ms;   // per connection: 32 x 125 = 4000 requests/s
        std::printf("upgrade and reload under load: hello-http, %u workers, %u keep-alive connections x %d req/s, "
                    "%d USR2 + %d HUP ...\n", workers, connections, int(1000ms / interval), rounds, rounds);
        const auto r = upgrade_under_load(workers, connections, interval, rounds);
        if (!r.error.empty()) errors.push_back("upgrade: " + r.error);
        auto count = [](std::size_t n) { return std::to_string(n); };
        const Stats quiet = stats(r.quiet.ms);
        value_row("request p99, quiet seconds (" + count(quiet.n) + " requests)", quiet.p99, "ms");
        value_row("errors, quiet seconds", quiet.n ? double(r.quiet.errors) : NAN, "", 0);

        // One kind of rollout: how long (the contract's budget: 1 s, plus what is in flight), what
        // clients saw in the second after the signal against the quiet seconds, and strictly
        // between the signal and the complete line (no target: on a small machine nearly every
        // request in those few ms shares a CPU with a fork or exec).
        auto rollout_rows = [&](const char* name, const RolloutRun& run, const Sampled& second, const Sampled& strict) {
            const std::string n = name;
            const Stats took = stats(run.complete_ms);
            value_row(n + " to complete, p50 (" + count(took.n) + ")", took.p50, "ms", 1000);
            value_row(n + " to complete, max", took.max, "ms", 1000);
            const Stats sec = stats(second.ms), tight = stats(strict.ms);
            value_row("request p99, second after " + n + " (" + count(sec.n) + ")", sec.p99, "ms");
            value_row("  p99 ratio to quiet", sec.p99 / quiet.p99, "x", 2);
            const auto slowed = std::count_if(second.ms.begin(), second.ms.end(), [&](double ms) { return ms > 2 * quiet.p99; });
            value_row("  requests over 2x quiet p99, per " + n,
                      run.seconds.empty() ? NAN : double(slowed) / double(run.seconds.size()), "req");
            value_row("  errors (" + count(sec.n) + " requests)", sec.n ? double(second.errors) : NAN, "", 0);
            value_row("request p99, " + n + " to complete (" + count(tight.n) + ")", tight.p99, "ms");
            value_row("  p99 ratio to quiet (strict window)", tight.p99 / quiet.p99, "x");
        };
        rollout_rows("USR2", r.upgrade, r.upgrade_second, r.upgrade_strict);
        ms_row("USR2 to new image running (--check, exec), p50", stats(r.upgrade.exec_ms).p50, Floor::fork_pipe);
        rollout_rows("HUP", r.reload, r.reload_second, r.reload_strict);

        if (r.other_errors > 0)
            errors.push_back("upgrade: " + count(r.other_errors) + " requests failed between the measured windows");
        for (const auto& [why, n] : r.why) errors.push_back("upgrade: " + count(std::size_t(n)) + " x " + why);
    }

    const int missed = print_table(floors, rows);
    for (const auto& e : errors) std::printf("error: %s\n", e.c_str());
    std::printf("\nbench took %.1f s\n", ms_since(bench_start) / 1000.0);
    if (!errors.empty()) return 1;
#if !defined(__OPTIMIZE__)
    constexpr bool timed_build = false;
#else
    constexpr bool timed_build = !sanitized;
#endif
    if (check && !timed_build) {
        std::printf("SKIPPED: a sanitizer or unoptimized build: its times are the build's, not herd's; targets not held\n");
        return 77;   // meson's "skipped"
    }
    if (check && missed > 0) {
        std::printf("herd-bench --check: %d target%s missed\n", missed, missed == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
