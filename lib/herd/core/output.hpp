// A worker's output, split into lines for the log (the manager logs every line a worker writes
// to its stdout or stderr, tagged with the worker's pool, slot and pid: os/output_pipes.hpp).
//
// A line is what ends in '\n' (a '\r' before it is dropped). A line longer than the bound is cut:
// its first max_line bytes are logged once, marked as cut, and the rest up to the next '\n' is
// dropped, so a program cannot make the manager hold or write unbounded lines. The last line, if
// it has no '\n', is logged when the output ends. Pure: bytes in, lines out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

inline constexpr std::size_t max_output_line = 4096;

struct OutputLine {
    std::string text;
    bool cut = false;   // the line went on past max_line bytes
    friend bool operator==(const OutputLine&, const OutputLine&) = default;
};

/// A line of output as the log shows it: printable() (text.hpp) piece by piece, tabs kept as they
/// are (stack traces and tables use them; they cannot break a log line or drive a terminal).
std::string loggable(std::string_view line);

class OutputLines {
public:
    explicit OutputLines(std::size_t max_line = max_output_line) : max_line_(max_line) {}

    /// Feed bytes as they were read; returns the lines they completed (or cut).
    std::vector<OutputLine> feed(std::string_view bytes);
    /// The output ended: the last line, if it had no '\n' (and was not cut already).
    std::optional<OutputLine> finish();
    /// Bytes of an unfinished line held.
    std::size_t pending() const { return pending_.size(); }

private:
    std::size_t max_line_;
    std::string pending_;
    bool dropping_ = false;   // past the bound: the rest of this line is dropped
};

}  // namespace herd
