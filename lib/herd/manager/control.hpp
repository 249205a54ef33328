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

// Connections: limits, deadlines and making room (the shell is control_server.cpp)

/// What one connection may cost the manager.
struct Limits {
    std::size_t max_connections = 64;        // open at once; the next one makes room (make_room)
    std::size_t max_request_bytes = 64 * 1024;
    Duration request_timeout{5000};          // a begun request line must end, an answer be taken, within this
    Duration idle_timeout{60000};            // a connection with no request under way is closed after this
    unsigned max_bad_requests = 20;          // in a row: then the connection is answered and closed
};

/// Where a connection stands; each stage but `waiting` has a deadline.
enum class Stage {
    idle,      // no byte of a request yet (since the connect or the last answer)
    reading,   // part of a request line has come, not its end
    waiting,   // an operation runs for it (scale, reload, upgrade, stop): never closed for time
    writing,   // its answer is not taken yet (the client does not read)
};

/// One connection as make_room sees it: its stage and since when.
struct Connection {
    std::uint64_t id = 0;
    Stage stage = Stage::idle;
    TimePoint since{};
};

/// When a connection in `stage` since `since` is closed; nothing while it waits for an operation.
std::optional<TimePoint> deadline(Stage stage, TimePoint since, const Limits& limits);

/// Why a connection was closed at its deadline, for the client and the log: "idle for 1m".
std::string timeout_reason(Stage stage, const Limits& limits);

/// The connection to close so that a new one fits: the one stuck longest in a request line or an
/// unread answer, else the one idle longest. Never one that waits for an operation: nothing when
/// every connection does (the new one is refused then).
std::optional<std::uint64_t> make_room(const std::vector<Connection>& open);

/// How many warnings a flood of bad input may write: at most `burst` lines in each `period`; the
/// rest are counted, and once that period is over one line reports how many were left out.
class LogBudget {
public:
    LogBudget(unsigned burst, Duration period) : burst_(burst), period_(period) {}
    /// True: log this warning. False: it is counted as suppressed.
    bool allow(TimePoint now);
    /// Count a warning suppressed by another budget (a connection's own).
    void suppress() { ++suppressed_; }
    /// When the suppressed count is due to be reported; nothing while none was suppressed.
    std::optional<TimePoint> report_at() const;
    /// The suppressed count, once report_at() has come (and start counting anew); 0 before.
    std::uint64_t take_suppressed(TimePoint now);
    Duration period() const { return period_; }

private:
    unsigned burst_;
    Duration period_;
    TimePoint window_{};       // the current period began then
    unsigned used_ = 0;        // warnings logged in it
    std::uint64_t suppressed_ = 0;
};

}  // namespace herd::control
