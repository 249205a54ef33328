// herd-bench's parts on test-worker (worker_bench.hpp).
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
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

// Spawn to ready

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
            r.rss_kb = vm_rss_kb(p.pid());
        }
    }
    return r;
}

// Respawn after kill -9

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

LoadResult manager_load(unsigned workers, Clock::duration window, Clock::duration interval)
{
    LoadResult r;
    const auto t0 = Clock::now();
    const auto interval_ms = std::chrono::duration_cast<std::chrono::milliseconds>(interval).count();
    Process p(server_args(workers, {"--heartbeat-interval", std::to_string(interval_ms) + "ms", "--heartbeat-timeout",
                                    std::to_string(std::max<long long>(10'000, 4 * interval_ms)) + "ms",
                                    "--boot-timeout", "60s", "--restart-limit", "1000/1s"}));
    const auto ready = p.wait_for_lines(lines::ready, workers, in(60s));
    if (ready.size() < workers) {
        r.error = std::to_string(ready.size()) + " of " + std::to_string(workers) + " ready after 60 s";
        return r;
    }
    r.ready_ms = ms_between(t0, ready.back().seen);
    drain_for(p, 1s);   // let every worker settle into its heartbeat rhythm

    const double cpu0 = cpu_seconds(p.pid());
    const auto w0 = Clock::now();
    drain_for(p, window);
    const double cpu1 = cpu_seconds(p.pid());
    const double wall_s = ms_between(w0, Clock::now()) / 1000.0;
    r.cpu_percent = 100.0 * (cpu1 - cpu0) / wall_s;
    r.rss_kb = vm_rss_kb(p.pid());
    return r;
}

// Control socket: a status round trip, and a scale answered when the pool has settled

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

}  // namespace herd::bench
