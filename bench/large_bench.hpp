// herd-bench's part `large`: one pool of hundreds or a thousand test-worker workers. Raw samples
// only; herd_bench.cpp makes the rows.
#pragma once

#include "table.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace herd::bench {

/// `workers` ready in one pool: start to the last ready line, the manager's RSS, status round trips
/// on the control socket, and the manager's CPU while idle (heartbeats every second).
struct LargeResult {
    double ready_ms = NAN;           // start to the Nth ready line
    long rss_kb = -1;                // the manager's VmRSS, 1 s after all were ready
    std::vector<double> status_ms;   // status request to its whole answer, one connection
    std::size_t status_bytes = 0;
    double cpu_percent = NAN;        // the manager's CPU over the idle window
    std::string error;
};

/// `memory`: with --max-worker-memory on (1 GiB, never reached: the cost of sampling alone).
LargeResult large_pool(unsigned workers, int requests, bool memory, double idle_seconds);

/// Start to the Nth ready line, `runs` times (no control socket, nothing else measured).
std::vector<double> large_ready(unsigned workers, int runs, std::string& error);

/// The part's rows: spawn to ready of 256 (3 runs) and 1024 workers, and at 1024 the manager's
/// RSS, status round trips, and its CPU while idle with --max-worker-memory off and on.
void large_rows(std::vector<Row>& rows, std::vector<std::string>& errors);

}  // namespace herd::bench
