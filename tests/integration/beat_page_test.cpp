// Heartbeat pages (README "Heartbeat protocol"): fork-mode workers beat into a shared page the
// manager reads when a deadline comes. Real managers, real workers: an idle pool costs the manager
// a few wakes per --heartbeat-timeout and is never retired, a hung worker still is, a worker at
// --max-requests still retires at once, no worker can write a sibling's page, and USR2 (and its
// rollback) carries the pages to the next image.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }
std::string test_worker_never_ready() { return binary("TEST_WORKER_NEVER_READY"); }

// The times the kernel switched away from pid, voluntarily or not: each of its wakes counts.
long context_switches(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    long total = 0;
    for (std::string line; std::getline(in, line);)
        if (line.find("ctxt_switches:") != std::string::npos) total += first_number(line);
    return total;
}

// Watch p for `d` (the stretch is what is measured): true if a worker was retired as silent.
bool silence_within(Process& p, std::chrono::milliseconds d, std::size_t from)
{
    return poll_until([&] { p.pump(); return p.count(lines::no_heartbeat, from) > 0; }, in(d), 50ms);
}

}  // namespace

TEST_CASE("idle workers beating into their pages are never retired and wake the manager rarely; a hung one is still retired within the timeout")
{
    HardDeadline guard(20s);
    // Each worker beats 50 times a second: over a pipe that would be 400 wakes of the manager in 2 s.
    Process p(concat({hello_http(), "-w", "4", "-l", "127.0.0.1:0", "--test-endpoints"},
                     fast_options({"--heartbeat-interval", "20ms", "--heartbeat-timeout", "400ms"})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 4 workers ready"), in(5s)), p.output());
    const std::size_t mark = p.lines().size();
    const long before = context_switches(p.pid());
    CHECK_FALSE(silence_within(p, 2000ms, mark));
    const long wakes = context_switches(p.pid()) - before;
    MESSAGE("manager wakes in 2 s idle, 4 workers beating every 20 ms, timeout 400 ms: " << wakes);
    CHECK(wakes < 100);

    // /hang: the worker that took it stops beating; its page's stamp stays where it was.
    const auto sent = Clock::now();
    CHECK_FALSE(http_get("127.0.0.1", port, "/hang", 300ms).ok());
    const auto silent = p.wait_for_line(lines::no_heartbeat, in(3s), mark);
    REQUIRE_MESSAGE(silent, p.output());
    MESSAGE("hung worker retired " << ms_since(sent) << " ms after the request: " << silent->line);
    const double silence = parse_duration_ms(silent->groups[2]);
    CHECK(silence >= 400);
    CHECK(silence < 400 + 200);   // a beat is read at the deadline, not up to a timeout later
    CHECK(p.count(lines::no_heartbeat, mark) == 1);
}

TEST_CASE("a worker reaching --max-requests retires at once, not at its next heartbeat interval")
{
    HardDeadline guard(20s);
    // One worker, one heartbeat every 3 s: only the record it writes at the limit can be this prompt.
    Process p(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--max-requests", "3"},
                     fast_options({"--heartbeat-interval", "3s", "--heartbeat-timeout", "10s"})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 1 workers ready"), in(5s)), p.output());
    const std::size_t mark = p.lines().size();
    for (int i = 0; i < 3; ++i) REQUIRE(http_get("127.0.0.1", port, "/pid", 2s).ok());
    const auto served = Clock::now();
    const auto retired = p.wait_for_line(std::regex(R"(worker (\d+) retiring: max requests \((\d+)\))"), in(2s), mark);
    REQUIRE_MESSAGE(retired, p.output());
    MESSAGE("retired " << ms_since(served) << " ms after its third request");
    CHECK(retired->number(2) == 3);
    CHECK(ms_since(served) < 1000);
    CHECK(http_get("127.0.0.1", port, "/pid", 3s).ok());   // replaced
}

TEST_CASE("a worker cannot write a sibling's heartbeat page, not even through its manager's /proc entries")
{
    HardDeadline guard(20s);
    Process p(concat({test_worker(), "-w", "3", "--mode", "poke-pages"}, fast_options()));
    const auto poked = p.wait_for_line(std::regex(R"(found (\d+) heartbeat pages, wrote (\d+), holds (\d+))"), in(5s));
    REQUIRE_MESSAGE(poked, p.output());
    INFO(poked->line);
    CHECK(poked->number(1) >= 2);   // the manager holds every worker's page (its own, its siblings')
    CHECK(poked->number(2) == 0);
    CHECK(poked->number(3) == 0);   // and a worker holds none: its page is a mapping, not a descriptor
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(5s)), p.output());
    const std::size_t mark = p.lines().size();
    CHECK_FALSE(silence_within(p, 1500ms, mark));   // 3 timeouts: every worker still beats, and is read
    CHECK(ready_pids(p).size() == 3);
}

TEST_CASE("USR2 hands the heartbeat pages over: the next image, and the previous one after a rollback, keep reading them")
{
    HardDeadline guard(40s);
    Deployment d(hello_http());
    d.start(concat({"-w", "3", "-l", "127.0.0.1:0"}, fast_options({"--heartbeat-timeout", "400ms", "--upgrade-timeout", "3s"})));
    const std::string error = d.wait_ready(3, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    Process& p = d.process();
    const std::set<int> generation1 = generation_pids(p, 1);
    REQUIRE(generation1.size() == 3);

    // The new binary's workers never come up: generation 1 serves on, adopted, for 3 s (over 7
    // timeouts), beating only into its pages, then the previous binary adopts them once more.
    deploy(test_worker_never_ready(), d.app());
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    REQUIRE_MESSAGE(p.wait_for_line(lines::upgrade_runs, in(12s), mark), p.output());
    const auto back = p.wait_for_line(lines::upgrade_rolled_back, in(10s), mark);
    REQUIRE_MESSAGE(back, p.output());
    const std::size_t after = p.lines().size();
    CHECK_FALSE(silence_within(p, 1500ms, after));
    INFO("manager output:\n" << p.output());
    CHECK(p.count(lines::no_heartbeat, mark) == 0);
    CHECK(ready_pids(p) == generation1);
    for (int pid : generation1) CHECK(pid_alive(pid));
    CHECK(http_get("127.0.0.1", d.port(), "/pid", 2s).ok());
}
