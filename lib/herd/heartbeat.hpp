// The heartbeat channel: one pipe per worker, the worker writes, the manager reads.
//
// Record format (text, so that any program in exec mode can speak it):
//   one line per record, at most max_record bytes including the final '\n';
//   an empty line is a plain heartbeat; otherwise space-separated key=value fields.
//   Known field: requests=N  (units of work done so far, cumulative).
// A record is written with a single write() of at most PIPE_BUF bytes, so it is atomic.
// The manager attributes a record to the worker by the pipe it came from, never by its content.
// A malformed record still proves the worker alive; it is reported, and its fields ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace herd {

inline constexpr std::size_t max_record = 128;

struct HeartbeatRecord {
    std::optional<std::uint64_t> requests;
    friend bool operator==(const HeartbeatRecord&, const HeartbeatRecord&) = default;
};

/// The line for a record, '\n' included.
std::string encode(const HeartbeatRecord& record);

/// Parse one line (without '\n'); returns an error message, or empty on success.
std::string decode(std::string_view line, HeartbeatRecord& record);

/// Splits a byte stream into records; partial lines wait for the rest.
class HeartbeatDecoder {
public:
    /// Called once per line: the record and an error (empty when the record is well formed).
    using Sink = std::function<void(const HeartbeatRecord&, std::string_view error, std::string_view line)>;

    /// Feed bytes as they were read.
    void feed(std::string_view bytes, const Sink& sink);

private:
    std::string pending_;
    bool overlong_ = false;   // discarding the rest of a line that was too long
};

}  // namespace herd
