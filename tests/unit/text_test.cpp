#include "herd/core/text.hpp"

#include <doctest/doctest.h>

#include <string>

using herd::printable;

TEST_CASE("printable keeps printable ASCII and valid UTF-8 as they are")
{
    CHECK(printable("status ok") == "status ok");
    CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91");
}

TEST_CASE("printable escapes control bytes, DEL, invalid UTF-8 and the backslash")
{
    CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
    CHECK(printable("\x1b[31mred\r\n") == "\\x1b[31mred\\x0d\\x0a");
    CHECK(printable("\x7f") == "\\x7f");
    CHECK(printable("back\\slash") == "back\\\\slash");
    CHECK(printable("\xff\xfe") == "\\xff\\xfe");
    CHECK(printable("\xc3") == "\\xc3");                      // truncated sequence
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");              // overlong '/'
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");     // surrogate
    CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST_CASE("printable cuts long input and names its whole size")
{
    const std::string big(1000, 'x');
    CHECK(printable(big, 10) == "xxxxxxxxxx... (1000 bytes)");
    // An escape is never cut in half
    CHECK(printable("abcdefghi\x01", 10) == "abcdefghi... (10 bytes)");
    CHECK(printable(std::string(10, 'y'), 10) == "yyyyyyyyyy");
}
