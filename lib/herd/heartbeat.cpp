#include <herd/heartbeat.hpp>

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

}  // namespace herd
