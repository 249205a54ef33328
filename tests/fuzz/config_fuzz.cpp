// The command line and the config file (config/, DESIGN.md §2 and §7a's [pool] and [pool.NAME]):
// the input is a config file, read through `--config /proc/self/fd/N` as the manager reads one.
// Its comment lines "#!arg VALUE" add VALUE to the command line after --config (a second
// --config excepted), "#!exec" parses as exec mode (`herd -- /bin/true`), "#!workers A B" names
// the Worker types of the binary.
// Whatever the bytes, parse_command_line() returns or throws UsageError (one line), never
// anything else, and the pools it returns have names a request can give.
#include "fuzz.hpp"

#include <herd/config/options.hpp>
#include <herd/manager/control.hpp>

#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace {

// "#!KEY rest" lines of the input: their rest, split at blanks for "workers".
std::vector<std::string> directives(std::string_view text, std::string_view key)
{
    std::vector<std::string> out;
    const std::string mark = "#!" + std::string(key);
    std::size_t at = 0;
    while (at < text.size()) {
        const auto end = std::min(text.find('\n', at), text.size());
        const auto line = text.substr(at, end - at);
        if (line.starts_with(mark) && (line.size() == mark.size() || line[mark.size()] == ' '))
            out.emplace_back(line.substr(std::min(line.size(), mark.size() + 1)));
        at = end + 1;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text = fuzz::text(data, size);
    const int fd = ::memfd_create("herd-fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    for (std::size_t done = 0; done < size;) {
        const auto n = ::write(fd, data + done, size - done);
        FUZZ_CHECK(n > 0);
        done += std::size_t(n);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);

    herd::OptionsExtension ext;
    ext.program = "herd";
    std::vector<std::string> args{"herd", "--config", path};
    // The input is the config file: a second --config could name /dev/zero, which never ends
    for (auto& a : directives(text, "arg"))
        if (!a.starts_with("--config")) args.push_back(std::move(a));
    for (const auto& w : directives(text, "workers")) {
        std::size_t at = 0;
        while (at < w.size()) {
            const auto end = std::min(w.find(' ', at), w.size());
            if (end > at) ext.worker_types.emplace_back(w.substr(at, end - at));
            at = end + 1;
        }
    }
    if (!directives(text, "exec").empty()) {
        ext.accepts_command = true;
        ext.defaults = herd::exec_defaults();
        args.insert(args.end(), {"--", "/bin/true"});
    }
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);

    try {
        const auto cl = herd::parse_command_line(int(args.size()), argv.data(), ext);
        if (!cl.help && !cl.version) {
            FUZZ_CHECK(!cl.pools.empty());
            for (const auto& pool : cl.pools) FUZZ_CHECK(herd::control::is_pool_name(pool.name));
            herd::validate(cl.options);   // as the start-up does: UsageError too
        }
    } catch (const herd::UsageError& e) {
        // One line on stderr naming the option or the file's line; the input's bytes made printable
        const std::string_view what = e.what();
        FUZZ_CHECK(!what.empty());
        FUZZ_CHECK(fuzz::one_printable_line(what));
    }
    ::close(fd);
    return 0;
}
