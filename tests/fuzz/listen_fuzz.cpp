// Where listening sockets come from (os/listeners.hpp): a --listen value, and systemd's
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. The input's first byte chooses: 'L' a --listen value
// (the rest), anything else the three variables (the rest, split at NUL bytes; a missing one is
// unset). Each throws only its documented exception, and what it returns holds together.
#include "fuzz.hpp"

#include <herd/os/listeners.hpp>

#include <algorithm>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

// `text` as a whole number, or nothing.
std::optional<std::uint64_t> number(std::string_view text)
{
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0) return 0;
    const std::string_view rest = fuzz::text(data + 1, size - 1);
    if (data[0] == 'L') {
        try {
            const auto a = herd::parse_listen(rest);
            if (a.kind == herd::ListenAddress::Kind::unix_path) {
                FUZZ_CHECK(!a.path.empty() && a.path.size() < 108);
                FUZZ_CHECK("unix:" + a.path == rest);
            } else {
                FUZZ_CHECK(a.path.empty());
                FUZZ_CHECK(a.host.find(':') == std::string::npos || rest.starts_with("["));
                FUZZ_CHECK(number(rest.substr(rest.rfind(':') + 1)) == a.port);
            }
        } catch (const std::invalid_argument& e) {
            FUZZ_CHECK(*e.what() != '\0');
        }
        return 0;
    }
    std::vector<std::string> vars;
    for (std::size_t at = 0; at <= rest.size() && vars.size() < 3;) {
        const auto end = std::min(rest.find('\0', at), rest.size());
        vars.emplace_back(rest.substr(at, end - at));
        at = end + 1;
    }
    const auto var = [&](std::size_t i) { return i < vars.size() ? vars[i].c_str() : nullptr; };
    try {
        const auto names = herd::systemd_socket_names(var(0), var(1), var(2), 4242);
        if (!names) return 0;
        FUZZ_CHECK(vars.size() >= 2 && number(vars[0]) == 4242u);
        FUZZ_CHECK(number(vars[1]) == names->size());
        for (const auto& name : *names) {
            FUZZ_CHECK(name.find(':') == std::string::npos);
            FUZZ_CHECK(std::none_of(name.begin(), name.end(), [](char c) { return (unsigned char)c < 0x20 || c == 0x7f; }));
        }
    } catch (const std::runtime_error& e) {
        FUZZ_CHECK(std::string_view(e.what()).starts_with("LISTEN_FDS='"));
    }
    return 0;
}
