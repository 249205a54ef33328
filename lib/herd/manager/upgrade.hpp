// Zero-downtime upgrade (USR2): the manager execs the new binary in place, keeping its pid, its
// listening sockets, its workers and their heartbeat pipes; the new image adopts them from a
// hand-over record and rolls a new generation in.
//
// Hand-over record: text in a memfd whose number is in HERD_HANDOVER_FD. Versioned: the first
// line is "herd-handover V"; a binary states which versions it can adopt (`--check
// --adopt-check V`, run before every upgrade), and going back to the previous binary the record
// is written in the version that binary wrote. One item per line, "key value...", then "end".
// Times are steady_clock (CLOCK_MONOTONIC) nanoseconds, which exec does not reset; "-" is none.
//
// Version 1: the one pool, the manager, the workers.
//   generation G / last_generation G / target N / seed S / ever_ready 0|1
//   backoff LEVEL UNTIL_NS MARK_NS (-1: none) / failure T_NS / exits KIND_WITH_UNDERSCORES N
//   listener FD FAMILY ADDRESS / pid_file FD PATH / previous_binary FD / binary PATH / started T_NS
//   rollback GENERATION WHY...   (the new binary failed and this is the previous one again)
//   worker pid=.. slot=.. gen=.. fd=.. spawned=.. ready=.. beat=.. requests=.. age_limit=..
//          request_limit=.. reason=.. quit=.. term=.. kill=.. kill_reason=.. [beating=1] [out=..] [err=..]
//   (out=FD: the read end of the worker's stdout pipe, and of its stderr too unless err=FD names
//   a pipe of its own (output_pipes.hpp); exec mode's herd wrote out= from the start, fork mode
//   and err= came later. Readers skip worker fields they do not know, so fields were added
//   without a new version: an image that does not know err= leaves that pipe unread.)
//   page=FD: the worker's heartbeat page (os/beat_page.hpp), written in every version. A worker
//   without one beats on its pipe. An image that does not know page= leaves the page unread (and
//   its descriptor open): the worker's pipe then carries only its first heartbeat and its request
//   limit, so that image retires it as silent after --heartbeat-timeout, unless a rollback's
//   revert retires it first, as it does every worker of the failed generation.
// Version 2 adds the control socket: control FD PATH / client FD OPERATION / rollouts KIND_RESULT N
//   last_rollout KIND GENERATION FAILED AT_NS WHY... / slot_exit SLOT PID RAN_MS AT_NS OUTCOME...
//   upgrade_requested T_NS
// Version 3: several pools (supervisor.hpp). The manager's items come first (pid_file ... control
// ... slot_exit, and "failed NAME": the pool whose failure stops the manager, Supervisor::failed),
// then one block per pool, in order: "pool NAME" opens it, and every pool item up to the next
// "pool" line is this pool's:
//   phase running|stopping_graceful|stopping_fast   (a pool herdctl stopped stops while the manager runs)
//   stage STAGE / reported STAGE / wanted N / step I / runs N / last_restart T_NS|- / restart_pending 0|1
//   why TEXT (failed: why) / held SLOT UNTIL_NS|- ("-": until `herdctl restart POOL`)
//   then version 1's pool items: generation ... exits, its listener lines, its worker lines.
//   Channels and outputs stay keyed by worker pid (pids are unique across pools). A pool item
//   before the first "pool" line is an error, not pool `main`: a version 3 writer names every
//   pool. Readers of version 3 skip items they do not know (versions 1 and 2 refuse them), so a
//   later image may add items without a new version.
//   Not written: the manager's phase (it execs only while running: a shutdown that begins during
//   the pre-flight check abandons the upgrade), a pool's rollout (the upgrade replaces every
//   worker), its options and supervision (the new image reads them from its own configuration,
//   matching pools by name) and what follows from them (PoolState::backs_off). A pool the new
//   configuration lacks is still in the record: the manager decides what becomes of it.
// Decoding version 1 or 2 gives one pool named `main` holding `pool` and `listeners`; encoding
// version 1 or 2 writes the one pool the old way (without held slots) and refuses several.
#pragma once

