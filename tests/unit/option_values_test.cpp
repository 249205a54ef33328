// Value parsers: durations, signals, numbers, fractions, switches (option_values.hpp).
#include <herd/config/option_values.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

// Durations
TEST_CASE("durations accept milliseconds, seconds, minutes, hours and bare seconds")
{
    CHECK(herd::parse_duration("250ms") == 250ms);
    CHECK(herd::parse_duration("2s") == 2s);
    CHECK(herd::parse_duration("1.5s") == 1500ms);
    CHECK(herd::parse_duration("3m") == 3min);
    CHECK(herd::parse_duration("1h") == 1h);
    CHECK(herd::parse_duration("0.5h") == 30min);
    CHECK(herd::parse_duration("2") == 2s);
    CHECK(herd::parse_duration("0.5") == 500ms);
    CHECK(herd::parse_duration("0") == 0ms);
}

TEST_CASE("durations as herd prints them are read back")
{
    CHECK(herd::parse_duration("250 ms") == 250ms);
    CHECK(herd::parse_duration("1.5 s") == 1500ms);
    CHECK(herd::parse_duration(herd::format_duration(90s)) == 90s);
}

TEST_CASE("durations round to the millisecond")
{
    CHECK(herd::parse_duration("0.0004s") == 0ms);
    CHECK(herd::parse_duration("0.0005s") == 1ms);
    CHECK(herd::parse_duration("1.0001m") == 60006ms);
}

TEST_CASE("negative, empty, malformed and huge durations are rejected")
{
    for (const char* bad : {"", "-1s", "-0", "+2s", "abc", "2x", "s", "1.", ".5", "1.2.3", "2 5s", "1e3", "0x10",
                            "2sec", " 2s", "inf", "nan", "99999999999999999999s", "100001h", "9999999999999h"}) {
        const std::string text = bad;
        CAPTURE(text);
        CHECK_THROWS_AS(herd::parse_duration(text), std::invalid_argument);
    }
    CHECK_NOTHROW(herd::parse_duration("100000h"));
}

// Sizes
TEST_CASE("sizes accept K, M, G and T in binary units, fractions and a bare number of bytes")
{
    CHECK(herd::parse_size("512M") == 512ull << 20);
    CHECK(herd::parse_size("2G") == 2ull << 30);
    CHECK(herd::parse_size("1.5G") == 1536ull << 20);
    CHECK(herd::parse_size("100K") == 102400);
    CHECK(herd::parse_size("1T") == 1ull << 40);
    CHECK(herd::parse_size("0.5k") == 512);
    CHECK(herd::parse_size("64MB") == 64ull << 20);
    CHECK(herd::parse_size("64MiB") == 64ull << 20);
    CHECK(herd::parse_size("512 MiB") == 512ull << 20);
    CHECK(herd::parse_size("1048576") == 1ull << 20);
    CHECK(herd::parse_size("100B") == 100);
    CHECK(herd::parse_size("0") == 0);
    CHECK(herd::parse_size("1.0000000001T") == 1ull << 40);
    CHECK(herd::parse_size("1024T") == 1ull << 50);
}

TEST_CASE("negative, empty, malformed and huge sizes are rejected")
{
    for (const char* bad : {"", "-1M", "+1M", "M", "1X", "1.", ".5G", "1.2.3G", "1e9", "0x10", " 1M", "1 G B",
                            "1.5", "1.5B", "iB", "1iB", "1MBB", "1025T", "99999999999999999999"}) {
        const std::string text = bad;
        CAPTURE(text);
        CHECK_THROWS_AS(herd::parse_size(text), std::invalid_argument);
    }
}

TEST_CASE("sizes are formatted in binary units with one decimal at most")
{
    CHECK(herd::format_size(0) == "0 B");
    CHECK(herd::format_size(800) == "800 B");
    CHECK(herd::format_size(1024) == "1 KiB");
    CHECK(herd::format_size(64ull << 20) == "64 MiB");
    CHECK(herd::format_size(1536ull << 20) == "1.5 GiB");
    CHECK(herd::format_size(100ull << 20 | 1) == "100 MiB");
}

TEST_CASE("durations are formatted one way: milliseconds below a second, exact seconds from there")
{
    CHECK(herd::format_duration(0ms) == "0 s");
    CHECK(herd::format_duration(3ms) == "3 ms");
    CHECK(herd::format_duration(250ms) == "250 ms");
    CHECK(herd::format_duration(999ms) == "999 ms");
    CHECK(herd::format_duration(1s) == "1 s");
    CHECK(herd::format_duration(1500ms) == "1.5 s");
    CHECK(herd::format_duration(2026ms) == "2.026 s");
    CHECK(herd::format_duration(3435ms) == "3.435 s");
    CHECK(herd::format_duration(9100ms) == "9.1 s");
    CHECK(herd::format_duration(1010ms) == "1.01 s");
    CHECK(herd::format_duration(30s) == "30 s");
    CHECK(herd::format_duration(61s) == "61 s");
    CHECK(herd::format_duration(90s) == "90 s");
    CHECK(herd::format_duration(1h) == "3600 s");
    CHECK(herd::format_duration(-2s) == "-2 s");
}

