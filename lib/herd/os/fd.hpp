// UniqueFd: one owned file descriptor, closed when its owner goes. PipeFds: both ends of a pipe.
// Internal to the library. Close-on-exec is whatever the descriptor was opened with: this type
// neither sets nor clears it. Descriptors handed on across exec (the USR2 hand-over) stay plain ints.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace herd {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    /// Takes ownership of `fd`; a negative value (a failed open()) owns nothing.
    explicit UniqueFd(int fd) noexcept : fd_(fd < 0 ? -1 : fd) {}
    ~UniqueFd() { reset(); }

    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Gives the descriptor up without closing it; this object then owns nothing.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes what is owned now and owns `fd` instead.
    void reset(int fd = -1) noexcept
    {
        const int old = std::exchange(fd_, fd < 0 ? -1 : fd);
        if (old >= 0) ::close(old);
    }

private:
    int fd_ = -1;
};

struct PipeFds {
    UniqueFd read;
    UniqueFd write;
};

/// pipe2(flags); throws std::system_error whose message starts with `what` (e.g. "cannot create a heartbeat pipe").
inline PipeFds make_pipe(int flags, const std::string& what = "cannot create a pipe")
{
    int fds[2];
    if (::pipe2(fds, flags) != 0) throw std::system_error(errno, std::generic_category(), what);
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace herd
