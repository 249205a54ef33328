// The policy core: what the manager knows about its pool (PoolState), what it learns (Event,
// folded in by apply) and what it decides to do (Action, from plan). Pure: no clock, no
// syscalls, no logging; time is an argument and randomness (jitter) comes from a seed in the
// state, so every rule is a unit test on a fake clock.
//
// The shell (Manager) turns OS input into events, calls plan() and turns every action into one
// syscall and one log line, then applies what happened as an event. Nothing here is mutated by plan().
#pragma once

#include <herd/config/options.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
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

// Events: what the manager learns.
struct Spawned { int pid; int slot; unsigned generation; };
struct SpawnFailed { int slot; };
struct HeartbeatSeen {
    int pid;
    std::optional<std::uint64_t> requests;
    bool record = true;   // false: declared ready by time (DeclareReady), no record was read
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

/// Fold an event into the state.
void apply(PoolState& state, const Event& event, const Options& options, TimePoint now);

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

/// Decide what to do now.
Actions plan(const PoolState& state, const Options& options, TimePoint now);

/// Every time at which plan() acts on one worker without a new event; empty: no such time.
/// plan() decides by these and next_deadline() wakes at the earliest of them, so a rule has
/// one deadline in one place.
struct WorkerDeadlines {
    std::optional<TimePoint> escalate;   // leaving: KILL at --kill-timeout after TERM, else --graceful-timeout after QUIT
    std::optional<TimePoint> boot;       // booting: KILL at --boot-timeout unless ready (by time) first
    std::optional<TimePoint> silence;    // ready and watched: retired at --heartbeat-timeout after its last heartbeat
    std::optional<TimePoint> ready;      // booting, heartbeats not required: ready once it ran --ready-after
    std::optional<TimePoint> max_age;    // not leaving: due for recycling at its jittered --max-worker-age
    std::optional<TimePoint> max_memory; // not leaving, over --max-worker-memory: due at the end of the window
    friend bool operator==(const WorkerDeadlines&, const WorkerDeadlines&) = default;
};
WorkerDeadlines deadlines(const WorkerRecord& worker, const Options& options);

/// The pool's own deadlines.
struct PoolDeadlines {
    std::optional<TimePoint> backoff_end;       // spawns resume
    std::optional<TimePoint> rollout_timeout;   // --upgrade-timeout since the rollout was asked for
    std::optional<TimePoint> hold_end;          // the earliest held slot may be refilled (a `wait` has no end)
    friend bool operator==(const PoolDeadlines&, const PoolDeadlines&) = default;
};
PoolDeadlines deadlines(const PoolState& state, const Options& options);

/// When plan() may next decide something new without a new event: the earliest deadline still
/// ahead, or now if one has passed and plan() has something to do about it. A deadline that has
/// passed and asks for nothing (a backoff that ended, an old worker waiting for its replacement)
/// does not wake the manager again and again.
TimePoint next_deadline(const PoolState& state, const Options& options, TimePoint now);

/// How a worker's exit reads in the log and status: "crashed (signal 9)", "retired (scaled down)", ...
/// `stop_signal` is what the manager sends to retire a worker (Options::stop_signal): dying of
/// it once asked (or exiting 128 + its number, as shells and the JVM do) is an expected exit.
std::string classify(const WorkerRecord& worker, int wait_status, int stop_signal = SIGQUIT);

/// Exec mode's readiness without heartbeats: --ready-after is set, heartbeats are not required
/// (--heartbeat auto or off, or --heartbeat-timeout 0), and this booting worker has run that long.
bool ready_by_time(const WorkerRecord& worker, const Options& options, TimePoint now);

/// Is this worker's silence watched (--heartbeat-timeout)? Always with --heartbeat required,
/// from its first record on with auto, never with off or a timeout of 0.
bool watches_silence(const WorkerRecord& worker, const Options& options);

/// Does this worker's exit count toward --restart-limit? Nobody asked for it, or it hung; and
/// the manager was not shutting down (then every exit is expected).
bool is_failure(const PoolState& state, const WorkerRecord& worker);

/// Has this worker sent more malformed heartbeat records than an honest worker ever would? It
/// is then retired (replaced first, as when it is too old) and its exit counts as a failure.
bool has_bad_channel(const WorkerRecord& worker);

/// Has this worker's own memory stayed over --max-worker-memory for the whole window? It is
/// then retired (replaced first, as when it is too old).
bool is_over_memory(const WorkerRecord& worker, TimePoint now);

/// A heartbeat that only moves a deadline later: nothing for plan() to decide anew.
bool is_routine(const PoolState& state, const HeartbeatSeen& beat);

/// Running with its target of ready workers.
bool at_target(const PoolState& state);

/// Running, no rollout, exactly the target of workers, each ready and none leaving: a scale
/// (control socket) has finished.
bool is_settled(const PoolState& state);

/// Running, no rollout, every worker ready: a quiet moment to prepare the next spawn ahead.
bool is_steady(const PoolState& state);

/// A pool that never had a ready worker failed past --restart-limit again after one backoff:
/// plan() exits 3 (a broken deploy must be visible, not spin). Never when !backs_off.
bool gives_up(const PoolState& state, const Options& options, TimePoint now);

/// Unexpected exits within the --restart-limit window ending now.
std::size_t failures_within(const PoolState& state, const Options& options, TimePoint now);

/// Live workers that are ready.
std::size_t ready_count(const PoolState& state);

inline constexpr Duration backoff_base = std::chrono::milliseconds(500);
inline constexpr Duration backoff_cap = std::chrono::seconds(30);
inline constexpr unsigned max_workers = 4096;
/// A worker's channel is bad past this many malformed records, or bytes of them, in its life: a
/// stray line is forgiven, a stream of them is not.
inline constexpr std::uint64_t max_bad_records = 10;
inline constexpr std::uint64_t max_bad_bytes = 4096;

}  // namespace herd
