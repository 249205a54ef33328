#include <herd/core/heartbeat.hpp>

#include <algorithm>
#include <charconv>

namespace herd {

std::string encode(const HeartbeatRecord& record)
{
    std::string line;
    if (record.requests) line = "requests=" + std::to_string(*record.requests);
    line += '\n';
    return line;
}

std::string decode(std::string_view line, HeartbeatRecord& record)
{
    record = {};
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty()) {
        const auto space = line.find(' ');
        const auto field = line.substr(0, space);
        line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
        if (field.empty()) continue;
        const auto eq = field.find('=');
        if (eq == std::string_view::npos) return "field '" + std::string(field) + "' is not key=value";
        const auto key = field.substr(0, eq), value = field.substr(eq + 1);
        if (key == "requests") {
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc{} || end != value.data() + value.size() || value.empty())
                return "requests='" + std::string(value) + "' is not a whole number";
            record.requests = n;
        } else {
            return "unknown field '" + std::string(key) + "'";
        }
    }
    return {};
}

std::string HeartbeatDecoder::overlong_error()
{
    return "record longer than " + std::to_string(max_record - 1) + " bytes";
}

std::optional<ReadBudget::Clock::time_point> ReadBudget::spend(std::size_t n, Clock::time_point now)
{
    if (now - started_ >= window_) {
        started_ = now;
        used_ = 0;
    }
    used_ += n;
    if (used_ < budget_) return std::nullopt;
    ++spent_windows_;
    const auto resume = started_ + window_;
    started_ = resume;   // the next window starts when reading resumes
    used_ = 0;
    return resume;
}

ReadBudget channel_budget(std::chrono::steady_clock::duration heartbeat_timeout)
{
    using namespace std::chrono;
    const steady_clock::duration full = milliseconds(100);
    if (heartbeat_timeout.count() <= 0 || heartbeat_timeout / 5 >= full) return ReadBudget(read_budget, full);
    const steady_clock::duration window = std::max<steady_clock::duration>(heartbeat_timeout / 5, milliseconds(1));
    const auto budget = std::size_t(double(read_budget) * duration<double>(window) / duration<double>(full));
    return ReadBudget(std::max(budget, read_chunk), window);
}

}  // namespace herd
