// The floors herd-bench measures each figure against, in the same run: a fork and a pipe round
// trip, a reap and a pipe round trip, a pipe round trip.
#pragma once

#include "bench.hpp"

namespace herd::bench {

// Raw fork + pipe round trip: the child writes one byte, the parent reads it.
Stats raw_fork_pipe(int samples);

// The floor of a respawn that the pre-forked standby serves (no fork): reap a child killed with
// SIGKILL, then a pipe round trip to a process that exists already (the standby woken with its
// slot, answering with its first heartbeat). Also the pipe round trip alone: the floor of a
// request answered by a process that is already running (control status, scale +1 by the standby).
struct Floors {
    Stats reap_pipe;
    Stats pipe;
};

Floors measure_floors(int samples);

}  // namespace herd::bench
