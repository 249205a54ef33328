// What herd-bench's parts share: the binaries they run, percentiles, /proc readings of a process,
// and a test-worker command line.
#pragma once

#include "harness.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <sys/types.h>
#include <vector>

namespace herd::bench {

using herd::testing::Clock;
using herd::testing::Process;

/// The test-worker and hello-http binaries: $TEST_WORKER and $HELLO_HTTP, else the build's.
std::string test_worker();
std::string hello_http();

// Percentiles

struct Stats {
    std::size_t n = 0;
    double p50 = NAN;
    double p99 = NAN;
    double max = NAN;
};

Stats stats(std::vector<double> v);
double ms_between(Clock::time_point a, Clock::time_point b);

// /proc readings of one process

using herd::testing::vm_rss_kb;    // VmRSS in kB (harness.hpp)
using herd::testing::cpu_seconds;   // time on a CPU so far (harness.hpp)

/// Keep reading a server's output for `d` (the manager must never block on a full pipe).
void drain_for(Process& p, Clock::duration d);

/// test-worker with `workers` workers, log level info, and `extra`.
std::vector<std::string> server_args(unsigned workers, std::vector<std::string> extra);

}  // namespace herd::bench
