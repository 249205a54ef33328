// UniqueFd and make_pipe: real descriptors, closed by their owner and by nobody else.
#include <herd/os/fd.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

using herd::UniqueFd;

namespace {

bool is_open(int fd)
{
    return ::fcntl(fd, F_GETFD) != -1;
}

bool is_closed(int fd)
{
    return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

int open_null(int flags = O_RDONLY | O_CLOEXEC)
{
    const int fd = ::open("/dev/null", flags);
    REQUIRE(fd >= 0);
    return fd;
}

}  // namespace

TEST_CASE("UniqueFd closes what it owns when it goes")
{
    int raw = -1;
    {
        const UniqueFd fd(open_null());
        raw = fd.get();
        CHECK(static_cast<bool>(fd));
        CHECK(is_open(raw));
    }
    CHECK(is_closed(raw));
}

TEST_CASE("UniqueFd owns nothing when empty or given a failed open()")
{
    const UniqueFd none;
    CHECK_FALSE(static_cast<bool>(none));
    CHECK(none.get() == -1);
    const UniqueFd failed(::open("/nonexistent/herd-fd-test", O_RDONLY | O_CLOEXEC));
    CHECK_FALSE(static_cast<bool>(failed));
    CHECK(failed.get() == -1);
}

TEST_CASE("UniqueFd::release gives the descriptor up unclosed")
{
    int raw = -1;
    {
        UniqueFd fd(open_null());
        raw = fd.release();
        CHECK_FALSE(static_cast<bool>(fd));
        CHECK(fd.get() == -1);
    }
    CHECK(is_open(raw));
    ::close(raw);
}

TEST_CASE("UniqueFd::reset closes the old descriptor and owns the new one")
{
    UniqueFd fd(open_null());
    const int first = fd.get();
    const int second = open_null();
    fd.reset(second);
    CHECK(is_closed(first));
    CHECK(fd.get() == second);
    CHECK(is_open(second));
    fd.reset();
    CHECK(is_closed(second));
    CHECK_FALSE(static_cast<bool>(fd));
}

TEST_CASE("UniqueFd moves ownership: exactly one owner closes")
{
    UniqueFd a(open_null());
    const int raw = a.get();

    UniqueFd b(std::move(a));
    CHECK(a.get() == -1);   // NOLINT(bugprone-use-after-move): the moved-from state is the point
    CHECK(b.get() == raw);

    UniqueFd c(open_null());
    const int other = c.get();
    c = std::move(b);   // c's own descriptor closes, b's moves in
    CHECK(is_closed(other));
    CHECK(b.get() == -1);   // NOLINT(bugprone-use-after-move)
    CHECK(c.get() == raw);
    CHECK(is_open(raw));

    c = std::move(c);   // NOLINT(clang-diagnostic-self-move): self-move keeps the descriptor
    CHECK(c.get() == raw);
    CHECK(is_open(raw));

    { const UniqueFd last(std::move(c)); }
    CHECK(is_closed(raw));
}

TEST_CASE("UniqueFd leaves close-on-exec as the descriptor was opened")
{
    const UniqueFd with(open_null(O_RDONLY | O_CLOEXEC));
    const UniqueFd without(open_null(O_RDONLY));
    CHECK((::fcntl(with.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(without.get(), F_GETFD) & FD_CLOEXEC) == 0);
}

TEST_CASE("make_pipe returns both ends, owned, with the flags asked for")
{
    int r = -1, w = -1;
    {
        herd::PipeFds p = herd::make_pipe(O_CLOEXEC);
        r = p.read.get();
        w = p.write.get();
        REQUIRE(r >= 0);
        REQUIRE(w >= 0);
        CHECK((::fcntl(r, F_GETFD) & FD_CLOEXEC) != 0);
        CHECK((::fcntl(w, F_GETFD) & FD_CLOEXEC) != 0);
        char byte = 'x';
        CHECK(::write(w, &byte, 1) == 1);
        byte = 0;
        CHECK(::read(r, &byte, 1) == 1);
        CHECK(byte == 'x');
    }
    CHECK(is_closed(r));
    CHECK(is_closed(w));

    const herd::PipeFds plain = herd::make_pipe(0);
    CHECK((::fcntl(plain.read.get(), F_GETFD) & FD_CLOEXEC) == 0);
}

TEST_CASE("make_pipe throws std::system_error naming what failed")
{
    // No descriptor free below the limit: pipe2 fails with EMFILE.
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    const int lowest_free = open_null();
    ::close(lowest_free);
    rlimit low = old;
    low.rlim_cur = rlim_t(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::string message;
    int code = 0;
    try {
        (void)herd::make_pipe(O_CLOEXEC, "cannot create a heartbeat pipe");
    } catch (const std::system_error& e) {
        message = e.what();
        code = e.code().value();
    }
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(code == EMFILE);
    CHECK(message.starts_with("cannot create a heartbeat pipe: "));
}
