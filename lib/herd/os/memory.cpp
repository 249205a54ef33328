#include <herd/os/memory.hpp>

#include <herd/os/fd.hpp>

#include <cerrno>
#include <charconv>
#include <string>
#include <fcntl.h>
#include <unistd.h>

namespace herd {

std::optional<std::uint64_t> private_memory(std::string_view text)
{
    // Lines such as "Private_Dirty:      1234 kB"
    std::optional<std::uint64_t> total;
    while (!text.empty()) {
        const std::size_t end = std::min(text.find('\n'), text.size());
        std::string_view line = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (!line.starts_with("Private_Clean:") && !line.starts_with("Private_Dirty:")) continue;
        line.remove_prefix(line.find(':') + 1);
        const std::size_t digits = line.find_first_of("0123456789");
        if (digits == std::string_view::npos) continue;
        std::uint64_t kib = 0;
        if (std::from_chars(line.data() + digits, line.data() + line.size(), kib).ec != std::errc{}) continue;
        total = total.value_or(0) + kib * 1024;
    }
    return total;
}

std::optional<std::uint64_t> read_private_memory(int pid)
{
    const std::string path = "/proc/" + std::to_string(pid) + "/smaps_rollup";
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    // The file is about 1 KiB; one buffer holds it.
    std::string text(8192, '\0');
    std::size_t used = 0;
    while (used < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += std::size_t(n);
    }
    text.resize(used);
    return private_memory(text);
}

}  // namespace herd
