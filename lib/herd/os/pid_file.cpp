// PidFile: acquire, replace atomically, release. The protocol is described in pid_file.hpp.
#include <herd/os/pid_file.hpp>

#include <herd/os/fd.hpp>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace herd {

namespace {

[[noreturn]] void throw_errno(const std::string& what, int error = errno)
{
    throw std::system_error(error, std::generic_category(), what);
}

int flock_retry(int fd, int operation)
{
    int rc = 0;
    do rc = ::flock(fd, operation);
    while (rc != 0 && errno == EINTR);
    return rc;
}

bool same_inode(const struct stat& a, const struct stat& b)
{
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/// True if `path` names the inode open as `fd`.
bool names_inode(const std::string& path, int fd)
{
    struct stat by_path {};
    struct stat by_fd {};
    return ::stat(path.c_str(), &by_path) == 0 && ::fstat(fd, &by_fd) == 0 && same_inode(by_path, by_fd);
}

void write_all(int fd, std::string_view data, const std::string& path)
{
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("cannot write pid file " + path);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::string directory_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

/// Open and lock the inode now at `path`; -1 if a live manager holds it.
int lock_current(const std::string& path)
{
    // Another manager may rename a fresh file over `path` between our open and our flock; the
    // lock we then get is on an inode nobody looks at any more, so check and start over.
    for (;;) {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
        if (!fd) throw_errno("cannot open pid file " + path);
        if (flock_retry(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) return -1;
            throw_errno("cannot lock pid file " + path);
        }
        if (names_inode(path, fd.get())) return fd.release();
    }
}

}  // namespace

PidFile::PidFile(std::string path, int fd) noexcept : path_(std::move(path)), fd_(fd), owner_(::getpid()) {}

PidFile::PidFile(PidFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), owner_(other.owner_)
{
}

PidFile& PidFile::operator=(PidFile&& other) noexcept
{
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
        owner_ = other.owner_;
    }
    return *this;
}

PidFile::~PidFile()
{
    release();
}

PidFile PidFile::acquire(const std::string& path, int pid)
{
    // Lock the file now at path
    const UniqueFd old_fd(lock_current(path));
    if (!old_fd) {
        const std::optional<int> holder = read_pid(path);
        throw std::runtime_error("pid file " + path + " is held by running manager" +
                                 (holder ? " " + std::to_string(*holder) : std::string{}));
    }

    // Write and lock the replacement
    std::string tmp_path = path + ".XXXXXX";
    UniqueFd new_fd(::mkostemp(tmp_path.data(), O_CLOEXEC));
    if (!new_fd) throw_errno("cannot create pid file " + tmp_path);
    try {
        // mkostemp creates 0600; a pid file is meant to be read by others (scripts, monitoring).
        if (::fchmod(new_fd.get(), 0644) != 0) throw_errno("cannot chmod pid file " + tmp_path);
        write_all(new_fd.get(), std::to_string(pid) + "\n", tmp_path);
        if (::fsync(new_fd.get()) != 0) throw_errno("cannot sync pid file " + tmp_path);
        // Nobody else knows the random name yet, so this cannot block.
        if (flock_retry(new_fd.get(), LOCK_EX) != 0) throw_errno("cannot lock pid file " + tmp_path);
        if (::rename(tmp_path.c_str(), path.c_str()) != 0)
            throw_errno("cannot rename " + tmp_path + " to " + path);
    } catch (...) {
        ::unlink(tmp_path.c_str());
        throw;
    }

    // Make the rename durable; a failure here costs nothing but durability after a crash.
    if (const UniqueFd dir(::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir)
        ::fsync(dir.get());
    return PidFile(path, new_fd.release());   // old_fd closes here, releasing the old inode's lock
}

PidFile PidFile::adopt(std::string path, int fd)
{
    // The descriptor came through exec, so it had to lose FD_CLOEXEC; restore it for our children.
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) throw_errno("cannot adopt pid file " + path);
    return PidFile(std::move(path), fd);
}

std::optional<int> PidFile::read_pid(const std::string& path)
{
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    char buffer[32];
    ssize_t n = 0;
    do n = ::read(fd.get(), buffer, sizeof buffer);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return std::nullopt;

    std::string_view text(buffer, static_cast<std::size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    int pid = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc{} || end != text.data() + text.size() || pid <= 0) return std::nullopt;
    return pid;
}

void PidFile::release() noexcept
{
    if (fd_ < 0) return;
    // Unlink only our own inode: after a hand-over or a manual cleanup the path may name another
    // manager's file. We still hold the lock here, so nobody can take over in between. A forked
    // worker unwinding by mistake shares the inode and the lock, but must not remove the manager's file.
    if (::getpid() == owner_ && names_inode(path_, fd_)) ::unlink(path_.c_str());
    ::close(fd_);
    fd_ = -1;
}

}  // namespace herd
