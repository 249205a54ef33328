// What the fuzz targets share: the input as text, chunk sizes drawn from it, and a check that
// aborts with a message (libFuzzer saves the input that made it fail).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

/// Fails the input: prints what was expected and aborts.
[[noreturn]] inline void fail(const char* what, const char* file, int line)
{
    std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    std::abort();
}

#define FUZZ_CHECK(cond) ((cond) ? void() : ::fuzz::fail(#cond, __FILE__, __LINE__))

/// True when `s` is one line without control characters (what a log line or stderr may show).
inline bool one_printable_line(std::string_view s)
{
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

/// `bytes` cut into pieces of 1 to 32 bytes, as reads might return them; the cuts follow from the
/// bytes themselves, so that an input always fails the same way.
inline std::vector<std::string_view> chunks(std::string_view bytes)
{
    std::uint64_t state = 1469598103934665603ull;   // FNV-1a of the input seeds a xorshift
    for (unsigned char c : bytes) state = (state ^ c) * 1099511628211ull;
    std::vector<std::string_view> out;
    while (!bytes.empty()) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        const std::size_t n = std::min<std::size_t>(bytes.size(), 1 + state % 32);
        out.push_back(bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
    return out;
}

}  // namespace fuzz
