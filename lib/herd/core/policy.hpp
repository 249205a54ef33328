// The policy core: what the manager knows about its pool (PoolState, in pool_state.hpp), what
// it learns (Event, folded in by apply) and what it decides to do (Action, from plan; both in
// events.hpp). Pure: no clock, no syscalls, no logging; time is an argument and randomness
// (jitter) comes from a seed in the state, so every rule is a unit test on a fake clock.
//
// The shell (Manager) turns OS input into events, calls plan() and turns every action into one
// syscall and one log line, then applies what happened as an event. Nothing here is mutated by plan().
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/events.hpp>
#include <herd/core/pool_state.hpp>
#include <herd/hooks.hpp>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herd {

/// Fold an event into the state.
void apply(PoolState& state, const Event& event, const Options& options, TimePoint now);

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

/// What after_reap is told (WorkerEvent::exit) for an exit classify() put in these words.
WorkerExit exit_of(std::string_view classified);

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
/// When a heartbeat counts as seen: now for a record, the page's stamp clamped to
/// [w.last_heartbeat, now] for a beat read from the worker's page.
TimePoint beat_time(const WorkerRecord& w, const HeartbeatSeen& beat, TimePoint now);

/// A memory sample that changes only the worker's latest figure (under the limit as before, or
/// over it as before, its window running on): nothing for plan() to decide anew.
bool is_routine(const PoolState& state, const MemorySampled& sample, const Options& options);

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
