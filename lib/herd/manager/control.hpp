// The control socket's protocol (DESIGN.md §6), pure: requests parsed from one JSON line each,
// answers rendered as one JSON line each, status from the pool state and the manager's history.
// No I/O here (that is control_server.hpp), so every rule is a unit test.
//
// Requests: {"command":"status"}, {"command":"scale","workers":N} or {"command":"scale","delta":K},
// {"command":"reload"}, {"command":"upgrade"}, {"command":"stop","graceful":true|false}.
// Several pools (DESIGN.md §7a) add "pool":"NAME" to status, scale and stop (stop: that pool only),
// and {"command":"restart","pool":NAME}, {"command":"start","pool":NAME},
// {"command":"plan","pool":NAME} (show) or {"command":"plan","pool":NAME,"plan":"restart, wait"}.
// Answers: {"ok":true,...} or {"ok":false,"error":"one sentence"}. Status and the answers about one
// pool are in control_status.hpp.
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/command.hpp>
#include <herd/core/policy.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herd::control {

/// The command a client waits on for a reload or an upgrade.
inline Command command_for(Reason rollout) { return rollout == Reason::upgrade ? Command::upgrade : Command::reload; }

/// One request line; the error names what is wrong with it ("unknown command 'scael'", ...).
std::variant<Request, std::string> parse_request(std::string_view line);

/// A pool's name as requests and the config file's [pool.NAME] give it: 1 to 64 letters, digits, '-' or '_'.
bool is_pool_name(std::string_view name);
constexpr std::size_t max_pool_name = 64;
/// The longest plan text a request may carry.
constexpr std::size_t max_plan_text = 1024;

/// {"ok":false,"error":...}
std::string error_answer(std::string_view why);

/// One worker's exit, as status reports it.
struct ExitRecord {
    int pid = 0;
    std::string outcome;      // "crashed (signal 9)", "retired (scaled down)", ...
    Duration ran{0};
    TimePoint at{};
    friend bool operator==(const ExitRecord&, const ExitRecord&) = default;
};

/// How a reload or an upgrade ended.
struct RolloutRecord {
    Reason kind = Reason::reload;   // reload or upgrade
    unsigned generation = 0;
    bool failed = false;
    std::string why;                // failed: the reason, one sentence
    TimePoint at{};
    friend bool operator==(const RolloutRecord&, const RolloutRecord&) = default;
};

/// What status reports beyond the pool state; handed over to the next image on upgrade.
struct History {
    static constexpr std::size_t exits_per_slot = 5;
    std::map<int, std::deque<ExitRecord>> exits;          // by slot, newest first
    std::optional<RolloutRecord> last_rollout;
    std::map<std::string, std::uint64_t> rollouts;        // "upgrade complete", "reload failed", ...

    void add(int slot, ExitRecord exit);
    void add(RolloutRecord rollout);
    friend bool operator==(const History&, const History&) = default;
};

/// The manager's own facts for status.
struct ManagerFacts {
    int pid = 0;
    std::string name;
    std::string binary;
    TimePoint started{};
    std::optional<TimePoint> checking;   // an upgrade's pre-flight check runs, since then
    Phase phase = Phase::running;        // stopping: the manager's own graceful or fast stop
};

/// A manager of one pool: {"ok":true,"manager":{...},"workers":[...],"pools":[{"name":"main",...}]}
/// (the phase is the pool's). Several pools: control_status.hpp.
std::string status_answer(const PoolState& state, const Options& options, const ManagerFacts& facts,
                          const History& history, TimePoint now);

/// Answers of operations that finished: {"ok":true,"target":N,"ready":N}, and so on.
std::string scale_answer(const PoolState& state);
std::string rollout_answer(Reason kind, unsigned generation, Duration took);
std::string stop_answer(int exit_code);

}  // namespace herd::control
