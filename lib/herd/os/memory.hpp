// A process's own memory as the manager measures it for --max-worker-memory: the private
// (unshared) pages of /proc/PID/smaps_rollup, Private_Clean + Private_Dirty. Pages shared with
// the manager or other workers since the fork are not counted, so a worker is charged only for
// what it allocated or wrote itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace herd {

/// Private_Clean + Private_Dirty in bytes from the text of an smaps_rollup file; nullopt if
/// neither line is there.
std::optional<std::uint64_t> private_memory(std::string_view smaps_rollup);

/// The own memory of `pid` in bytes; nullopt if it cannot be read (the process is gone, or the
/// kernel has no smaps_rollup). Never throws.
std::optional<std::uint64_t> read_private_memory(int pid);

}  // namespace herd
