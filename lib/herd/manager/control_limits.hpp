// The control socket's connections, pure: what one may cost the manager (Limits), where each
// stands and its deadline, which one to close to make room for a new one, and the budget of
// warnings a flood may write. The shell that applies them is control_server.cpp.
#pragma once

#include <herd/config/options.hpp>
#include <herd/core/pool_state.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace herd::control {

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