// Signals
TEST_CASE("--stop-signal takes a name with or without SIG, in any case, or a number")
{
    CHECK(herd::parse_signal("TERM") == SIGTERM);
    CHECK(herd::parse_signal("SIGINT") == SIGINT);
    CHECK(herd::parse_signal("quit") == SIGQUIT);
    CHECK(herd::parse_signal("sigusr2") == SIGUSR2);
    CHECK(herd::parse_signal("15") == SIGTERM);
    CHECK(herd::parse_signal("KILL") == SIGKILL);
}

TEST_CASE("a signal is shown by its name without SIG, or by its number if it has none")
{
    CHECK(herd::signal_text(SIGTERM) == "TERM");
    CHECK(herd::signal_text(SIGQUIT) == "QUIT");
    CHECK(herd::signal_text(0) == "0");
}

// Numbers, fractions, switches
TEST_CASE("a whole number is digits only and fits its type")
{
    CHECK(herd::parse_whole("0") == 0);
    CHECK(herd::parse_whole("18446744073709551615") == 18446744073709551615u);
    CHECK(herd::parse_unsigned("4294967295") == 4294967295u);
    for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3"}) {
        const std::string text = bad;
        CAPTURE(text);
        CHECK_THROWS_AS(herd::parse_whole(text), std::invalid_argument);
    }
    CHECK_THROWS_AS(herd::parse_whole("18446744073709551616"), std::invalid_argument);
    CHECK_THROWS_AS(herd::parse_unsigned("4294967296"), std::invalid_argument);
}

TEST_CASE("a fraction is between 0 and 1, written as a fraction or a percentage")
{
    CHECK(herd::parse_fraction("0.25") == doctest::Approx(0.25));
    CHECK(herd::parse_fraction("25%") == doctest::Approx(0.25));
    CHECK(herd::parse_fraction("100%") == doctest::Approx(1.0));
    CHECK(herd::parse_fraction("1") == doctest::Approx(1.0));
    for (const char* bad : {"", "%", ".", "-0.1", "1.5", "101%", "inf", "nan", "1e-1", "0.1.2"}) {
        const std::string text = bad;
        CAPTURE(text);
        CHECK_THROWS_AS(herd::parse_fraction(text), std::invalid_argument);
    }
}

TEST_CASE("a switch is true, yes, on or 1, and false, no, off or 0")
{
    for (const char* yes : {"true", "yes", "on", "1"}) CHECK(herd::parse_bool(yes));
    for (const char* no : {"false", "no", "off", "0"}) CHECK_FALSE(herd::parse_bool(no));
    for (const char* bad : {"", "TRUE", "maybe", "2"}) CHECK_THROWS_AS(herd::parse_bool(bad), std::invalid_argument);
}

// Commands (`command =` of a pool)
TEST_CASE("a command is split into words like a shell does, without expansions")
{
    using Words = std::vector<std::string>;
    CHECK(herd::split_command("redis-server --port 0") == Words{"redis-server", "--port", "0"});
    CHECK(herd::split_command("  a \t b  ") == Words{"a", "b"});
    CHECK(herd::split_command("sh -c 'echo \"$HOME\" *'") == Words{"sh", "-c", "echo \"$HOME\" *"});
    CHECK(herd::split_command(R"(echo "a b" "say \"hi\"" "back\\slash" "keep\n")") ==
          Words{"echo", "a b", "say \"hi\"", "back\\slash", "keep\\n"});
    CHECK(herd::split_command(R"(a\ b c\'d \\)") == Words{"a b", "c'd", "\\"});
    CHECK(herd::split_command("app '' x") == Words{"app", "", "x"});
    CHECK(herd::split_command("pre'fix'\"ed\" $VAR ~ *.txt") == Words{"prefixed", "$VAR", "~", "*.txt"});
}

TEST_CASE("an unterminated quote, a trailing backslash and an empty command are refused")
{
    CHECK_THROWS_WITH_AS(herd::split_command("sh -c 'echo"), "unterminated ' quote", std::invalid_argument);
    CHECK_THROWS_WITH_AS(herd::split_command("echo \"a"), "unterminated \" quote", std::invalid_argument);
    CHECK_THROWS_WITH_AS(herd::split_command("echo \"a\\\""), "unterminated \" quote", std::invalid_argument);
    CHECK_THROWS_WITH_AS(herd::split_command("echo a\\"), "a backslash ends the command", std::invalid_argument);
    CHECK_THROWS_WITH_AS(herd::split_command(""), "the command is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(herd::split_command(" \t "), "the command is empty", std::invalid_argument);
}
