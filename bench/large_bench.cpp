// herd-bench's part `large` (large_bench.hpp).
#include "large_bench.hpp"

#include "bench.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

namespace {

std::vector<std::string> large_args(unsigned workers, std::vector<std::string> extra)
{
    // Heartbeats every second (the figures are the pool's size, not its heartbeat rate); a boot
    // and a heartbeat timeout that a thousand forks on a busy machine cannot reach
    std::vector<std::string> args = {"--heartbeat-interval", "1s", "--heartbeat-timeout", "60s", "--boot-timeout", "120s",
                                     "--restart-limit", "1000/1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return server_args(workers, args);
}

}  // namespace

std::vector<double> large_ready(unsigned workers, int runs, std::string& error)
{
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = Clock::now();
        Process p(large_args(workers, {}));
        const auto ready = p.wait_for_lines(lines::ready, workers, in(120s));
        if (ready.size() < workers) {
            error = std::to_string(ready.size()) + " of " + std::to_string(workers) + " ready after 120 s";
            return ms;
        }
        ms.push_back(ms_between(t0, ready.back().seen));
    }
    return ms;
}

LargeResult large_pool(unsigned workers, int requests, bool memory, double idle_seconds)
{
    LargeResult r;
    TempDir dir;
    const std::string socket = dir / "control.sock";
    std::vector<std::string> extra = {"--control", socket};
    if (memory) extra.insert(extra.end(), {"--max-worker-memory", "1G"});
    const auto t0 = Clock::now();
    Process p(large_args(workers, extra));
    const auto ready = p.wait_for_lines(lines::ready, workers, in(120s));
    if (ready.size() < workers) {
        r.error = std::to_string(ready.size()) + " of " + std::to_string(workers) + " ready after 120 s";
        return r;
    }
    r.ready_ms = ms_between(t0, ready.back().seen);
    drain_for(p, 1s);   // every worker in its heartbeat rhythm, the spawn's garbage returned
    r.rss_kb = vm_rss_kb(p.pid());

    // Idle: heartbeats, and the memory samples when they are on
    const double cpu0 = cpu_seconds(p.pid());
    const auto w0 = Clock::now();
    drain_for(p, std::chrono::milliseconds(long(idle_seconds * 1000)));
    r.cpu_percent = 100.0 * (cpu_seconds(p.pid()) - cpu0) / (ms_between(w0, Clock::now()) / 1000.0);

    ControlClient c(socket);
    if (c.error()) {
        r.error = std::string("cannot connect to the control socket: ") + std::strerror(c.error());
        return r;
    }
    auto timed = [&](const char* request, std::vector<double>& into) {
        const auto start = Clock::now();
        const std::string answer = c.ask(request);
        into.push_back(ms_between(start, Clock::now()));
        if (answer.rfind("{\"ok\":true", 0) != 0 && r.error.empty()) r.error = std::string(request) + " answered " + answer.substr(0, 200);
        return answer.size();
    };
    for (int i = 0; i < requests && r.error.empty(); ++i) {
        r.status_bytes = timed("{\"command\":\"status\"}\n", r.status_ms);
        if (i % 10 == 0) p.pump();   // the manager must never block on a full log pipe
    }
    return r;
}

void large_rows(std::vector<Row>& rows, std::vector<std::string>& errors)
{
    auto ms_row = [&](std::string figure, double value, Floor floor, bool p99, double max_ratio, double scale) {
        rows.push_back({std::move(figure), value, "ms", floor, p99, scale, max_ratio, NAN});
    };
    auto value_row = [&](std::string figure, double value, std::string unit, double max_value = NAN) {
        rows.push_back({std::move(figure), value, std::move(unit), Floor::none, false, 1, NAN, max_value});
    };
    std::printf("large pools: spawn to ready, 256 workers, 3 runs ...\n");
    std::string error;
    const Stats s256 = stats(large_ready(256, 3, error));
    if (!error.empty()) errors.push_back("large, 256: " + error);
    ms_row("spawn to ready, 256 workers (p50 of 3)", s256.p50, Floor::fork_pipe, false, 1.5, 256);

    std::printf("large pools: 1024 workers, --max-worker-memory off, 100 status requests ...\n");
    const LargeResult off = large_pool(1024, 100, false, 5);
    if (!off.error.empty()) errors.push_back("large, 1024: " + off.error);
    ms_row("spawn to ready, 1024 workers (1 run)", off.ready_ms, Floor::fork_pipe, false, NAN, 1024);
    value_row("manager RSS, 1024 workers ready", off.rss_kb > 0 ? off.rss_kb / 1024.0 : NAN, "MB", 12);
    const Stats st = stats(off.status_ms);
    ms_row("status of 1024 workers (" + std::to_string(off.status_bytes / 1024) + " KB), p50 (" + std::to_string(st.n) + ")",
           st.p50, Floor::pipe, false, NAN, 1);
    value_row("  status of 1024 workers, p50 (target)", st.p50, "ms", 5);
    ms_row("status of 1024 workers, p99", st.p99, Floor::pipe, true, NAN, 1);
    value_row("manager CPU, 1024 workers idle (1 heartbeat/s each)", off.cpu_percent, "%");

    std::printf("large pools: 1024 workers, --max-worker-memory 1G ...\n");
    const LargeResult on = large_pool(1024, 10, true, 5);
    if (!on.error.empty()) errors.push_back("large, 1024 with memory: " + on.error);
    value_row("manager CPU, 1024 workers idle, --max-worker-memory on", on.cpu_percent, "%");
    value_row("  of which memory sampling (on - off)", on.cpu_percent - off.cpu_percent, "%");
}

}  // namespace herd::bench
