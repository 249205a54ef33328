#include "herd/core/text.hpp"

namespace herd {

namespace {

// Length of the valid UTF-8 sequence at the start of s (2..4 bytes), or 0 if there is none:
// overlong forms, surrogates and code points past U+10FFFF are not valid.
std::size_t utf8_sequence(std::string_view s)
{
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto continuation = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
    const unsigned char lead = byte(0);
    if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (!continuation(1) || !continuation(2)) return 0;
        if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
        if (lead == 0xED && byte(1) > 0x9F) return 0;   // surrogate
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
        if (lead == 0xF0 && byte(1) < 0x90) return 0;   // overlong
        if (lead == 0xF4 && byte(1) > 0x8F) return 0;   // past U+10FFFF
        return 4;
    }
    return 0;
}

}  // namespace

std::string printable(std::string_view bytes, std::size_t limit)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(bytes.size(), limit) + 16);
    std::size_t i = 0;
    while (i < bytes.size()) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        std::size_t taken = 1;
        std::string piece;
        if (c == '\\') {
            piece = "\\\\";
        } else if (c >= 0x20 && c < 0x7F) {
            piece.assign(1, static_cast<char>(c));
        } else if (const std::size_t n = c >= 0x80 ? utf8_sequence(bytes.substr(i)) : 0; n > 0) {
            piece.assign(bytes.substr(i, n));
            taken = n;
        } else {
            piece = {'\\', 'x', hex[c >> 4], hex[c & 0xF]};
        }
        if (out.size() + piece.size() > limit) break;
        out += piece;
        i += taken;
    }
    if (i < bytes.size()) out += "... (" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

}  // namespace herd
