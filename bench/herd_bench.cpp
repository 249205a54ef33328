// herd-bench: how fast the manager spawns, replaces and notices, and what it costs, each time
// beside the raw fork + pipe round trip measured in the same run (the floor any prefork
// manager stands on).
//
//   herd-bench            (TEST_WORKER=path/to/test-worker, set by `meson test --benchmark`)
//
// Every figure comes from running test-worker and reading its log lines from a pipe; the time a
// line is read is the time it happened (the manager logs synchronously). Bounded in time:
// every wait has a deadline, and every server's process group is killed when its step ends.
#include "harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

#ifndef HERD_TEST_WORKER
#define HERD_TEST_WORKER ""
#endif

std::string test_worker() { return binary("TEST_WORKER", HERD_TEST_WORKER); }

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

// Table

struct Row {
    std::string figure;
    double value = NAN;
    std::string unit;        // "ms", "MB", "%"
    bool ratio = false;      // time figures get a ratio to the raw fork + pipe p50
    std::string target;
    std::optional<bool> met;
};

std::string fmt(double v, int decimals)
{
    if (std::isnan(v)) return "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

void print_table(const Stats& raw, const std::vector<Row>& rows)
{
    std::printf("\nraw fork + pipe round trip (this run): p50 %s ms, p99 %s ms, %zu samples\n\n",
                fmt(raw.p50, 3).c_str(), fmt(raw.p99, 3).c_str(), raw.n);
    std::printf("%-46s %12s %12s %10s   %-22s %s\n", "figure", "value", "raw p50", "ratio", "target", "");
    std::printf("%s\n", std::string(118, '-').c_str());
    for (const auto& row : rows) {
        const std::string value = fmt(row.value, row.unit == "ms" ? 2 : (row.unit == "%" ? 2 : 1)) + " " + row.unit;
        const std::string raw_text = row.ratio ? fmt(raw.p50, 3) + " ms" : "-";
        const std::string ratio = row.ratio && raw.p50 > 0 ? fmt(row.value / raw.p50, 1) + "x" : "-";
        const char* verdict = !row.met ? "" : (*row.met ? "ok" : "MISSED");
        std::printf("%-46s %12s %12s %10s   %-22s %s\n", row.figure.c_str(), value.c_str(), raw_text.c_str(),
                    ratio.c_str(), row.target.c_str(), verdict);
    }
}

}  // namespace

int main()
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    HardDeadline guard(std::chrono::seconds(280));
    const auto bench_start = Clock::now();
    std::printf("herd-bench: test-worker at %s\n", test_worker().c_str());

    const Stats raw = raw_fork_pipe(300);
    std::vector<Row> rows;
    std::vector<std::string> errors;
    auto ms_row = [&](std::string figure, double value, std::string target = {}, std::optional<bool> met = {}) {
        rows.push_back({std::move(figure), value, "ms", true, std::move(target), met});
    };

    // Spawn to ready
    for (auto [workers, runs] : {std::pair{1u, 10}, std::pair{8u, 5}, std::pair{64u, 5}}) {
        std::printf("spawn to ready: %u workers, %d runs ...\n", workers, runs);
        const auto r = spawn_to_ready(workers, runs, workers == 64);
        if (!r.error.empty()) errors.push_back("spawn " + std::to_string(workers) + ": " + r.error);
        const Stats s = stats(r.ms);
        const std::string name = "spawn to ready, " + std::to_string(workers) + " worker" + (workers > 1 ? "s" : "") + " (p50)";
        if (workers == 64) {
            ms_row(name, s.p50, "< 100 ms", s.n ? std::optional<bool>(s.p50 < 100) : std::nullopt);
            rows.push_back({"manager RSS, 64 workers ready", r.rss_kb / 1024.0, "MB", false, "< 8 MB",
                            r.rss_kb > 0 ? std::optional<bool>(r.rss_kb < 8 * 1024) : std::nullopt});
        } else {
            ms_row(name, s.p50);
        }
    }

    // Respawn after kill -9
    {
        std::printf("respawn after kill -9: 8 workers, 200 kills ...\n");
        const auto r = respawn_latency(8, 200);
        if (!r.error.empty()) errors.push_back("respawn: " + r.error);
        const Stats s = stats(r.ms);
        ms_row("respawn after kill -9, p50 (" + std::to_string(s.n) + " kills)", s.p50, "<= 3x raw p50",
               s.n ? std::optional<bool>(s.p50 <= 3 * raw.p50) : std::nullopt);
        ms_row("respawn after kill -9, p99", s.p99, "< 5 ms", s.n ? std::optional<bool>(s.p99 < 5) : std::nullopt);
    }

    // Hang detection overshoot
    {
        std::printf("hang detection: 24 workers, hang-after=400, heartbeat every 10 ms, timeout 200 ms ...\n");
        const auto r = hang_overshoot(24);
        if (!r.error.empty()) errors.push_back("hang: " + r.error);
        const Stats log = stats(r.log_ms);
        const Stats wall = stats(r.wall_ms);
        ms_row("hang overshoot past timeout, p99 (log, " + std::to_string(log.n) + ")", log.p99, "<= 20 ms",
               log.n ? std::optional<bool>(log.p99 <= 20) : std::nullopt);
        ms_row("hang overshoot past timeout, p50 (log)", log.p50);
        ms_row("hang overshoot past timeout, p99 (wall clock)", wall.p99, "<= 20 ms",
               wall.n ? std::optional<bool>(wall.p99 <= 20) : std::nullopt);
    }

    // Manager CPU and RSS with 256 workers heartbeating every 100 ms
    {
        std::printf("manager load: 256 workers, heartbeat every 100 ms, 5 s window ...\n");
        const auto r = manager_load(256, 5s);
        if (!r.error.empty()) errors.push_back("load: " + r.error);
        ms_row("spawn to ready, 256 workers (1 run)", r.ready_ms);
        rows.push_back({"manager CPU, 256 workers x 10 heartbeats/s", r.cpu_percent, "%", false, "< 3 %",
                        std::isnan(r.cpu_percent) ? std::nullopt : std::optional<bool>(r.cpu_percent < 3)});
        rows.push_back({"manager RSS, 256 workers", r.rss_kb / 1024.0, "MB", false, "", std::nullopt});
    }

    print_table(raw, rows);
    for (const auto& e : errors) std::printf("error: %s\n", e.c_str());
    std::printf("\nbench took %.1f s\n", ms_since(bench_start) / 1000.0);
    return errors.empty() ? 0 : 1;
}
