// herd-bench: how fast the manager spawns, replaces, notices and upgrades, and what it costs,
// each time beside the raw fork + pipe round trip measured in the same run, and against the floor
// that applies to it (a respawn by the standby: a reap and a pipe round trip, no fork).
//
//   herd-bench [--check] [--data DIR] [PART...]
//
// TEST_WORKER=path/to/test-worker HELLO_HTTP=path/to/hello-http are set by `meson test`; the
// paths of the build are the defaults. PART: spawn, respawn, hang, idle, load, upgrade, control, pools.
// --check exits 1 when a target is missed (without parts: the quick ones). --data DIR writes every
// sample as CSV files into DIR (bench/report draws them). The part `curves` (only when named):
// spawn to ready for 1 to 512 workers, and the manager's CPU for 16 to 256 workers heartbeating
// every 10 ms, 100 ms and 1 s.
//
// Every figure comes from running test-worker or hello-http and reading its log lines from a
// pipe; the time a line is read is the time it happened (the manager logs synchronously). The
// upgrade figures put hello-http under a steady keep-alive HTTP load from the bench's own client
// threads, on 127.0.0.1 only. Bounded in time: every wait has a deadline, and every server's
// process group is killed when its step ends.
#include "harness.hpp"
#include "pools_bench.hpp"
#include "bench.hpp"
#include "floors.hpp"
#include "idle_bench.hpp"
#include "large_bench.hpp"
#include "table.hpp"
#include "upgrade_bench.hpp"
#include "worker_bench.hpp"

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
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;
using namespace herd::bench;

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
    // herd-bench [--check] [spawn|respawn|hang|idle|load|upgrade|control ...]: only those parts; without
    // parts all of them, or with --check the quick ones (spawn, respawn, hang, idle, control, pools).
    // --check: exit 1 when a target is missed, not only when a step failed.
    bool check = false;
    std::string data_dir;
    std::vector<std::string_view> only;
    for (int i = 1; i < argc; ++i) {
        const std::string_view part = argv[i];
        if (part == "--check") {
            check = true;
            continue;
        }
        if (part == "--data" && i + 1 < argc) {
            data_dir = argv[++i];
            continue;
        }
        if (part != "spawn" && part != "respawn" && part != "hang" && part != "idle" && part != "load" && part != "upgrade" &&
            part != "control" && part != "pools" && part != "curves" && part != "large") {
            std::fprintf(stderr, "herd-bench: unknown part '%.*s' (spawn, respawn, hang, idle, load, upgrade, control, pools, "
                                 "curves, large; --check, --data DIR)\n",
                         int(part.size()), part.data());
            return 2;
        }
        only.push_back(part);
    }
    const bool quick = check && only.empty();
    if (quick) only = {"spawn", "respawn", "hang", "idle", "control", "pools"};
    auto wanted = [&](std::string_view part) {
        if (only.empty()) return part != "curves" && part != "large";   // minutes, and a thousand processes: only when named
        return std::find(only.begin(), only.end(), part) != only.end();
    };
    // --data DIR: FILE.csv with a header line, appended to (a second run adds its samples)
    auto data = [&](const std::string& file, const std::string& header) -> std::unique_ptr<std::ofstream> {
        if (data_dir.empty()) return nullptr;
        std::filesystem::create_directories(data_dir);
        const std::string path = data_dir + "/" + file;
        const bool fresh = !std::filesystem::exists(path);
        auto out = std::make_unique<std::ofstream>(path, std::ios::app);
        if (fresh) *out << header << "\n";
        return out;
    };
    HardDeadline guard(std::chrono::seconds(400));
    const auto bench_start = Clock::now();
    std::printf("herd-bench: test-worker at %s, hello-http at %s\n", test_worker().c_str(), hello_http().c_str());

    FloorValues floors;
    floors.fork_pipe = raw_fork_pipe(300);
    floors.floors = measure_floors(300);
    if (auto f = data("floors.csv", "name,p50_ms,p99_ms")) {
        *f << "fork_pipe," << floors.fork_pipe.p50 << "," << floors.fork_pipe.p99 << "\n";
        *f << "reap_pipe," << floors.floors.reap_pipe.p50 << "," << floors.floors.reap_pipe.p99 << "\n";
        *f << "pipe," << floors.floors.pipe.p50 << "," << floors.floors.pipe.p99 << "\n";
    }
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
        if (auto f = data("ready.csv", "workers,ms"))
            for (double ms : r.ms) *f << workers << "," << ms << "\n";
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
        if (auto f = data("respawn.csv", "ms"))
            for (double ms : r.ms) *f << ms << "\n";
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
        if (auto f = data("hang.csv", "log_ms,wall_ms"))
            for (std::size_t i = 0; i < r.log_ms.size(); ++i)
                *f << r.log_ms[i] << "," << (i < r.wall_ms.size() ? std::to_string(r.wall_ms[i]) : "") << "\n";
        const Stats log = stats(r.log_ms);
        const Stats wall = stats(r.wall_ms);
        ms_row("hang overshoot past timeout, p99 (log, " + std::to_string(log.n) + ")", log.p99, Floor::interval, false, 2);
        ms_row("hang overshoot past timeout, p50 (log)", log.p50, Floor::interval);
        // The wall clock adds how late the bench itself read the line: shown, not held
        ms_row("hang overshoot past timeout, p99 (wall clock)", wall.p99, Floor::interval);
    }

    // A pool at rest: the manager wakes for its deadlines only, not for the heartbeats (heartbeat
    // pages). --check: one 5 s window, its bounds halved.
    if (wanted("idle")) {
        for (auto interval : {100ms, 1000ms}) {
            if (quick && interval != 100ms) break;
            const auto window = quick ? 5s : 10s;
            const long long secs = window.count(), every = interval.count();
            std::printf("manager at rest: hello-http, 64 workers, heartbeat every %lld ms, %lld s window ...\n", every, secs);
            const auto r = manager_idle(64, interval, window);
            if (!r.error.empty()) errors.push_back("idle: " + r.error);
            const std::string what = "idle " + std::to_string(secs) + " s, 64 workers, heartbeat " + std::to_string(every) + " ms";
            value_row(what + ": manager wakeups", r.wakeups < 0 ? NAN : double(r.wakeups), "", quick ? 10 : 20);
            value_row(what + ": manager CPU", r.cpu_ms, "ms", quick ? 2.5 : 5);
        }
    }

    // Manager CPU and RSS with 256 and 1024 workers heartbeating every 100 ms
    for (const unsigned workers : {256u, 1024u}) {
        if (!wanted("load")) break;
        const std::string n = std::to_string(workers);
        std::printf("manager load: %u workers, heartbeat every 100 ms, 5 s window ...\n", workers);
        const auto r = manager_load(workers, 5s);
        if (!r.error.empty()) errors.push_back("load " + n + ": " + r.error);
        if (auto f = data("load.csv", "workers,interval_ms,cpu_percent")) *f << workers << ",100," << r.cpu_percent << "\n";
        ms_row("spawn to ready, " + n + " workers (1 run)", r.ready_ms, Floor::fork_pipe, false, NAN, workers);
        value_row("manager CPU, " + n + " workers x 10 heartbeats/s", r.cpu_percent, "%", 1);
        // CPU time per heartbeat (a page sampled at a deadline) against a pipe round trip
        ms_row("  manager CPU per heartbeat", r.cpu_percent / 100.0 * 1000.0 / (workers * 10.0), Floor::pipe, false, 2);
        value_row("manager RSS, " + n + " workers", r.rss_kb > 0 ? r.rss_kb / 1024.0 : NAN, "MB");
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

    if (wanted("large")) large_rows(rows, errors);

    // Upgrade and reload under load, hello-http with 8 workers
    if (wanted("upgrade")) {
        constexpr unsigned workers = 8, connections = 32;
        constexpr int rounds = 10;
        constexpr auto interval = 8ms;   // per connection: 32 x 125 = 4000 requests/s
        std::printf("upgrade and reload under load: hello-http, %u workers, %u keep-alive connections x %d req/s, "
                    "%d USR2 + %d HUP ...\n", workers, connections, int(1000ms / interval), rounds, rounds);
        const auto r = upgrade_under_load(workers, connections, interval, rounds);
        if (!r.error.empty()) errors.push_back("upgrade: " + r.error);
        if (auto f = data("rollout.csv", "kind,t_ms,latency_ms,ok"))
            for (const auto& pt : r.timeline) *f << pt.kind << "," << pt.t_ms << "," << pt.ms << "," << pt.ok << "\n";
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

    // The report's curves: spawn to ready against pool size, the manager's CPU against workers and
    // heartbeat rate (each point one manager; rows only where a target applies elsewhere)
    if (wanted("curves")) {
        for (unsigned workers : {1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u, 256u, 512u}) {
            std::printf("curves: spawn to ready, %u workers, 2 runs ...\n", workers);
            const auto r = spawn_to_ready(workers, 2, false);
            if (!r.error.empty()) errors.push_back("curves, spawn " + std::to_string(workers) + ": " + r.error);
            if (auto f = data("ready.csv", "workers,ms"))
                for (double ms : r.ms) *f << workers << "," << ms << "\n";
        }
        for (auto interval : {10ms, 100ms, 1000ms})
            for (unsigned workers : {16u, 64u, 256u}) {
                std::printf("curves: manager CPU, %u workers, heartbeat every %lld ms ...\n", workers,
                            static_cast<long long>(interval.count()));
                const auto r = manager_load(workers, 3s, interval);
                if (!r.error.empty()) errors.push_back("curves, load " + std::to_string(workers) + ": " + r.error);
                if (auto f = data("load.csv", "workers,interval_ms,cpu_percent"))
                    *f << workers << "," << interval.count() << "," << r.cpu_percent << "\n";
            }
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
