// Zero-downtime upgrade (USR2): the manager execs the new binary in place, keeping its pid, its
// listening sockets, its workers and their heartbeat pipes; the new image adopts them from a
// hand-over record and rolls a new generation in.
//
// Hand-over record: text in a memfd whose number is in HERD_HANDOVER_FD. Versioned: the first
// line is "herd-handover V"; a binary states which versions it can adopt (`--check
// --adopt-check V`, run before every upgrade). One item per line, "key value...":
//   generation G / last_generation G / target N / seed S / ever_ready 0|1
//   backoff LEVEL UNTIL_NS MARK_NS (-1: none) / failure T_NS / exits KIND_WITH_UNDERSCORES N
//   listener FD ADDRESS / pid_file FD PATH / previous_binary FD / binary PATH / started T_NS
//   rollback GENERATION WHY...   (the new binary failed and this is the previous one again)
//   version 2: control FD PATH / client FD OPERATION / rollouts KIND_RESULT N
//              last_rollout KIND GENERATION FAILED AT_NS WHY... / slot_exit SLOT PID RAN_MS AT_NS OUTCOME...
//              upgrade_requested T_NS
//   worker pid=.. slot=.. gen=.. fd=.. spawned=.. ready=.. beat=.. requests=.. age_limit=..
//          request_limit=.. reason=.. quit=.. term=.. kill=.. kill_reason=.. [out=..] [err=..]
//   (out=FD: the read end of the worker's stdout pipe, and of its stderr too unless err=FD names
//   a pipe of its own (output_pipes.hpp); exec mode's herd wrote out= from the start, fork mode
//   and err= came later. Readers of version 2 ignore fields they do not know, so the version
//   stays 2: an image that does not know err= leaves that pipe unread.)
//   end
// Times are steady_clock (CLOCK_MONOTONIC) nanoseconds, which exec does not reset.
#pragma once

#include <herd/manager/control.hpp>
#include <herd/core/policy.hpp>
#include <herd/worker/worker.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd {

inline constexpr unsigned handover_version = 2;
inline constexpr const char* handover_env = "HERD_HANDOVER_FD";

/// Everything a manager hands to the image that replaces it.
struct Handover {
    unsigned version = handover_version;
    PoolState pool;
    std::vector<std::pair<int, int>> channels;   // worker pid -> heartbeat read fd
    std::vector<Listener> listeners;
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
    std::vector<std::pair<int, control::Op>> clients;   // connections waiting for an operation's outcome
    control::History history;                    // what status reports: exits by slot, rollouts
    TimePoint upgrade_requested{};               // when the upgrade was asked for (USR2 or herdctl)
    std::vector<std::pair<int, int>> outputs;    // worker pid -> output pipe read fd: stdout's, then stderr's
};

/// Can this binary adopt a hand-over of version `version` (1: no control socket; 2: with it)?
bool can_adopt(unsigned version);

/// The record's text.
std::string encode(const Handover& handover);

/// Parse a record; throws std::invalid_argument naming the line.
Handover decode_handover(std::string_view text);

/// USR2's pre-flight arguments: the running ones (argv[0] left out) with `--check --adopt-check V`
/// before a `--` (exec mode's command follows it and must not get them).
std::vector<std::string> preflight_args(const std::vector<std::string>& argv, unsigned version);

/// Absolute path of the program as started (argv[0] resolved against PATH and the working
/// directory, symlinks kept: a deploy that switches a symlink is picked up by USR2).
std::string resolve_binary(const std::string& argv0);

}  // namespace herd
