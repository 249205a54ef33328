// What execve(2) would say about a command: see executable.hpp.
#include <herd/os/executable.hpp>

#include <herd/os/fd.hpp>
#include <herd/config/options.hpp>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace herd {

namespace {

// Why the kernel would not execute a file: errno, and for a file found but unusable, what is
// wrong with it (then a PATH search stops there, as execvp's would).
struct NotExecutable {
    int error = 0;        // 0: it would be executed
    std::string detail;   // the whole reason when the file is there but unusable; else strerror(error) says it
};

// Whether any binfmt_misc handler is registered: then a format herd does not know may still run.
bool binfmt_misc_handlers()
{
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/sys/fs/binfmt_misc", ec)) {
        const std::string name = e.path().filename().string();
        if (name != "register" && name != "status") return true;
    }
    return false;
}

// The program interpreter (PT_INTERP) an ELF file of this machine's word size and byte order
// names: the dynamic loader the kernel opens with it. Empty for a static binary, and for one of
// another class or byte order (compat and binfmt_misc are the kernel's to judge).
std::string elf_interpreter(int fd)
{
    Elf64_Ehdr eh{};
    if (::pread(fd, &eh, sizeof eh, 0) != ssize_t(sizeof eh)) return {};
    const bool little = std::endian::native == std::endian::little;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != (little ? ELFDATA2LSB : ELFDATA2MSB) ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        return {};
    for (unsigned i = 0; i < eh.e_phnum && i < 256; ++i) {
        Elf64_Phdr ph{};
        if (::pread(fd, &ph, sizeof ph, off_t(eh.e_phoff + i * sizeof ph)) != ssize_t(sizeof ph)) return {};
        if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > 4096) continue;
        std::string path(ph.p_filesz, '\0');
        if (::pread(fd, path.data(), path.size(), off_t(ph.p_offset)) != ssize_t(path.size())) return {};
        path.resize(std::strlen(path.c_str()));
        return path;
    }
    return {};
}

// What execve(2) would say about `p`, short of running it: a regular file with the x bit that
// starts with ELF's magic (and whose loader, if it names one, is there), or with "#!" and an interpreter that passes the same test (a script may
// name a script, four deep, as the kernel allows); anything else is ENOEXEC, unless binfmt_misc
// has handlers (herd does not match their rules).
NotExecutable executable(const std::filesystem::path& p, int depth = 0)
{
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {errno, {}};
    if (S_ISDIR(st.st_mode)) return {EISDIR, {}};
    if (!S_ISREG(st.st_mode)) return {EACCES, {}};
    if (::access(p.c_str(), X_OK) != 0) return {errno, {}};

    // The first bytes: the kernel reads 256 (BINPRM_BUF_SIZE) to find the format and the #! line
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {};   // execute-only (no read permission): the kernel may still run it
    std::array<char, 256> head{};
    ssize_t n;
    while ((n = ::read(fd.get(), head.data(), head.size())) < 0 && errno == EINTR) {
    }
    const std::string_view bytes(head.data(), n > 0 ? std::size_t(n) : 0);
    const std::string loader = bytes.starts_with(ELFMAG) ? elf_interpreter(fd.get()) : std::string();
    fd.reset();
    if (bytes.starts_with(ELFMAG)) {
        // A binary built for another system names a loader this one may not have (ENOENT at exec)
        if (loader.empty()) return {};
        if (const NotExecutable in = executable(loader, 4); in.error && in.detail.empty())
            return {in.error, "its ELF interpreter " + loader + ": " + std::strerror(in.error)};
        return {};
    }
    if (!bytes.starts_with("#!")) {
        if (binfmt_misc_handlers()) return {};
        return {ENOEXEC, "Exec format error (neither an ELF binary nor a script starting with #!)"};
    }
    // "#!" [blanks] INTERPRETER [blanks ARG] "\n"
    const std::size_t newline = bytes.find('\n');
    std::string_view line = bytes.substr(2, newline == bytes.npos ? bytes.npos : newline - 2);
    const auto start = line.find_first_not_of(" \t");
    line = start == line.npos ? std::string_view{} : line.substr(start);
    const auto end = line.find_first_of(" \t");
    const std::string interpreter(line.substr(0, end));
    if (interpreter.empty()) return {ENOEXEC, "Exec format error (its #! line names no interpreter)"};
    if (end == line.npos && newline == bytes.npos && bytes.size() == head.size())
        return {ENOEXEC, "Exec format error (its #! line is longer than the 256 bytes the kernel reads)"};
    if (depth >= 4) return {ELOOP, "its interpreter " + interpreter + " is a script nested too deep"};
    const NotExecutable in = executable(interpreter, depth + 1);
    if (in.error == 0) return {};
    return {in.error, "its interpreter " + interpreter + " (#! line): " +
                          (in.detail.empty() ? std::string(std::strerror(in.error)) : in.detail)};
}

}  // namespace

// Resolving the command, as execvp(3) would
Program resolve_command(const std::vector<std::string>& command, std::string_view path_env)
{
    namespace fs = std::filesystem;
    if (command.empty() || command.front().empty())
        throw UsageError("no command to run: herd [options] -- COMMAND [ARGS...]");
    const std::string& name = command.front();
    const auto refuse = [](const std::string& shown, const NotExecutable& why) {
        return UsageError("cannot execute " + shown + ": " +
                          (why.detail.empty() ? std::string(std::strerror(why.error)) : why.detail));
    };
    if (name.find('/') != std::string::npos) {
        if (const NotExecutable why = executable(name); why.error) throw refuse(name, why);
        return {fs::absolute(name).lexically_normal().string(), command};
    }
    int denied = 0;
    std::size_t pos = 0;
    while (pos <= path_env.size()) {
        const std::size_t colon = std::min(path_env.find(':', pos), path_env.size());
        const std::string dir(path_env.substr(pos, colon - pos));
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
        const NotExecutable why = executable(candidate);
        if (why.error == 0) return {fs::absolute(candidate).lexically_normal().string(), command};
        // Found and executable, but the kernel cannot run it: execvp stops here too.
        if (!why.detail.empty()) throw refuse(fs::absolute(candidate).lexically_normal().string(), why);
        if (why.error == EACCES) denied = why.error;   // as execvp: found but not executable is reported if nothing else is found
        pos = colon + 1;
    }
    if (denied) throw UsageError("cannot execute '" + name + "': " + std::strerror(denied));
    throw UsageError("cannot execute '" + name + "': not found in PATH (" + std::string(path_env) + ")");
}

}  // namespace herd
