// The policy core's vocabulary with the shell: the events the manager learns (folded in by apply)
// and the actions it takes (decided by plan). Pure values, as the core is.
#pragma once

#include <herd/core/pool_state.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace herd {

// Events: what the manager learns.
struct Spawned { int pid; int slot; unsigned generation; };
struct SpawnFailed { int slot; };
struct HeartbeatSeen {
    int pid;
    std::optional<std::uint64_t> requests;
    bool record = true;   // false: declared ready by time (DeclareReady), no record was read
    // When the worker beat, read from its heartbeat page: last_heartbeat becomes this stamp, clamped
    // to [the previous last_heartbeat, now] (a page's word is never trusted beyond what the manager
    // saw). None: a record on the pipe, so the beat was now.
    std::optional<TimePoint> at = std::nullopt;
};
struct HeartbeatMalformed { int pid; std::uint64_t records; std::uint64_t bytes; };   // more of them, since the last
struct Signalled { int pid; int signal; Reason reason; };
struct WorkerExited { int pid; int status; };      // raw wait status
struct Scale { std::optional<unsigned> workers; int delta = 0; };
struct StopRequested { bool graceful; };
struct BackoffStarted { TimePoint until; unsigned level; };
struct ManagerResumed {};
struct RolloutStarted {                            // a new generation replaces every worker
    Reason kind;
    std::optional<TimePoint> since = std::nullopt; // asked for then (an upgrade: before the exec), else now
};
struct RolloutEnded { bool reverted; };            // reverted: the previous generation is current again
struct MemorySampled { int pid; std::uint64_t bytes; };   // a worker's own memory (--max-worker-memory)
using Event = std::variant<Spawned, SpawnFailed, HeartbeatSeen, HeartbeatMalformed, Signalled, WorkerExited, Scale,
                           StopRequested, BackoffStarted, ManagerResumed, RolloutStarted, RolloutEnded, MemorySampled>;

// Actions: what the manager does; each is one syscall and one log line in the shell.
struct Spawn {
    int slot;
    unsigned generation;
    friend bool operator==(const Spawn&, const Spawn&) = default;
};
struct Retire {                  // SIGQUIT (exec mode: --stop-signal): finish the current work, then exit
    int pid;
    Reason reason;
    Duration elapsed{0};         // no_heartbeat: the silence
    friend bool operator==(const Retire&, const Retire&) = default;
};
struct Kill {                    // SIGKILL
    int pid;
    Reason reason;               // boot_timeout, graceful_timeout, kill_timeout
    Duration elapsed{0};
    friend bool operator==(const Kill&, const Kill&) = default;
};
struct DeclareReady {            // exec mode, heartbeats not watched: a program is ready once it ran --ready-after
    int pid;
    Duration ran;
    friend bool operator==(const DeclareReady&, const DeclareReady&) = default;
};
struct Terminate {               // SIGTERM: fast shutdown
    int pid;
    friend bool operator==(const Terminate&, const Terminate&) = default;
};
struct BackOff {
    Duration delay;
    unsigned level;              // 0 for the first backoff of a series, +1 for each next one
    std::size_t failures;        // unexpected exits within the restart window
    bool spawn_failed = false;   // for a failed spawn, before the restart limit was exceeded
    friend bool operator==(const BackOff&, const BackOff&) = default;
};
struct Exit {
    int code;
    std::size_t failures = 0;    // exit 3: the failures that made the manager give up
    friend bool operator==(const Exit&, const Exit&) = default;
};
struct RolloutDone {             // every worker now belongs to the new generation
    Reason kind;
    unsigned generation;
    Duration took;
    friend bool operator==(const RolloutDone&, const RolloutDone&) = default;
};
struct RolloutFailed {           // the new generation did not come up: go back to the previous one
    Reason kind;
    unsigned generation;
    std::string why;
    friend bool operator==(const RolloutFailed&, const RolloutFailed&) = default;
};
using Action = std::variant<Spawn, Retire, Kill, Terminate, BackOff, Exit, RolloutDone, RolloutFailed, DeclareReady>;
using Actions = std::vector<Action>;

}  // namespace herd
