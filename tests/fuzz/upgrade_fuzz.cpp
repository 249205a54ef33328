// The upgrade hand-over record (manager/upgrade.hpp), versions 1 to 3, as the new image reads it
// from HERD_HANDOVER_FD. decode_handover() returns or throws std::invalid_argument naming the line;
// a record it accepts can be written again, writing what it reads back is stable, and the pools
// it carries can be adopted and planned for as the new image does at once.
#include "fuzz.hpp"

#include <herd/core/supervisor.hpp>
#include <herd/manager/upgrade.hpp>

#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    herd::Handover h;
    try {
        h = herd::decode_handover(fuzz::text(data, size));
    } catch (const std::invalid_argument& e) {
        // Logged by the new image: one printable line
        FUZZ_CHECK(*e.what() != '\0' && fuzz::one_printable_line(e.what()));
        return 0;
    }
    FUZZ_CHECK(herd::can_adopt(h.version));
    FUZZ_CHECK(!h.pools.empty());
    FUZZ_CHECK(h.version >= 3 || h.pools.size() == 1);
    // What the new image adopted, it hands over at the next upgrade: in the same version the
    // record is written again, and read again it gives the same record.
    std::string once;
    try {
        once = herd::encode(h);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "decoded, but cannot be written again: %s\n", e.what());
        std::abort();
    }
    const herd::Handover again = herd::decode_handover(once);
    FUZZ_CHECK(herd::encode(again) == once);

    // The new image adopts every pool into its configuration's and plans its first step
    using namespace std::chrono_literals;
    std::vector<herd::Pool> pools;
    for (const auto& from : h.pools) {
        herd::Pool pool = herd::make_pool(from.name, herd::Options{});
        herd::adopt_pool(pool, from);
        pools.push_back(std::move(pool));
    }
    const herd::Supervisor supervisor = herd::make_supervisor(herd::Strategy::one, std::move(pools));
    const herd::TimePoint now = herd::TimePoint{} + 1000h;
    (void)herd::plan(supervisor, now);
    (void)herd::next_deadline(supervisor, now);
    return 0;
}
