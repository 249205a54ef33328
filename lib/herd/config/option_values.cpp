// Value parsers for option text (see option_values.hpp), with the public ones of <herd/config/options.hpp>:
// durations, signals, heartbeat modes and restart limits.
#include <herd/config/option_values.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace herd {

namespace {

constexpr std::string_view duration_expected = "expected a duration such as 250ms, 2s, 1.5s, 3m or 1h";
constexpr std::int64_t ms_per_hour = 3'600'000;
// Far beyond any sensible timeout, yet small enough that steady_clock::now() plus it cannot
// overflow the clock's 64-bit nanosecond count.
constexpr std::int64_t max_duration_hours = 100'000;

}  // namespace

// Numbers and switches
std::string_view trim(std::string_view s)
{
    constexpr std::string_view space = " \t\r\n";
    const auto first = s.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(space) - first + 1);
}

bool all_digits(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t parse_whole(std::string_view text)
{
    // from_chars alone would accept a leading '-' and stop silently at trailing garbage.
    if (!all_digits(text)) throw std::invalid_argument("expected a whole number");
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) throw std::invalid_argument("number too large");
    return value;
}

unsigned parse_unsigned(std::string_view text)
{
    const std::uint64_t value = parse_whole(text);
    if (value > std::numeric_limits<unsigned>::max()) throw std::invalid_argument("number too large");
    return static_cast<unsigned>(value);
}

double parse_fraction(std::string_view text)
{
    constexpr const char* expected = "expected a fraction such as 0.1 or a percentage such as 10%";
    const bool percent = !text.empty() && text.back() == '%';
    const std::string_view number = percent ? trim(text.substr(0, text.size() - 1)) : text;
    // from_chars would also take "inf", "nan", "1e3" and a sign.
    const bool plain = !number.empty() && number.find_first_not_of("0123456789.") == std::string_view::npos &&
                       std::count(number.begin(), number.end(), '.') <= 1 && number != ".";
    double value = 0;
    if (!plain || std::from_chars(number.data(), number.data() + number.size(), value).ec != std::errc{})
        throw std::invalid_argument(expected);
    if (percent) value /= 100;
    if (value > 1) throw std::invalid_argument("must be between 0 and 1 (0% and 100%)");
    return value;
}

bool parse_bool(std::string_view text)
{
    if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
    if (text == "false" || text == "no" || text == "off" || text == "0") return false;
    throw std::invalid_argument("expected true or false");
}

std::vector<std::string> split_command(std::string_view text)
{
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;   // '' is a word, empty
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        if (c == '\\') {
            if (++i == text.size()) throw std::invalid_argument("a backslash ends the command");
            word += text[i];
        } else if (c == '\'') {
            const std::size_t close = text.find('\'', i + 1);
            if (close == std::string_view::npos) throw std::invalid_argument("unterminated ' quote");
            word.append(text.substr(i + 1, close - i - 1));
            i = close;
        } else if (c == '"') {
            // As in a shell: a backslash keeps its meaning inside double quotes before " and \ only.
            for (++i; i < text.size() && text[i] != '"'; ++i) {
                if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) ++i;
                word += text[i];
            }
            if (i == text.size()) throw std::invalid_argument("unterminated \" quote");
        } else {
            word += c;
        }
    }
    if (in_word) words.push_back(std::move(word));
    if (words.empty()) throw std::invalid_argument("the command is empty");
    return words;
}

std::string signal_text(int signal)
{
    const char* abbrev = ::sigabbrev_np(signal);
    return abbrev ? abbrev : std::to_string(signal);
}

// Durations
Duration parse_duration(std::string_view text)
{
    // Split number and unit ("1.5s", "250 ms")
    if (!text.empty() && text.front() == '-') throw std::invalid_argument("a duration cannot be negative");
    const std::size_t unit_at = std::min(text.find_first_not_of("0123456789."), text.size());
    const std::string_view number = text.substr(0, unit_at);
    const std::string_view unit = trim(text.substr(unit_at));
    const std::size_t dot = number.find('.');
    const std::string_view whole = number.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
    if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(fraction)))
        throw std::invalid_argument(std::string(duration_expected));

    std::int64_t scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s" || unit.empty()) scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = ms_per_hour;
    else throw std::invalid_argument(std::string(duration_expected));

    // Exact integer arithmetic, rounded to the millisecond
    const std::string too_large = "too large (at most " + std::to_string(max_duration_hours) + " h)";
    const std::int64_t limit = max_duration_hours * ms_per_hour;
    std::uint64_t whole_value = 0;
    if (std::from_chars(whole.data(), whole.data() + whole.size(), whole_value).ec != std::errc{} ||
        whole_value > static_cast<std::uint64_t>(limit / scale))
        throw std::invalid_argument(too_large);
    std::int64_t ms = static_cast<std::int64_t>(whole_value) * scale;
    // Nine decimals are far below a millisecond even in hours; more are ignored.
    const std::string_view digits = fraction.substr(0, 9);
    if (!digits.empty()) {
        std::int64_t numerator = 0;
        std::int64_t denominator = 1;
        for (const char c : digits) {
            numerator = numerator * 10 + (c - '0');
            denominator *= 10;
        }
        ms += (numerator * scale + denominator / 2) / denominator;
    }
    if (ms > limit) throw std::invalid_argument(too_large);
    return Duration(ms);
}

