// Spreading a periodic reading of every worker over its period (--max-worker-memory's samples of
// /proc/PID/smaps_rollup): a few workers at every tick instead of all of them at once, so that a
// pool of a thousand costs no burst that holds up heartbeats and signals. Pure.
#pragma once

#include <herd/core/supervision.hpp>

#include <cstddef>

namespace herd {

/// The interval between two ticks when `workers` are each read once per `period`: period/workers,
/// no shorter than `min_tick` (nor longer than `period`). No workers: `period`.
Duration sample_tick(std::size_t workers, Duration period, Duration min_tick);

/// How many of `workers` to read at each tick so that each is read once per `period`:
/// ceil(workers x tick / period), at least 1 when there are workers, at most `workers`.
std::size_t samples_per_tick(std::size_t workers, Duration period, Duration tick);

/// The next `count` of `size` positions from `cursor` (round robin): [first, first + count)
/// modulo size, and the cursor after them. A shrunk list starts over inside it.
struct SampleRange {
    std::size_t first = 0;
    std::size_t count = 0;
    std::size_t next = 0;
};
SampleRange next_samples(std::size_t cursor, std::size_t size, std::size_t count);

}  // namespace herd
