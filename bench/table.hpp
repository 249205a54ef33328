// herd-bench's table: each figure beside the floor it is measured against, and its target.
#pragma once

#include "floors.hpp"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace herd::bench {

// Table

// What a figure is measured against: the least the same work can cost on this machine, measured
// in this run, so that a target holds on a slow machine as on a fast one.
enum class Floor {
    none,        // not a time, or nothing to compare with
    fork_pipe,   // a fork and a pipe round trip: a new worker
    reap_pipe,   // a reap and a pipe round trip: a worker replaced by the standby (no fork)
    pipe,        // a pipe round trip: a process that runs already answers
    interval,    // the heartbeat interval of the run (10 ms): how late a hang can be seen
};

struct FloorValues {
    Stats fork_pipe;
    Floors floors;
    double interval_ms = 10;

    const char* name(Floor f) const
    {
        switch (f) {
        case Floor::fork_pipe: return "fork+pipe";
        case Floor::reap_pipe: return "reap+pipe";
        case Floor::pipe: return "pipe";
        case Floor::interval: return "interval";
        case Floor::none: break;
        }
        return "";
    }
    double value(Floor f, bool p99) const
    {
        const auto pick = [&](const Stats& s) { return p99 ? s.p99 : s.p50; };
        switch (f) {
        case Floor::fork_pipe: return pick(fork_pipe);
        case Floor::reap_pipe: return pick(floors.reap_pipe);
        case Floor::pipe: return pick(floors.pipe);
        case Floor::interval: return interval_ms;
        case Floor::none: break;
        }
        return NAN;
    }
};

struct Row {
    std::string figure;
    double value = NAN;
    std::string unit;              // "ms", "MB", "%", "x" (a ratio), "" (a count)
    Floor floor = Floor::none;
    bool p99 = false;              // measured against the floor's p99 (else its p50)
    double scale = 1;              // the floor times this (64 workers: 64 forks)
    double max_ratio = NAN;        // target: value <= max_ratio x floor
    double max_value = NAN;        // target in the figure's own unit (memory, errors, the contract's budgets)
};

struct Verdict {
    std::string target;
    std::optional<bool> met;   // nothing: no target, or no value (an error says why)
    double ratio = NAN;
};

Verdict judge(const Row& row, const FloorValues& f);

// The table; returns how many targets were missed.
int print_table(const FloorValues& f, const std::vector<Row>& rows);

}  // namespace herd::bench
