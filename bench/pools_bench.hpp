// herd-bench's figures of several pools (DESIGN.md §7a): hello-http's `web` Worker type in
// three pools under one manager. Raw samples only; herd_bench.cpp makes the rows.
#pragma once

#include <string>
#include <vector>

namespace herd::bench {

/// restart-strategy = all, `pools` x `workers`: one worker killed with kill -9 at a time.
struct AllRestartResult {
    std::vector<double> ms;   // kill to the last other pool's "restart ... complete" line
    unsigned replaced = 0;    // workers replaced per kill: the killed one and every other pool's
    std::string error;
};
AllRestartResult all_restart(const std::string& binary, unsigned pools, unsigned workers, int kills);

/// `pools` x `workers` ready: the manager's RSS, and `status` round trips on the control socket.
struct PoolsCostResult {
    double ready_ms = 0;                // start to the last pool's "ready" line
    long rss_kb = -1;                   // the manager's VmRSS, 1 s after all were ready
    std::vector<double> status_ms;      // status request to its whole answer, one connection
    std::size_t status_bytes = 0;       // size of one answer
    std::string error;
};
PoolsCostResult pools_cost(const std::string& binary, unsigned pools, unsigned workers, int requests);

}  // namespace herd::bench
