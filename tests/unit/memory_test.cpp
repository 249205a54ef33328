// A process's own memory, read from /proc/PID/smaps_rollup.
#include <herd/os/memory.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <sys/wait.h>

using herd::private_memory;
using herd::read_private_memory;

TEST_CASE("private memory is Private_Clean plus Private_Dirty, in bytes")
{
    const char* text = "55d0c0a4e000-7ffd5a3f2000 ---p 00000000 00:00 0                          [rollup]\n"
                       "Rss:               10240 kB\n"
                       "Pss:                6000 kB\n"
                       "Shared_Clean:       4000 kB\n"
                       "Shared_Dirty:          0 kB\n"
                       "Private_Clean:       100 kB\n"
                       "Private_Dirty:      6140 kB\n"
                       "Referenced:        10240 kB\n";
    CHECK(private_memory(text) == std::uint64_t(6240) * 1024);
    CHECK(private_memory("Private_Dirty: 1 kB") == std::uint64_t(1024));
}

TEST_CASE("text without the private lines is no value, not 0")
{
    CHECK_FALSE(private_memory(""));
    CHECK_FALSE(private_memory("Rss: 10 kB\nPss: 5 kB\n"));
    CHECK_FALSE(private_memory("Private_Dirty: garbage\n"));
}

TEST_CASE("a gone process has no memory to read")
{
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK_FALSE(read_private_memory(pid));
    CHECK_FALSE(read_private_memory(-1));
}

TEST_CASE("memory this process writes shows up as its own")
{
    const auto before = read_private_memory(::getpid());
    REQUIRE(before);
    constexpr std::size_t size = 32u << 20;
    auto* block = static_cast<char*>(std::malloc(size));
    REQUIRE(block);
    std::memset(block, 1, size);
    asm volatile("" : : "r"(block) : "memory");   // the writes happen: the block escapes
    const auto after = read_private_memory(::getpid());
    REQUIRE(after);
    CHECK(*after >= *before + size - (4u << 20));
    std::free(block);
}
