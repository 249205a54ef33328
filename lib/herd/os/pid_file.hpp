// PidFile: the manager's pid file (--pid-file), written atomically and held with flock.
//
// Protocol: the file at PATH holds the manager's pid and a newline. Its inode is locked with
// flock(LOCK_EX) for as long as the manager runs, so a second manager, or a script, can tell a
// live pid file from a stale one without trusting the pid in it (pids are reused):
//   1. open PATH (O_CREAT) and flock(LOCK_EX|LOCK_NB) it; if that fails a live manager holds it;
//      if PATH names another inode by then, someone replaced it meanwhile: start over;
//   2. write the pid to PATH.XXXXXX in the same directory, fsync, flock it;
//   3. rename it over PATH (readers see the old or the new file, never a partial one);
//   4. close the old inode, releasing its lock.
// flock locks belong to the open file description: they survive exec (hand-over in place) and are
// shared with forked children that keep the descriptor, so workers should close fd() after fork.
// A forked child that releases (or destroys) its copy only closes it: only the owner unlinks.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace herd {

class PidFile {
public:
    /// An empty handle that holds nothing.
    PidFile() = default;
    PidFile(PidFile&& other) noexcept;
    PidFile& operator=(PidFile&& other) noexcept;
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;
    /// Releases the file (see release()).
    ~PidFile();

    /// Write `pid` to `path` atomically and lock it; throws std::runtime_error if a live manager
    /// holds it ("pid file PATH is held by running manager PID"), std::system_error on OS failures.
    static PidFile acquire(const std::string& path, int pid);
    /// Take over a descriptor that already holds the lock on `path` (exec-in-place hand-over); sets FD_CLOEXEC.
    static PidFile adopt(std::string path, int fd);
    /// The pid written in `path`, if the file exists and holds a positive number.
    static std::optional<int> read_pid(const std::string& path);

    /// The locked descriptor (FD_CLOEXEC), or -1 when empty.
    int fd() const noexcept { return fd_; }
    /// The path the file was acquired at.
    const std::string& path() const noexcept { return path_; }
    /// True while the lock is held.
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Unlink the file if it is still ours (same inode, same process), then drop the lock; idempotent.
    void release() noexcept;

private:
    PidFile(std::string path, int fd) noexcept;

    std::string path_;
    int fd_ = -1;
    int owner_ = -1;   // the pid that acquired or adopted the file
};

}  // namespace herd
