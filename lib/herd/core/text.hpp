// Text from outside the manager (heartbeat records, control requests, a program's output) made
// safe to write into a log line: one line, printable, bounded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace herd {

/// `bytes` as one printable line: printable ASCII and valid UTF-8 kept, every other byte (NUL,
/// ESC, CR, LF, DEL, invalid UTF-8) written as \xNN, a backslash as \\; cut at `limit`
/// characters of output, with "... (N bytes)" naming the whole size when cut.
std::string printable(std::string_view bytes, std::size_t limit = 200);

}  // namespace herd
