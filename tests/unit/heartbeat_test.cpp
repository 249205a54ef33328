// The heartbeat record codec and the stream decoder.
#include <herd/core/heartbeat.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace herd;
using namespace std::chrono_literals;

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

TEST_CASE("the decoder counts the bytes of malformed records, the dropped rest of a long line included")
{
    HeartbeatDecoder d;
    auto seen = feed_all(d, "requests=1\nhello\n\n");
    REQUIRE(seen.size() == 3);
    CHECK(d.bad_bytes() == 6);   // "hello\n"
    // A line that never ends: reported once, at max_record bytes, and every byte of it counted
    std::vector<std::string> samples;
    for (int i = 0; i < 10; ++i)
        d.feed(std::string(1000, '\x1b'), [&](const HeartbeatRecord&, std::string_view error, std::string_view line) {
            CHECK_FALSE(error.empty());
            samples.emplace_back(line);
        });
    REQUIRE(samples.size() == 1);
    CHECK(samples[0] == std::string(HeartbeatDecoder::sample_size, '\x1b'));
    CHECK(d.bad_bytes() == 6 + 10000);
    seen = feed_all(d, "xx\nrequests=2\n");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].record.requests == 2u);
    CHECK(d.bad_bytes() == 6 + 10003);
}

TEST_CASE("a line of exactly max_record bytes with its newline is one overlong record")
{
    HeartbeatDecoder d;
    auto seen = feed_all(d, std::string(max_record, 'r') + "\nrequests=3\n");
    REQUIRE(seen.size() == 2);
    CHECK_FALSE(seen[0].error.empty());
    CHECK(seen[1].record.requests == 3u);
    CHECK(d.bad_bytes() == max_record + 1);
}

TEST_CASE("a channel is read on while under its budget, and paused to the end of the window once it is spent")
{
    const auto t0 = ReadBudget::Clock::time_point{} + 1000h;
    ReadBudget b(1000, 100ms);
    CHECK_FALSE(b.spend(400, t0));
    CHECK_FALSE(b.spend(500, t0 + 10ms));
    const auto resume = b.spend(100, t0 + 20ms);
    REQUIRE(resume);
    CHECK(*resume == t0 + 100ms);
    CHECK(b.spent_windows() == 1);
    // The next window starts when reading resumes
    CHECK_FALSE(b.spend(999, t0 + 100ms));
    CHECK(b.spend(1, t0 + 150ms) == t0 + 200ms);
    // A quiet channel starts a fresh window
    CHECK_FALSE(b.spend(999, t0 + 10s));
    CHECK_FALSE(b.spend(999, t0 + 10s + 100ms));
    CHECK(b.spent_windows() == 2);
}

TEST_CASE("an honest worker never spends its read budget")
{
    // One record every 10 ms, the longest record there is, for a minute
    const auto t0 = ReadBudget::Clock::time_point{} + 1000h;
    ReadBudget b = channel_budget(500ms);
    for (int i = 0; i < 6000; ++i) CHECK_FALSE(b.spend(max_record, t0 + i * 10ms));
    CHECK(b.spent_windows() == 0);
}

TEST_CASE("the read window stays well below the heartbeat timeout")
{
    CHECK(channel_budget(10s).window() == 100ms);
    CHECK(channel_budget(10s).budget() == read_budget);
    CHECK(channel_budget(0s).window() == 100ms);   // hang detection off
    CHECK(channel_budget(500ms).window() == 100ms);
    CHECK(channel_budget(200ms).window() == 40ms);
    CHECK(channel_budget(200ms).budget() == read_budget * 2 / 5);
    CHECK(channel_budget(100ms).window() == 20ms);
    CHECK(channel_budget(100ms).budget() == read_chunk);
    CHECK(channel_budget(2ms).window() == 1ms);
    CHECK(channel_budget(2ms).budget() == read_chunk);
}
