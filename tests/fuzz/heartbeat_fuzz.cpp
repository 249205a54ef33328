// The heartbeat channel as the manager reads it (core/heartbeat.hpp): any bytes a worker writes,
// in any cuts. The decoder never throws, reports no more well-formed records than lines, bounds
// every line it reports, counts no more bad bytes than it was fed, and cutting the stream
// differently changes nothing.
#include "fuzz.hpp"

#include <herd/core/heartbeat.hpp>

#include <algorithm>
#include <string>
#include <tuple>

namespace {

struct Call {
    herd::HeartbeatRecord record;
    std::string error;
    std::string line;
    bool operator==(const Call&) const = default;
};

std::vector<Call> decode_all(const std::vector<std::string_view>& pieces, std::uint64_t& bad_bytes)
{
    herd::HeartbeatDecoder decoder;
    std::vector<Call> calls;
    for (const auto piece : pieces)
        decoder.feed(piece, [&](const herd::HeartbeatRecord& r, std::string_view error, std::string_view line) {
            calls.push_back({r, std::string(error), std::string(line)});
        });
    bad_bytes = decoder.bad_bytes();
    return calls;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view bytes = fuzz::text(data, size);
    std::uint64_t bad_whole = 0, bad_cut = 0;
    const auto whole = decode_all({bytes}, bad_whole);
    const auto cut = decode_all(fuzz::chunks(bytes), bad_cut);
    FUZZ_CHECK(whole == cut);
    FUZZ_CHECK(bad_whole == bad_cut);
    FUZZ_CHECK(bad_whole <= size);

    const auto lines = std::size_t(std::count(bytes.begin(), bytes.end(), '\n'));
    const auto good = std::size_t(std::count_if(whole.begin(), whole.end(), [](const Call& c) { return c.error.empty(); }));
    FUZZ_CHECK(good <= lines);
    FUZZ_CHECK(whole.size() <= lines + size / herd::max_record);
    for (const Call& c : whole) {
        FUZZ_CHECK(c.line.size() < herd::max_record);
        FUZZ_CHECK(c.line.find('\n') == std::string::npos);
        if (!c.error.empty()) continue;   // its fields are ignored (the record may hold those before the bad one)
        // A record read is one the worker could have written: encoding it reads back the same.
        const std::string line = herd::encode(c.record);
        FUZZ_CHECK(line.size() < herd::max_record && line.back() == '\n');
        herd::HeartbeatRecord again;
        FUZZ_CHECK(herd::decode(std::string_view(line).substr(0, line.size() - 1), again).empty());
        FUZZ_CHECK(again == c.record);
    }
    return 0;
}
