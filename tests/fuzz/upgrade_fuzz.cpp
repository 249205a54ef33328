// The upgrade hand-over record (manager/upgrade.hpp), versions 1 to 3, as the new image reads it
// from HERD_HANDOVER_FD. decode_handover() returns or throws std::invalid_argument naming the line;
// a record it accepts can be written again, and writing what it reads back is stable.
#include "fuzz.hpp"

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
    return 0;
}
