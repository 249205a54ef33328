// Preloading (herd::Worker's static preload, ManagerHooks::preload): state built once in the
// manager before the first fork, read by every worker through pages shared copy-on-write. A
// respawn and a reload (HUP) fork from the same state; an upgrade (USR2) builds it anew.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <cstdint>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

constexpr unsigned preload_mib = 64;

// What a worker reads from the buffer test-worker's preload fills: byte i is i % 251 + 1.
std::uint64_t expected_checksum()
{
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < std::size_t(preload_mib) << 20; ++i) sum += i % 251 + 1;
    return sum;
}

const std::regex read_line(R"(test worker (\d+) read (\d+) MiB preloaded by (\d+), checksum (\d+), private memory (\d+) kB)");

std::vector<std::string> lines_of(const std::string& path)
{
    std::vector<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// Every worker that read the buffer after line `from`: it saw the manager's bytes, and they stayed shared.
void check_reads(const std::vector<Match>& reads, pid_t manager, std::uint64_t checksum)
{
    for (const Match& r : reads) {
        INFO(r.line);
        CHECK(r.number(1) != manager);
        CHECK(r.number(2) == int(preload_mib));
        CHECK(r.number(3) == manager);   // the manager built it, before forking this worker
        CHECK(std::stoull(r[4]) == checksum);
        // A copy would be all 64 MiB private; shared pages count for none of it
        CHECK(std::stol(r[5]) < long(preload_mib) * 1024 / 2);
    }
}

}  // namespace

TEST_CASE("preloaded state is built once by the manager and shared by every worker, respawned and reloaded ones too")
{
    HardDeadline guard(60s);
    TempDir dir;
    const std::string log = dir / "preload.log";
    Process p(concat({binary("TEST_WORKER"), "-w", "2", "--mode", "read-preload", "--preload", std::to_string(preload_mib),
                      "--preload-log", log},
                     fast_options()));
    const std::uint64_t checksum = expected_checksum();
    const auto built = p.wait_for_line(std::regex("test-worker preloaded 64 MiB in manager (\\d+)"), in(20s));
    REQUIRE_MESSAGE(built, p.output());
    CHECK(built->number(1) == p.pid());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("manager \\d+ preloaded the application in "), in(5s)), p.output());
    auto reads = p.wait_for_lines(read_line, 2, in(20s));
    REQUIRE_MESSAGE(reads.size() == 2, p.output());
    check_reads(reads, p.pid(), checksum);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(10s)), p.output());

    // A respawn forks from the same state
    std::size_t mark = p.lines().size();
    REQUIRE(::kill(reads[0].number(1), SIGKILL) == 0);
    reads = p.wait_for_lines(read_line, 1, in(20s), mark);
    REQUIRE_MESSAGE(reads.size() == 1, p.output());
    check_reads(reads, p.pid(), checksum);

    // A reload keeps it: two new workers, no new preload
    mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("reload to generation \\d+ complete"), in(20s), mark), p.output());
    reads = p.matches(read_line, mark);
    CHECK(reads.size() == 2);
    check_reads(reads, p.pid(), checksum);
    CHECK(p.count(std::regex("test-worker preloaded"), mark) == 0);
    CHECK(lines_of(log) == std::vector<std::string>{"built by " + std::to_string(p.pid())});

    // An upgrade execs the binary again, which builds it anew (in the same manager process)
    mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("upgrade to generation \\d+ complete"), in(30s), mark), p.output());
    CHECK(p.count(std::regex("test-worker preloaded 64 MiB in manager " + std::to_string(p.pid())), mark) == 1);
    reads = p.matches(read_line, mark);
    CHECK(reads.size() == 2);
    check_reads(reads, p.pid(), checksum);
    CHECK(lines_of(log) == std::vector<std::string>(2, "built by " + std::to_string(p.pid())));

    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(10s));
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("a preload that fails is one line on stderr and exit 1, before any worker runs")
{
    HardDeadline guard(20s);
    TempDir dir;
    // A log file in a directory that does not exist: the preload throws
    Process p(concat({binary("TEST_WORKER"), "-w", "2", "--preload", "1", "--preload-log", dir / "missing/preload.log"},
                     fast_options()));
    const auto status = p.wait_exit(in(15s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 1);
    CHECK(p.count(std::regex("preload failed: cannot append to --preload-log .*missing/preload.log")) == 1);
    CHECK(p.count(std::regex("spawned")) == 0);
}

TEST_CASE("a QUIT that comes while the manager starts (here: while it preloads) is acted on once it runs")
{
    HardDeadline guard(30s);
    Process p(concat({binary("TEST_WORKER"), "-w", "2", "--listen", "127.0.0.1:0", "--preload", std::to_string(preload_mib)},
                     fast_options()));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("listening on "), in(10s)), p.output());
    REQUIRE(p.signal(SIGQUIT));   // before the preload ends: the manager reads no signal yet
    const auto built = p.wait_for_line(std::regex("test-worker preloaded 64 MiB in manager (\\d+)"), in(20s));
    REQUIRE_MESSAGE(built, p.output());
    CHECK_MESSAGE(p.wait_for_line(std::regex("received QUIT"), in(10s)), p.output());
    const auto status = p.wait_exit(in(10s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}
