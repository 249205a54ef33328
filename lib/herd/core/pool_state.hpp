// The policy core's state: what the manager knows of each worker (WorkerRecord) and of its pool
// (PoolState). Pure values: policy.hpp folds events into them (apply) and decides from them (plan).
#pragma once

#include <herd/config/options.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace herd {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

/// Why a worker is leaving (or left) the pool.
enum class Reason {
    none,            // nobody asked: it exited on its own
    scale_down,      // the target shrank (TTOU, or a scale through the control socket)
    max_age,         // --max-worker-age
    max_requests,    // --max-requests
    reload,          // HUP: replaced by a worker of the new generation
    upgrade,         // USR2: replaced by a worker of the new binary
    shutdown,        // QUIT, TERM or INT to the manager
    no_heartbeat,    // --heartbeat-timeout
    boot_timeout,    // --boot-timeout
    graceful_timeout,// still running --graceful-timeout after QUIT
    kill_timeout,    // still running --kill-timeout after TERM
    bad_heartbeat,   // sent more malformed heartbeat records than max_bad_records or max_bad_bytes
    max_memory,      // --max-worker-memory, for --max-worker-memory-window
    restart,         // a restart of its pool: `herdctl restart POOL`, or the strategy after an exit elsewhere
};

/// "scaled down", "max age", "no heartbeat", ...
std::string to_string(Reason reason);

/// What the manager knows of one worker process.
struct WorkerRecord {
    int pid = 0;
    int slot = 0;
    unsigned generation = 1;
    TimePoint spawned_at{};
    std::optional<TimePoint> ready_at;     // first heartbeat
    bool beating = false;                  // has sent a heartbeat record (--heartbeat auto watches it from then)
    TimePoint last_heartbeat{};
    std::uint64_t requests = 0;            // units of work the worker reported
    std::uint64_t bad_records = 0;         // malformed heartbeat records it sent
    std::uint64_t bad_bytes = 0;           // ... and their bytes
    Duration age_limit{0};                 // jittered --max-worker-age, 0: none
    std::uint64_t request_limit = 0;       // jittered --max-requests, 0: none
    Reason reason = Reason::none;          // why it was asked to leave
    std::optional<TimePoint> quit_at;      // QUIT sent (retire: graceful)
    std::optional<TimePoint> term_at;      // TERM sent (fast shutdown)
    std::optional<TimePoint> kill_at;      // KILL sent
    Reason kill_reason = Reason::none;
    std::uint64_t memory = 0;              // its own memory at the latest sample, bytes
    std::optional<TimePoint> over_memory_since;   // over --max-worker-memory at every sample since
    Duration memory_window{0};             // --max-worker-memory-window when that began

    bool ready() const { return ready_at.has_value(); }
    bool leaving() const { return quit_at || term_at || kill_at; }

    friend bool operator==(const WorkerRecord&, const WorkerRecord&) = default;
};

/// booting, ready, retiring or killed, as status and logs name them.
std::string state_name(const WorkerRecord& worker);

enum class Phase { running, stopping_graceful, stopping_fast };

/// A rolling replacement of every worker by a new generation: HUP (reload), USR2 (upgrade) or
/// the restart of one pool among several (restart: supervisor.hpp).
struct Rollout {
    Reason kind = Reason::reload;     // reload, upgrade or restart
    unsigned from_generation = 0;
    TimePoint started{};
    bool new_ready = false;           // a worker of the new generation has been ready
    friend bool operator==(const Rollout&, const Rollout&) = default;
};

/// Everything the manager decides from.
struct PoolState {
    std::vector<WorkerRecord> workers;   // sorted by pid: find() is a binary search
    unsigned target = 0;
    unsigned generation = 1;          // the generation new workers get
    unsigned last_generation = 1;     // the highest generation ever started (never reused)
    Phase phase = Phase::running;
    std::optional<Rollout> rollout;
    bool ever_ready = false;                 // has any worker ever been ready
    std::deque<TimePoint> failures;          // unexpected exits, newest last
    std::optional<TimePoint> backoff_until;  // no spawns before this
    std::optional<TimePoint> backoff_mark;   // newest failure already answered by a backoff
    unsigned backoff_level = 0;
    bool spawn_failed = false;               // the latest spawn failed (fork or pipe: a resource limit)
    std::uint64_t seed = 0x9e3779b97f4a7c15ull;   // jitter source (splitmix64)
    std::map<std::string, std::uint64_t> exits;   // exits by classification ("crashed", "no heartbeat", ...)
    // Slots left empty on purpose, slot -> no spawn before (TimePoint::max(): until released). The
    // supervisor of several pools holds them (a plan's `restart D` or `wait`); a spawn into the
    // slot ends its hold.
    std::map<int, TimePoint> held;
    // false: past --restart-limit plan() neither backs off nor gives up (exit 3); the supervisor
    // answers the limit itself (a restart plan, or on_restart_limit wait or stop).
    bool backs_off = true;

    const WorkerRecord* find(int pid) const;
    WorkerRecord* find(int pid);
    friend bool operator==(const PoolState&, const PoolState&) = default;
};

}  // namespace herd
