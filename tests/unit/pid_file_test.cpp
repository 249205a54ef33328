// PidFile: written atomically, locked while held, stale files replaced, released on exit.
#include <herd/os/pid_file.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

/// A scratch directory under /tmp, removed with everything in it.
struct TempDir {
    std::string path;
    TempDir()
    {
        char name[] = "/tmp/herd-pid-file-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

std::string read_text(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// True if another open file description can take the flock on `path` right now.
bool lockable(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return locked;
}

std::string acquire_error(const std::string& path, int pid)
{
    try {
        herd::PidFile::acquire(path, pid);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

/// A child process that holds the pid file until its stdin pipe closes.
struct Holder {
    pid_t pid = -1;
    int release_fd = -1;

    explicit Holder(const std::string& path)
    {
        int ready[2];
        int release[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(release, O_CLOEXEC) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Child: nothing may unwind into doctest here.
            ::close(ready[0]);
            ::close(release[1]);
            char byte = 0;
            try {
                auto file = herd::PidFile::acquire(path, ::getpid());
                (void)!::write(ready[1], "k", 1);
                (void)!::read(release[0], &byte, 1);   // EOF when the parent lets go
                file.release();
            } catch (...) {
                ::_exit(1);
            }
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(release[0]);
        release_fd = release[1];
        char byte = 0;
        const ssize_t n = ::read(ready[0], &byte, 1);
        ::close(ready[0]);
        REQUIRE(n == 1);
    }

    /// Let the child release the file and exit normally; returns its exit status.
    int finish()
    {
        ::close(std::exchange(release_fd, -1));
        int status = 0;
        ::waitpid(std::exchange(pid, -1), &status, 0);
        return status;
    }

    /// Kill the child without letting it clean up, like a crashed manager.
    void crash()
    {
        ::kill(pid, SIGKILL);
        ::waitpid(std::exchange(pid, -1), nullptr, 0);
        ::close(std::exchange(release_fd, -1));
    }

    ~Holder()
    {
        if (pid > 0) crash();
    }
};

}  // namespace

TEST_CASE("acquire writes our pid and holds the lock")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 4321);
    CHECK(file);
    CHECK(file.path() == path);
    CHECK(read_text(path) == "4321\n");
    CHECK(herd::PidFile::read_pid(path) == 4321);
    CHECK_FALSE(lockable(path));
}

TEST_CASE("the pid file is readable by others and leaves no temporary file behind")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 1);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{}) == 1);
}

TEST_CASE("the locked descriptor is close-on-exec and names the file")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 1);
    REQUIRE(file.fd() >= 0);
    CHECK((::fcntl(file.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    struct stat by_fd {};
    struct stat by_path {};
    REQUIRE(::fstat(file.fd(), &by_fd) == 0);
    REQUIRE(::stat(path.c_str(), &by_path) == 0);
    CHECK(by_fd.st_ino == by_path.st_ino);
}

TEST_CASE("a second acquire while the file is held fails and names the holder")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    // flock locks belong to open file descriptions, so a second acquire in this process conflicts.
    auto file = herd::PidFile::acquire(path, 4321);
    CHECK(acquire_error(path, 5678) == "pid file " + path + " is held by running manager 4321");
    CHECK(read_text(path) == "4321\n");
}

TEST_CASE("a pid file held by another process is refused with that process's pid")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    Holder holder(path);
    CHECK(acquire_error(path, ::getpid()) ==
          "pid file " + path + " is held by running manager " + std::to_string(holder.pid));
    const int status = holder.finish();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("the pid file of a manager that died is replaced")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    Holder holder(path);
    const int dead = holder.pid;
    holder.crash();
    REQUIRE(herd::PidFile::read_pid(path) == dead);
    auto file = herd::PidFile::acquire(path, 4321);
    CHECK(read_text(path) == "4321\n");
}

TEST_CASE("a stale pid file nobody holds is replaced")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    std::ofstream(path) << "99999\n";
    auto file = herd::PidFile::acquire(path, 4321);
    CHECK(herd::PidFile::read_pid(path) == 4321);
    CHECK_FALSE(lockable(path));
}

TEST_CASE("release unlinks the file and can be called again")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 4321);
    file.release();
    CHECK_FALSE(file);
    CHECK(file.fd() == -1);
    CHECK_FALSE(std::filesystem::exists(path));
    file.release();
    CHECK_NOTHROW(herd::PidFile::acquire(path, 1));
}

TEST_CASE("the destructor releases the file")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    { auto file = herd::PidFile::acquire(path, 4321); }
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("release leaves a file alone that is no longer ours")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 4321);
    std::filesystem::remove(path);
    std::ofstream(path) << "777\n";
    file.release();
    CHECK(read_text(path) == "777\n");
}

TEST_CASE("a forked child releasing its copy leaves the file to the owner")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto file = herd::PidFile::acquire(path, 4321);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        file.release();
        ::_exit(0);
    }
    ::waitpid(child, nullptr, 0);
    CHECK(std::filesystem::exists(path));
    CHECK_FALSE(lockable(path));
    file.release();
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("moving a pid file moves the lock and the duty to release")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto first = herd::PidFile::acquire(path, 4321);
    const int fd = first.fd();
    herd::PidFile second = std::move(first);
    CHECK_FALSE(first);
    CHECK(second.fd() == fd);
    first.release();
    CHECK(std::filesystem::exists(path));
    herd::PidFile third;
    third = std::move(second);
    CHECK(third.fd() == fd);
    CHECK_FALSE(lockable(path));
    third.release();
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("adopt takes over a held descriptor and restores close-on-exec")
{
    TempDir dir;
    const std::string path = dir.path + "/herd.pid";
    auto original = herd::PidFile::acquire(path, 4321);
    // What an exec-in-place hand-over passes on: the same open file description, not close-on-exec.
    const int fd = ::dup(original.fd());
    REQUIRE(fd >= 0);
    auto adopted = herd::PidFile::adopt(path, fd);
    CHECK(adopted.fd() == fd);
    CHECK(adopted.path() == path);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    adopted.release();
    CHECK_FALSE(std::filesystem::exists(path));
    original.release();
}

TEST_CASE("read_pid ignores missing, empty and malformed files")
{
    TempDir dir;
    CHECK_FALSE(herd::PidFile::read_pid(dir.path + "/missing.pid"));
    std::ofstream(dir.path + "/empty.pid") << "";
    CHECK_FALSE(herd::PidFile::read_pid(dir.path + "/empty.pid"));
    std::ofstream(dir.path + "/junk.pid") << "12ab\n";
    CHECK_FALSE(herd::PidFile::read_pid(dir.path + "/junk.pid"));
    std::ofstream(dir.path + "/zero.pid") << "0\n";
    CHECK_FALSE(herd::PidFile::read_pid(dir.path + "/zero.pid"));
    std::ofstream(dir.path + "/ok.pid") << "42";
    CHECK(herd::PidFile::read_pid(dir.path + "/ok.pid") == 42);
}

TEST_CASE("a pid file in a missing directory is an OS error naming the path")
{
    TempDir dir;
    const std::string path = dir.path + "/missing/herd.pid";
    try {
        herd::PidFile::acquire(path, 1);
        FAIL("acquire succeeded");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()) == "cannot open pid file " + path + ": No such file or directory");
        CHECK(e.code().value() == ENOENT);
    }
}
