// herd-bench's part `idle` (idle_bench.hpp).
#include "idle_bench.hpp"

#include <fstream>
#include <regex>
#include <string>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

namespace {

// voluntary_ctxt_switches + nonvoluntary_ctxt_switches of /proc/PID/status: each is a wake.
long context_switches(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    long total = 0;
    bool seen = false;
    for (std::string line; std::getline(in, line);)
        if (line.find("ctxt_switches:") != std::string::npos) {
            total += first_number(line);
            seen = true;
        }
    return seen ? total : -1;
}

}  // namespace

IdleResult manager_idle(unsigned workers, Clock::duration interval, Clock::duration window)
{
    IdleResult r;
    const auto interval_ms = std::chrono::duration_cast<std::chrono::milliseconds>(interval).count();
    // The default --heartbeat-timeout (10 s), and no --spare: the standby is not the pool's rest.
    Process p({hello_http(), "-w", std::to_string(workers), "-l", "127.0.0.1:0", "--log-level", "info",
               "--heartbeat-interval", std::to_string(interval_ms) + "ms", "--boot-timeout", "60s"});
    if (!p.wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), in(60s))) {
        r.error = "hello-http: not all " + std::to_string(workers) + " workers ready after 60 s";
        return r;
    }
    drain_for(p, 1s);   // the standby forked, every worker in its rhythm
    const long switches0 = context_switches(p.pid());
    const double cpu0 = cpu_seconds(p.pid());
    drain_for(p, window);
    const long switches1 = context_switches(p.pid());
    const double cpu1 = cpu_seconds(p.pid());
    if (switches0 < 0 || switches1 < 0) {
        r.error = "cannot read the manager's context switches";
        return r;
    }
    r.wakeups = switches1 - switches0;
    r.cpu_ms = (cpu1 - cpu0) * 1000.0;
    return r;
}

}  // namespace herd::bench