std::string format_duration(Duration d)
{
    // Negating min() would overflow; no real duration is that long anyway.
    if (d == Duration::min()) d += Duration(1);
    if (d.count() < 0) return "-" + format_duration(-d);
    if (d.count() == 0) return "0 s";
    // One way for every duration, chosen by its size alone: milliseconds below a second,
    // seconds from there on, exact to the millisecond ("2.026 s", "9.1 s", "3600 s").
    const std::int64_t ms = d.count();
    if (ms < 1000) return std::to_string(ms) + " ms";
    std::string text = std::to_string(ms / 1000);
    if (const std::int64_t rest = ms % 1000; rest != 0) {
        std::string fraction = std::to_string(rest + 1000).substr(1);
        while (fraction.back() == '0') fraction.pop_back();
        text += "." + fraction;
    }
    return text + " s";
}

// Sizes
std::uint64_t parse_size(std::string_view text)
{
    constexpr const char* expected = "expected a size such as 512M, 2G, 1.5G, 100K or a number of bytes";
    const std::size_t unit_at = std::min(text.find_first_not_of("0123456789."), text.size());
    const std::string_view number = text.substr(0, unit_at);
    std::string unit(trim(text.substr(unit_at)));
    std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return char(std::toupper(c)); });
    const std::size_t dot = number.find('.');
    const std::string_view whole = number.substr(0, dot);
    const std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
    if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(fraction)))
        throw std::invalid_argument(expected);

    // Binary units, as top, ps and the kernel count memory: K = 1024. "M", "MB" and "MiB" alike.
    if (unit.size() == 3 && unit.ends_with("IB")) unit.erase(unit.size() - 2);
    else if (unit.size() == 2 && unit.back() == 'B') unit.pop_back();
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "B") scale = 1;
    else if (unit == "K") scale = 1ull << 10;
    else if (unit == "M") scale = 1ull << 20;
    else if (unit == "G") scale = 1ull << 30;
    else if (unit == "T") scale = 1ull << 40;
    else throw std::invalid_argument(expected);
    if (scale == 1 && !fraction.empty()) throw std::invalid_argument("a number of bytes is a whole number");

    // Exact integer arithmetic, rounded to the byte; at most 1 PiB, far beyond any worker
    constexpr std::uint64_t limit = 1ull << 50;
    std::uint64_t whole_value = 0;
    if (std::from_chars(whole.data(), whole.data() + whole.size(), whole_value).ec != std::errc{} ||
        whole_value > limit / scale)
        throw std::invalid_argument("too large (at most 1024T)");
    std::uint64_t bytes = whole_value * scale;
    const std::string_view digits = fraction.substr(0, 9);
    if (!digits.empty()) {
        std::uint64_t numerator = 0;
        std::uint64_t denominator = 1;
        for (const char c : digits) {
            numerator = numerator * 10 + std::uint64_t(c - '0');
            denominator *= 10;
        }
        // numerator < 10^9 times scale <= 2^40 needs more than 64 bits.
        const unsigned __int128 product = static_cast<unsigned __int128>(numerator) * scale;
        bytes += std::uint64_t((product + denominator / 2) / denominator);
    }
    if (bytes > limit) throw std::invalid_argument("too large (at most 1024T)");
    return bytes;
}

std::string format_size(std::uint64_t bytes)
{
    constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    std::size_t unit = 0;
    std::uint64_t scale = 1;
    while (unit + 1 < std::size(units) && bytes >= scale * 1024) {
        scale *= 1024;
        ++unit;
    }
    // One decimal, dropped when it is 0: "512 MiB", "1.5 GiB".
    const std::uint64_t tenths = (bytes * 10 + scale / 2) / scale;
    std::string text = std::to_string(tenths / 10);
    if (tenths % 10) text += "." + std::to_string(tenths % 10);
    return text + " " + units[unit];
}

int parse_signal(std::string_view text)
{
    constexpr const char* expected = "expected a signal name such as TERM or INT, or its number";
    int signal = 0;
    if (all_digits(text)) {
        const std::uint64_t n = parse_whole(text);
        signal = n < std::uint64_t(NSIG) ? int(n) : 0;
    } else {
        std::string name(text);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::toupper(c)); });
        if (name.starts_with("SIG")) name.erase(0, 3);
        for (int s = 1; s < NSIG && !signal; ++s)
            if (const char* abbrev = ::sigabbrev_np(s); abbrev && name == abbrev) signal = s;
    }
    if (signal <= 0) throw std::invalid_argument(expected);
    // These stop, continue or are ignored by default: a program that does not handle one would
    // never leave, and each is the graceful timeout's KILL in disguise.
    for (int s : {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGCHLD, SIGURG, SIGWINCH})
        if (signal == s)
            throw std::invalid_argument(signal_text(s) + " does not end a process by default; use TERM, INT, QUIT, HUP, "
                                        "USR1, USR2 or KILL");
    return signal;
}

HeartbeatMode parse_heartbeat_mode(std::string_view text)
{
    if (text == "auto") return HeartbeatMode::automatic;
    if (text == "required") return HeartbeatMode::required;
    if (text == "off") return HeartbeatMode::off;
    throw std::invalid_argument("expected auto, required or off");
}

std::string to_string(HeartbeatMode mode)
{
    switch (mode) {
    case HeartbeatMode::automatic: return "auto";
    case HeartbeatMode::required: return "required";
    case HeartbeatMode::off: return "off";
    }
    return "?";
}

RestartLimit parse_restart_limit(std::string_view text)
{
    constexpr const char* expected = "expected COUNT/WINDOW such as 10/10s";
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) throw std::invalid_argument(expected);
    RestartLimit limit;
    try {
        limit.count = parse_unsigned(trim(text.substr(0, slash)));
        limit.window = parse_duration(trim(text.substr(slash + 1)));
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument(expected);
    }
    return limit;
}

}  // namespace herd