#include <herd/manager/control.hpp>
#include <herd/core/policy.hpp>
#include <herd/core/supervisor.hpp>
#include <herd/worker/worker.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd {

inline constexpr unsigned handover_version = 3;
inline constexpr const char* handover_env = "HERD_HANDOVER_FD";

/// One pool as the record carries it: Pool (supervisor.hpp) without its options and supervision,
/// with the sockets it serves.
struct HandoverPool {
    std::string name;
    PoolState state;                             // not handed over: rollout, backs_off, a worker's memory
                                                 // and bad-record counts
    PoolStage stage = PoolStage::running;
    PoolStage reported = PoolStage::running;
    unsigned wanted = 0;                         // the target the operator set
    std::size_t step = 0;                        // its plan's next step
    unsigned runs = 0;                           // its plan's whole runs so far
    std::optional<TimePoint> last_restart;
    bool restart_pending = false;
    std::string why;                             // failed: why
    std::vector<Listener> listeners;
};

/// Everything a manager hands to the image that replaces it.
struct Handover {
    unsigned version = handover_version;
    // Version 3: the pools in order. Empty when encoding: `pool` and `listeners` are one pool
    // named `main`. Decoding fills it for every version (one pool `main` for 1 and 2) and sets
    // `pool` and `listeners` to the first pool's.
    std::vector<HandoverPool> pools;
    std::optional<std::string> failed;           // version 3: the name of the pool whose failure stops
                                                 // the manager (Supervisor::failed)
    PoolState pool;                              // versions 1 and 2: the one pool
    std::vector<Listener> listeners;             // ... and its sockets
    std::vector<std::pair<int, int>> channels;   // worker pid -> heartbeat read fd
    int pid_file_fd = -1;
    std::string pid_file_path;
    int previous_binary_fd = -1;                 // the binary to go back to if the new one fails
    std::string binary;                          // the path the manager was started from
    TimePoint started{};                         // when the manager first started
    unsigned rollback_from = 0;                  // a failed generation, when this is a rollback
    std::string rollback_why;
    // Version 2
    int control_fd = -1;                         // the control socket's listening descriptor
    std::string control_path;
    std::vector<std::pair<int, Command>> clients;   // connections waiting for an operation's outcome
    control::History history;                    // what status reports: exits by slot, rollouts
    TimePoint upgrade_requested{};               // when the upgrade was asked for (USR2 or herdctl)
    std::vector<std::pair<int, int>> outputs;    // worker pid -> output pipe read fd: stdout's, then stderr's
    std::vector<std::pair<int, int>> pages;      // worker pid -> heartbeat page memfd (any version: page=)
};

/// Can this binary adopt a hand-over of version `version` (1: no control socket; 2: with it;
/// 3: several pools)?
bool can_adopt(unsigned version);

/// The record's text; throws std::invalid_argument for several pools in version 1 or 2, or a
/// pool name that cannot be written (empty, a line break, twice).
std::string encode(const Handover& handover);

/// Parse a record; throws std::invalid_argument naming the line.
Handover decode_handover(std::string_view text);

/// A pool of the supervisor as the record carries it, serving these sockets.
HandoverPool handover_pool(const Pool& pool, std::vector<Listener> listeners);

/// The adopting image's pool: `pool` as its configuration makes it (make_pool), with the state
/// and the stage the record hands over. The target comes from the record (an upgrade replaces the
/// binary, not the pool size); backs_off from this configuration's supervision (a failed pool
/// never backs off); the plan's position only if it fits this configuration's plan, else the
/// plan starts over. The sockets are the caller's to adopt.
void adopt_pool(Pool& pool, const HandoverPool& from);

/// USR2's pre-flight arguments: the running ones (argv[0] left out) with `--check --adopt-check V`
/// before a `--` (exec mode's command follows it and must not get them).
std::vector<std::string> preflight_args(const std::vector<std::string>& argv, unsigned version);

/// Absolute path of the program as started (argv[0] resolved against PATH and the working
/// directory, symlinks kept: a deploy that switches a symlink is picked up by USR2).
std::string resolve_binary(const std::string& argv0);

}  // namespace herd
