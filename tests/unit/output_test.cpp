// A program's output split into log lines (exec mode): bytes in, lines out.
#include <herd/core/output.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using herd::OutputLine;
using herd::OutputLines;
using Lines = std::vector<OutputLine>;

TEST_CASE("every complete line is one log line, however the bytes arrive")
{
    OutputLines out;
    CHECK(out.feed("hello\nwor") == Lines{{"hello", false}});
    CHECK(out.pending() == 3);
    CHECK(out.feed("ld\n\nthree\n") == Lines{{"world", false}, {"", false}, {"three", false}});
    CHECK(out.pending() == 0);
    CHECK_FALSE(out.finish());
}

TEST_CASE("a carriage return before the newline is dropped, one inside a line is kept")
{
    OutputLines out;
    CHECK(out.feed("dos\r\nmid\rline\n") == Lines{{"dos", false}, {"mid\rline", false}});
}

TEST_CASE("the last line without a newline is logged when the output ends")
{
    OutputLines out;
    CHECK(out.feed("done\npartial").size() == 1);
    CHECK(out.finish() == OutputLine{"partial", false});
    CHECK_FALSE(out.finish());   // once
}

TEST_CASE("a line longer than the bound is cut once and its rest dropped")
{
    OutputLines out(8);
    CHECK(out.feed("12345678\n") == Lines{{"12345678", false}});   // exactly the bound: whole
    CHECK(out.feed("123456789") == Lines{{"12345678", true}});
    CHECK(out.feed(std::string(10'000, 'x')).empty());              // the rest of it: dropped, not held
    CHECK(out.pending() == 0);
    CHECK(out.feed("yy\nnext\n") == Lines{{"next", false}});
}

TEST_CASE("a long line cut across reads is cut at the same place")
{
    OutputLines out(8);
    CHECK(out.feed("1234").empty());
    CHECK(out.feed("5678").empty());
    CHECK(out.feed("9\nok\n") == Lines{{"12345678", true}, {"ok", false}});
}

TEST_CASE("a long last line without a newline is logged once, cut")
{
    OutputLines out(4);
    CHECK(out.feed("abcdefgh") == Lines{{"abcd", true}});
    CHECK_FALSE(out.finish());
}

TEST_CASE("a line is logged printable: control bytes escaped, tabs and UTF-8 kept")
{
    CHECK(herd::loggable("SigBlk:\t0000") == "SigBlk:\t0000");
    CHECK(herd::loggable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m");
    CHECK(herd::loggable("caf\xc3\xa9\tmid\rline\x7f") == "caf\xc3\xa9\tmid\\x0dline\\x7f");
    CHECK(herd::loggable("") == "");
    CHECK(herd::loggable("\t\t") == "\t\t");
}
