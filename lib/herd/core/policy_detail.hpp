// What the policy core's files share and its callers do not need: the jitter source and the
// test of a deadline. Pure, as the core is.
#pragma once

#include <herd/core/policy.hpp>

#include <cstdint>
#include <optional>

namespace herd::detail {

// splitmix64: a tiny, good enough jitter source that keeps plan() and apply() deterministic.
inline std::uint64_t next_random(std::uint64_t& seed)
{
    std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline double unit_random(std::uint64_t seed)
{
    return double(next_random(seed) >> 11) / double(1ull << 53);
}

// Has this deadline come?
inline bool reached(const std::optional<TimePoint>& deadline, TimePoint now)
{
    return deadline && now >= *deadline;
}

// Every deadline of a pool at once: the earliest still ahead of now, and whether one has passed
// (next_deadline() wakes now for it only if plan() has something to do).
struct Upcoming {
    std::optional<TimePoint> next;
    bool passed = false;
};
Upcoming upcoming(const PoolState& state, const Options& options, TimePoint now);

}  // namespace herd::detail
