// herd-bench's part `idle`: what a pool at rest costs its manager. hello-http's workers beat into
// their heartbeat pages from their own loops (attach()), once per --heartbeat-interval, and serve
// nothing; the manager should wake for its deadlines only, about once per --heartbeat-timeout.
#pragma once

#include "bench.hpp"

#include <chrono>
#include <string>

namespace herd::bench {

struct IdleResult {
    long wakeups = -1;        // the manager's context switches, voluntary and involuntary, over the window
    double cpu_ms = NAN;      // the manager's CPU time over the window
    std::string error;
};

/// hello-http with `workers` ready and beating every `interval`: the manager over `window`.
IdleResult manager_idle(unsigned workers, Clock::duration interval, Clock::duration window);

}  // namespace herd::bench
