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
    /// Feed bytes as they were read; sink(record, error, line) is called once per complete line,
    /// with an empty error when the record is well formed.
    template <class Sink>
    void feed(std::string_view bytes, Sink&& sink)
    {
        while (!bytes.empty()) {
            const auto nl = bytes.find('\n');
            const auto chunk = bytes.substr(0, nl);
            bytes = nl == std::string_view::npos ? std::string_view{} : bytes.substr(nl + 1);
            if (!overlong_) pending_.append(chunk);
            if (pending_.size() >= max_record && !overlong_) {
                sink(HeartbeatRecord{}, overlong_error(), std::string_view(pending_).substr(0, 40));
                overlong_ = true;
                pending_.clear();
            }
            if (nl == std::string_view::npos) return;
            if (overlong_) {
                overlong_ = false;   // the rest of the long line is gone; the next line starts clean
                continue;
            }
            HeartbeatRecord record;
            const std::string error = decode(pending_, record);
            sink(record, std::string_view(error), std::string_view(pending_));
            pending_.clear();
        }
    }

private:
    static std::string overlong_error();

    std::string pending_;
    bool overlong_ = false;   // discarding the rest of a line that was too long
};

}  // namespace herd
