// herd-bench's figures of several pools: see pools_bench.hpp. Every figure comes from running
// hello-http with a config file of `[pool.NAME]` sections (Worker type `web`, each pool on a port
// of its own, idle: the workers only heartbeat) and reading the manager's log lines from a pipe.
#include "pools_bench.hpp"

#include "bench.hpp"
#include "harness.hpp"

#include <signal.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {
namespace {

// 1 pool, 2 workers
const std::regex pool_ready{R"(pool (\S+): all (\d+) workers ready)"};
// 1 pool
const std::regex restart_complete{R"(pool (\S+): restart to generation \d+ complete in)"};

std::string pool_name(unsigned i) { return "p" + std::to_string(i); }

// The config of `pools` x `workers` idle web workers heartbeating every 100 ms.
std::string config(unsigned pools, unsigned workers, const std::string& strategy, const std::string& control)
{
    std::string text = "restart-strategy = " + strategy + "\nlog-level = info\n";
    if (!control.empty()) text += "control = " + control + "\n";
    text += "[pool]\nworkers = " + std::to_string(workers) +
            "\nheartbeat-interval = 100ms\nheartbeat-timeout = 5s\nboot-timeout = 20s\nrestart-limit = 1000000/1s\n";
    for (unsigned i = 0; i < pools; ++i) text += "[pool." + pool_name(i) + "]\nworker = web\nlisten = 127.0.0.1:0\n";
    return text;
}

// Pumps until every pool has logged its "all N workers ready" line; false at the deadline.
bool all_pools_ready(Process& p, unsigned pools, Deadline deadline)
{
    return p.wait_for_lines(pool_ready, pools, deadline).size() == pools;
}

}  // namespace

AllRestartResult all_restart(const std::string& binary, unsigned pools, unsigned workers, int kills)
{
    AllRestartResult r;
    TempDir dir;
    const std::string conf = dir / "pools.conf";
    write_file(conf, config(pools, workers, "all", ""));
    Process p({binary, "--config", conf});
    if (!all_pools_ready(p, pools, in(30s))) {
        r.error = "pools not ready";
        return r;
    }
    r.replaced = 1 + (pools - 1) * workers;
    for (int i = 0; i < kills; ++i) {
        // A worker of the first pool: `all` refills its slot and rolls every other pool
        const auto first = p.matches(std::regex("pool " + pool_name(0) + R"(: worker (\d+) ready in slot 0 )"));
        if (first.empty()) {
            r.error = "no worker in slot 0 of the first pool";
            return r;
        }
        const int victim = first.back().number(1);
        const std::size_t mark = p.lines().size();
        const auto t0 = Clock::now();
        if (::kill(victim, SIGKILL) != 0) {
            r.error = std::string("kill: ") + std::strerror(errno);
            return r;
        }
        const auto done = p.wait_for_lines(restart_complete, pools - 1, in(10s), mark);
        if (done.size() < pools - 1) {
            r.error = std::to_string(done.size()) + " of " + std::to_string(pools - 1) + " pools restarted 10 s after kill " +
                      std::to_string(i);
            return r;
        }
        // ... and the killed worker's slot is refilled (long before, in practice)
        if (!p.wait_for_line(std::regex("pool " + pool_name(0) + R"(: worker \d+ ready in slot 0 )"), in(5s), mark)) {
            r.error = "slot 0 of the first pool not refilled after kill " + std::to_string(i);
            return r;
        }
        r.ms.push_back(ms_between(t0, done.back().seen));
        for (const auto until = Clock::now() + 200ms; Clock::now() < until;) p.pump(milliseconds(50));
    }
    return r;
}

PoolsCostResult pools_cost(const std::string& binary, unsigned pools, unsigned workers, int requests)
{
    PoolsCostResult r;
    TempDir dir;
    const std::string conf = dir / "pools.conf";
    const std::string socket = dir / "control.sock";
    write_file(conf, config(pools, workers, "one", socket));
    const auto t0 = Clock::now();
    Process p({binary, "--config", conf});
    if (!all_pools_ready(p, pools, in(60s))) {
        r.error = "pools not ready";
        return r;
    }
    r.ready_ms = ms_between(t0, p.wait_for_lines(pool_ready, pools, in(1s)).back().seen);
    for (const auto until = Clock::now() + 1s; Clock::now() < until;) p.pump(milliseconds(50));
    r.rss_kb = vm_rss_kb(p.pid());
    ControlClient c(socket);
    if (c.error()) {
        r.error = std::string("cannot connect to the control socket: ") + std::strerror(c.error());
        return r;
    }
    for (int i = 0; i < requests; ++i) {
        const auto start = Clock::now();
        const std::string answer = c.ask("{\"command\":\"status\"}\n");
        r.status_ms.push_back(ms_between(start, Clock::now()));
        r.status_bytes = answer.size();
        if (answer.rfind("{\"ok\":true", 0) != 0) {
            r.error = "status answered " + answer.substr(0, 200);
            return r;
        }
        if (i % 20 == 0) p.pump();   // the manager must never block on a full log pipe
    }
    return r;
}

}  // namespace herd::bench
