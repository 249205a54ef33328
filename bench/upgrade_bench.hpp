// herd-bench's upgrade (USR2) and reload (HUP) of hello-http under a keep-alive HTTP load from
// the bench's own client threads, on 127.0.0.1.
#pragma once

#include "bench.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace herd::bench {

// Upgrade (USR2) and reload (HUP) under load

struct RolloutRun {
    std::vector<double> complete_ms;      // signal sent -> "... complete in" line read
    std::vector<double> exec_ms;          // USR2 sent -> the new image's "upgrade: manager P now runs" line
    std::vector<std::pair<Clock::time_point, Clock::time_point>> windows;   // signal sent .. complete
    std::vector<std::pair<Clock::time_point, Clock::time_point>> seconds;   // signal sent .. one second later
};

/// Request latencies (ms) of one kind of stretch, and how many of them failed.
struct Sampled {
    std::vector<double> ms;
    std::size_t errors = 0;
};

struct UpgradeResult {
    RolloutRun upgrade, reload;
    // Request latency (ms) from when each was due: in the quiet seconds, in the second after each
    // signal, and (strictly) from each signal to its complete line.
    Sampled quiet, upgrade_second, upgrade_strict, reload_second, reload_strict;
    // Every request due from 300 ms before a signal to 1 s after it: (USR2 or HUP, ms since the
    // signal, latency ms, answered 200), for the report's time series.
    struct Point {
        const char* kind;
        double t_ms;
        double ms;
        bool ok;
    };
    std::vector<Point> timeline;
    std::size_t other_errors = 0;
    std::map<std::string, int> why;
    std::string error;
};

UpgradeResult upgrade_under_load(unsigned workers, unsigned connections, Clock::duration interval, int rounds);

}  // namespace herd::bench
