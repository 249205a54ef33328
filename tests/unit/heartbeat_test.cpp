// The heartbeat record codec and the stream decoder.
#include <herd/heartbeat.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace herd;

namespace {

struct Seen {
    HeartbeatRecord record;
    std::string error;
};

std::vector<Seen> feed_all(HeartbeatDecoder& d, std::string_view bytes)
{
    std::vector<Seen> out;
    d.feed(bytes, [&](const HeartbeatRecord& r, std::string_view error, std::string_view) {
        out.push_back({r, std::string(error)});
    });
    return out;
}

}  // namespace

TEST_CASE("a record round-trips through encode and decode")
{
    HeartbeatRecord in{42}, out;
    const auto line = encode(in);
    CHECK(line == "requests=42\n");
    CHECK(decode(std::string_view(line).substr(0, line.size() - 1), out).empty());
    CHECK(out == in);
}

TEST_CASE("an empty line is a plain heartbeat")
{
    HeartbeatRecord r{7};
    CHECK(decode("", r).empty());
    CHECK_FALSE(r.requests);
    CHECK(encode({}) == "\n");
}

TEST_CASE("malformed records are named")
{
    HeartbeatRecord r;
    CHECK(decode("requests=abc", r) == "requests='abc' is not a whole number");
    CHECK(decode("requests=", r) == "requests='' is not a whole number");
    CHECK(decode("hello", r) == "field 'hello' is not key=value");
    CHECK(decode("color=blue", r) == "unknown field 'color'");
    CHECK(decode("requests=-1", r) == "requests='-1' is not a whole number");
}

TEST_CASE("the decoder waits for the rest of a partial line")
{
    HeartbeatDecoder d;
    CHECK(feed_all(d, "reque").empty());
    auto seen = feed_all(d, "sts=5\nrequests=6\nreq");
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].record.requests == 5u);
    CHECK(seen[1].record.requests == 6u);
    seen = feed_all(d, "uests=7\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].record.requests == 7u);
}

TEST_CASE("an overlong line is reported once and the stream recovers")
{
    HeartbeatDecoder d;
    auto seen = feed_all(d, std::string(300, 'x'));
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].error.find("longer than") != std::string::npos);
    seen = feed_all(d, std::string(50, 'y') + "\nrequests=1\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].error.empty());
    CHECK(seen[0].record.requests == 1u);
}

TEST_CASE("a record fits in one atomic pipe write")
{
    const auto line = encode({~std::uint64_t{0}});
    CHECK(line.size() < max_record);
}
