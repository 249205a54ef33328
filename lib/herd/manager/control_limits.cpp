// The control socket's connections (control_limits.hpp): deadlines, making room, the log budget.
#include <herd/manager/control_limits.hpp>

#include <algorithm>
#include <utility>

namespace herd::control {

std::optional<TimePoint> deadline(Stage stage, TimePoint since, const Limits& limits)
{
    switch (stage) {
    case Stage::idle: return since + limits.idle_timeout;
    case Stage::reading:
    case Stage::writing: return since + limits.request_timeout;
    case Stage::waiting: return std::nullopt;
    }
    return std::nullopt;
}

std::string timeout_reason(Stage stage, const Limits& limits)
{
    switch (stage) {
    case Stage::idle: return "idle for " + format_duration(limits.idle_timeout);
    case Stage::reading: return "a request line was not complete within " + format_duration(limits.request_timeout);
    case Stage::writing: return "an answer was not read within " + format_duration(limits.request_timeout);
    case Stage::waiting: break;
    }
    return "waiting";
}

std::optional<std::uint64_t> make_room(const std::vector<Connection>& open)
{
    // Stuck first (a slow or hostile client), then idle (a client that may come back), oldest first
    const auto rank = [](const Connection& c) { return c.stage == Stage::idle ? 1 : 0; };
    const Connection* victim = nullptr;
    for (const Connection& c : open) {
        if (c.stage == Stage::waiting) continue;
        if (!victim || std::pair(rank(c), c.since) < std::pair(rank(*victim), victim->since)) victim = &c;
    }
    if (!victim) return std::nullopt;
    return victim->id;
}

bool LogBudget::allow(TimePoint now)
{
    if (now >= window_ + period_) {
        window_ = now;
        used_ = 0;
    }
    if (used_ < burst_) {
        ++used_;
        return true;
    }
    ++suppressed_;
    return false;
}

std::optional<TimePoint> LogBudget::report_at() const
{
    if (suppressed_ == 0) return std::nullopt;
    return window_ + period_;
}

std::uint64_t LogBudget::take_suppressed(TimePoint now)
{
    if (suppressed_ == 0 || now < window_ + period_) return 0;
    return std::exchange(suppressed_, 0);
}

}  // namespace herd::control
