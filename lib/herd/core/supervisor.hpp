// The supervisor of several pools (DESIGN.md §7a): Erlang/OTP's supervisor with the director
// library's restart plans, made pure. One Supervisor holds an ordered list of pools; each pool is
// today's PoolState with its own Options and Supervision, driven by today's apply() and plan().
// The supervisor adds what lies between pools: their order, restart types, restart plans, the
// strategy, a failed pool, and the operator's commands. Pure like policy.hpp: no clock, no
// syscalls, no logging.
//
// The shell
// - applies what it learns with apply(supervisor, event, now): a worker's events tagged with
//   its pool (PoolEvent; pool_of(pid) finds it), the manager's shutdown, herdctl's commands;
// - executes plan(supervisor, now): each PoolAction as today for that pool (its Options, its
//   log line with the pool's name) and feeds the outcome back as a PoolEvent (Signalled,
//   BackoffStarted, RolloutEnded after RolloutDone/RolloutFailed, ...); the stage actions
//   (PoolStarted, PoolReady, PoolStopped, PoolFailed) are one log line each, acknowledged with
//   PoolReported so that each is planned once; Exit ends the manager;
// - sleeps until next_deadline(supervisor, now), or the next event.
//
// The rules:
// - Order. Pools start in order: a pool's workers are not spawned before every pool ahead of it
//   has been ready (all its workers ready, at_target) once since it started; a pool stopped by
//   the operator does not hold the ones after it back. A shutdown (graceful or fast) stops them
//   in reverse order: a pool is asked to stop (today's StopRequested) once every pool after it
//   has no worker left. Exit{0} when every pool is empty; a pool's own Exit never ends the manager.
//   Until its turn a pool serves on under its rules (its exits are still restarted).
// - Restart types decide whether an unexpected exit needs a restart (exit_kind, needs_restart):
//   permanent any; transient an abnormal one (non-zero status, a signal, retired for no heartbeat
//   or bad heartbeat records, killed at the boot timeout); temporary none. An exit that needs no
//   restart closes its slot: the pool's target shrinks by one and the exit is not counted against
//   --restart-limit. An expected exit (retired by the manager: scaled down, max age, reload, shutdown...)
//   is no question at all, as with one pool. A spawn that fails is an abnormal exit of its slot.
// - Plans (director). An exit that needs a restart in a pool with a plan takes the plan's next
//   step: `restart` refills the slot now, `restart D` no earlier than D after the exit (a held
//   slot), `wait` holds the slot until RestartPool, `stop` fails the pool, `close` closes the slot.
//   After the last step the plan starts over; once it has run `count` times the next such exit
//   fails the pool. An exit a whole --restart-limit window after the previous one starts the plan
//   over with a fresh count. A plan replaces the restart limit: the pool never backs off.
// - Without a plan, past --restart-limit (more than its count of unexpected exits within its
//   window, as with one pool): on_restart_limit backoff is today's ladder, and where one
//   pool would exit 3 (never ready) plan() says PoolFailed and the pool fails when the shell
//   reports it (PoolReported failed); wait holds every empty slot until RestartPool; stop fails
//   the pool.
// - Strategy, when an exit needs a restart and is refilled (a `restart` step or no plan; not
//   `wait`, `close`, `stop`, nor past the limit with wait or stop), while the manager is not
//   shutting down: `one` refills the slot only;
//   `rest` also restarts every pool after the exit's pool; `all` every other pool. A restarted
//   pool is replaced rolling, as a reload is (a Rollout of kind Reason::restart: new workers ready
//   before the old retire; RolloutDone or RolloutFailed end it), in order: a pool's roll begins
//   once every pool ahead of it is at its target with no rollout running. A temporary pool is
//   stopped instead, and stays stopped. Pools waiting to start, stopping, stopped or failed are
//   not touched, nor a pool already rolling (a reload, an upgrade or a restart replaces it anyway).
// - A failed pool (plan step stop, plan count used up, on_restart_limit stop, or never ready)
//   refills nothing more (its held slots and backoff are dropped, as a stopping pool's are); the
//   supervisor stops every pool gracefully in reverse order (a fast shutdown still overrides it)
//   and exits 3. PoolFailed names the pool and why, once per failed pool.
// - The operator (herdctl): StopPool stops one pool (graceful unless asked otherwise; the order
//   does not apply); StartPool starts a stopped (or stopping) pool again; RestartPool rolls a
//   pool, releases its held slots and forgets its counted failures and backoff (a stopped pool:
//   as StartPool); StartPool and RestartPool reopen closed slots (the target the operator last
//   set comes back); ChangePlan replaces a pool's plan (nullopt: none) and starts it over;
//   ScalePool (or a PoolEvent Scale) sets the target the operator wants. A PoolEvent StopRequested
//   is a StopPool. A command naming no pool, or a pool in a stage it does not apply to (StartPool
//   on a running pool, RestartPool on a waiting or failed one, either while the manager shuts
//   down) changes nothing; the shell checks the stage to answer the client.
//   Finished when: StopPool at PoolStopped, StartPool at PoolReady, RestartPool at RolloutDone or
//   RolloutFailed of kind restart (at once if the pool had no worker to replace).
//
// One pool named `main`, strategy one, no plan, permanent, on_restart_limit backoff, plans and
// decides exactly as today's PoolState and plan() do, apart from the stage actions; its exit 3
// becomes PoolFailed in the same plan, then a graceful stop of what is left, then Exit{3}.
#pragma once

#include <herd/core/command.hpp>
#include <herd/core/policy.hpp>
#include <herd/core/supervision.hpp>
#include <herd/core/supervisor_events.hpp>
#include <herd/core/supervisor_state.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herd {

/// Fold an event into the supervisor: the pool's own state first, then what it means for the
/// pools (restart type, plan, strategy, stages, order).
void apply(Supervisor& supervisor, const SupervisorEvent& event, TimePoint now);

/// Decide what to do now: the stage actions not yet reported, each pool's actions in order, and
/// the manager's Exit once every pool is empty after a shutdown.
SupervisorActions plan(const Supervisor& supervisor, TimePoint now);

/// When plan() may next decide something new without a new event (as next_deadline of one pool).
TimePoint next_deadline(const Supervisor& supervisor, TimePoint now);

/// Every pool the operator did not stop is at its target, none failed, the manager running: the
/// manager is ready (a rollout in progress is not: its own end says when the new generation took over).
bool is_ready(const Supervisor& supervisor);

/// A reload, an upgrade or a restart is replacing some pool's workers.
bool is_rolling(const Supervisor& supervisor);

/// Has a pool got where a command on it asked it to be: scaled (settled at its target), stopped,
/// or started and restarted (running, settled, nothing left to roll)?
bool has_done(const Pool& pool, Command command);

/// How an exit bears on a restart: expected (the manager asked for it, or the pool is stopping),
/// normal (exit status 0, nothing wrong seen) or abnormal (anything else).
enum class ExitKind { expected, normal, abnormal };
ExitKind exit_kind(const PoolState& state, const WorkerRecord& worker, int wait_status);

/// Why a pool that never had a ready worker failed (today's exit 3 of one pool): "no worker ever
/// became ready and 11 exited within 10s".
std::string never_ready(const Pool& pool, std::size_t failures);

/// Does an exit of this kind need a restart, for a pool of this restart type?
bool needs_restart(RestartType type, ExitKind kind);

/// The pools, besides its own, a restart in pool `pool` of `count` touches under `strategy`.
std::vector<std::size_t> touched_by(Strategy strategy, std::size_t pool, std::size_t count);

}  // namespace herd
