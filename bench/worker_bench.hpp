// herd-bench's parts on test-worker: spawn to ready, respawn after kill -9, hang detection, the
// manager's CPU and RSS under heartbeats, and the control socket's latency.
#pragma once

#include "bench.hpp"

#include <string>
#include <vector>

namespace herd::bench {

// Spawn to ready

struct SpawnResult {
    std::vector<double> ms;   // from starting the manager until the Nth ready line
    long rss_kb = -1;          // manager RSS once all were ready (and 1 s of heartbeats later)
    std::string error;
};

SpawnResult spawn_to_ready(unsigned workers, int runs, bool measure_rss);

// Respawn after kill -9

struct RespawnResult {
    std::vector<double> ms;
    std::string error;
};

RespawnResult respawn_latency(unsigned workers, int kills);

// Hang detection overshoot

struct HangResult {
    std::vector<double> log_ms;    // X - Y from "has no heartbeat for X (timeout Y)"
    std::vector<double> wall_ms;   // no-heartbeat line read - "stops heartbeating" line read - Y
    std::string error;
};

HangResult hang_overshoot(unsigned workers);

// Manager CPU and RSS under heartbeats

struct LoadResult {
    double cpu_percent = NAN;
    long rss_kb = -1;
    double ready_ms = NAN;
    std::string error;
};

/// `workers` heartbeating every `interval`: the manager's CPU over `window`.
LoadResult manager_load(unsigned workers, Clock::duration window, Clock::duration interval = std::chrono::milliseconds(100));

// Control socket: a status round trip, and a scale answered when the pool has settled

struct ControlResult {
    std::vector<double> status_ms;      // status request to its answer, one connection
    std::vector<double> scale_up_ms;    // scale +1 to its answer: fork, first heartbeat, answer
    std::vector<double> scale_down_ms;  // scale -1 to its answer: QUIT, exit, reap, answer
    std::string error;
};

ControlResult control_latency(unsigned workers, int rounds);

}  // namespace herd::bench
