// Value parsers for option text: whole numbers, fractions, switches, signals, durations and
// restart limits. Each throws std::invalid_argument with what was expected; the caller adds the
// option's name and the value (UsageError). The public ones are declared in <herd/config/options.hpp>.
#pragma once

#include <herd/config/options.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// `s` without leading and trailing blanks, tabs and line ends.
std::string_view trim(std::string_view s);

/// True if `s` is one or more of 0-9 and nothing else.
bool all_digits(std::string_view s);

/// Digits only, within 64 bits; throws std::invalid_argument.
std::uint64_t parse_whole(std::string_view text);

/// Digits only, within `unsigned`; throws std::invalid_argument.
unsigned parse_unsigned(std::string_view text);

/// "10%" or a fraction "0.1", between 0 and 1; throws std::invalid_argument.
double parse_fraction(std::string_view text);

/// true/yes/on/1 or false/no/off/0; throws std::invalid_argument.
bool parse_bool(std::string_view text);

/// A command line split into words the way a shell does, without its expansions: blanks separate
/// words; 'single quotes' keep everything, "double quotes" everything but \" and \\; a backslash
/// outside quotes keeps the next character. No globbing, no variables. Throws
/// std::invalid_argument for an unterminated quote, a trailing backslash and an empty command.
std::vector<std::string> split_command(std::string_view text);

/// "TERM" for SIGTERM: a signal's name without SIG, or its number if it has none.
std::string signal_text(int signal);

}  // namespace herd
