// The heartbeat channel: one pipe per worker, the worker writes, the manager reads.
//
// Record format (text, so that any program in exec mode can speak it):
//   one line per record, at most max_record bytes including the final '\n';
//   an empty line is a plain heartbeat; otherwise space-separated key=value fields.
//   Known field: requests=N  (units of work done so far, cumulative).
// A record is written with a single write() of at most PIPE_BUF bytes, so it is atomic.
// The manager attributes a record to the worker by the pipe it came from, never by its content.
// A malformed record still proves the worker alive; it is reported, and its fields ignored.
//
// What one channel may cost the manager is bounded: it is read in chunks of at most read_chunk
// bytes, and at most read_budget bytes of it per window (ReadBudget); a channel that uses its
// budget is not read again before its window ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herd {

inline constexpr std::size_t max_record = 128;
/// The most the manager reads from one channel at a time.
inline constexpr std::size_t read_chunk = 4096;
/// The most the manager reads from one channel per 100 ms: 16 KiB, over a hundred times what a
/// worker heartbeating every 10 ms sends (enough for a backlog that waited while the manager was busy).
inline constexpr std::size_t read_budget = 16 * 1024;

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
    /// with an empty error when the record is well formed. A line of max_record bytes or more is
    /// reported once, as soon as it is that long, with its first bytes as `line`; the rest of it
    /// is dropped.
    template <class Sink>
    void feed(std::string_view bytes, Sink&& sink)
    {
        while (!bytes.empty()) {
            const auto nl = bytes.find('\n');
            const auto chunk = bytes.substr(0, nl);
            const std::size_t taken = chunk.size() + (nl == std::string_view::npos ? 0 : 1);
            bytes = bytes.substr(taken);
            if (overlong_) {
                bad_bytes_ += taken;   // the rest of a line that was too long
                if (nl != std::string_view::npos) overlong_ = false;   // the next line starts clean
                continue;
            }
            pending_.append(chunk);
            if (pending_.size() >= max_record) {
                bad_bytes_ += pending_.size() + taken - chunk.size();
                sink(HeartbeatRecord{}, overlong_error(), std::string_view(pending_).substr(0, sample_size));
                overlong_ = nl == std::string_view::npos;
                pending_.clear();
                continue;
            }
            if (nl == std::string_view::npos) return;
            HeartbeatRecord record;
            const std::string error = decode(pending_, record);
            if (!error.empty()) bad_bytes_ += pending_.size() + 1;
            sink(record, std::string_view(error), std::string_view(pending_));
            pending_.clear();
        }
    }

    /// Bytes of malformed records so far, the dropped rest of overlong lines included.
    std::uint64_t bad_bytes() const { return bad_bytes_; }

    static constexpr std::size_t sample_size = 64;

private:
    static std::string overlong_error();

    std::string pending_;
    bool overlong_ = false;   // dropping the rest of a line that was too long
    std::uint64_t bad_bytes_ = 0;
};

/// How much of a channel the manager reads: at most `budget` bytes per `window`. Pure: time is an
/// argument.
class ReadBudget {
public:
    using Clock = std::chrono::steady_clock;

    ReadBudget(std::size_t budget, Clock::duration window) : budget_(budget), window_(window) {}

    /// `n` bytes were read at `now`. When the window's budget is spent: the moment the channel may
    /// be read again (the end of the window); otherwise nothing, and reading goes on at once.
    std::optional<Clock::time_point> spend(std::size_t n, Clock::time_point now);

    /// Windows whose budget the channel spent, in all.
    std::uint64_t spent_windows() const { return spent_windows_; }
    std::size_t budget() const { return budget_; }
    Clock::duration window() const { return window_; }

private:
    std::size_t budget_;
    Clock::duration window_;
    Clock::time_point started_{};
    std::size_t used_ = 0;
    std::uint64_t spent_windows_ = 0;
};

/// The ReadBudget of a channel: read_budget per 100 ms; with a --heartbeat-timeout under 500 ms the
/// window is a fifth of it (at least 1 ms) and the budget shrinks with it (to no less than
/// read_chunk), so that a paused channel is read again long before its worker could seem silent.
ReadBudget channel_budget(std::chrono::steady_clock::duration heartbeat_timeout);

}  // namespace herd
