// Supervision on real processes: hung workers, boot timeouts, crash loops, recycling by age,
// and scaling with TTIN/TTOU.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }

// test-worker with `workers`, fast timing, `--mode mode` and `extra`.
std::vector<std::string> test_worker_args(unsigned workers, const std::string& mode, std::vector<std::string> extra = {})
{
    return concat({test_worker(), "-w", std::to_string(workers), "--mode", mode}, fast_options(extra));
}

// Check the retire-then-kill sequence of a worker silent since `mark`, with the timing given.
void check_no_heartbeat_then_killed(Process& p, int pid, std::size_t mark, double graceful_ms)
{
    const auto silent = p.wait_for_line(worker_line(pid, R"(has no heartbeat for (\S+ \w+) \(timeout (\S+ \w+)\), retiring)"),
                                        in(3s), mark);
    REQUIRE_MESSAGE(silent, "no 'has no heartbeat' line for " << pid << ":\n" << p.output());
    const double silence = parse_duration_ms(silent->groups[1]);
    CHECK(parse_duration_ms(silent->groups[2]) == 500);
    CHECK(silence >= 500);
    CHECK(silence < 1500);

    const auto killing = p.wait_for_line(worker_line(pid, R"(still running (\S+ \w+) after QUIT \(graceful timeout\), killing)"),
                                         in(3s), silent->index);
    REQUIRE_MESSAGE(killing, "no graceful-timeout kill for " << pid << ":\n" << p.output());
    CHECK(parse_duration_ms(killing->groups[1]) == graceful_ms);
    const double waited = std::chrono::duration<double, std::milli>(killing->seen - silent->seen).count();
    CHECK(waited >= graceful_ms - 50);
    CHECK(waited < graceful_ms + 1000);

    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot)"), in(2s), killing->index);
    REQUIRE_MESSAGE(reaped, p.output());
    const std::string why = reaped->groups[1];
    CHECK_MESSAGE((why == "no heartbeat" || why == "killed after graceful timeout"), "classified as: " << why);
    CHECK_FALSE(pid_alive(pid));
}

}  // namespace

TEST_CASE("a hello-http worker stuck in /hang is retired for no heartbeat and killed after the graceful timeout")
{
    HardDeadline guard(20s);
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0"}, fast_options({"--graceful-timeout", "300ms"})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const std::size_t mark = p.lines().size();

    // The request never gets an answer; the worker that took it stops heartbeating.
    const auto hung = http_get("127.0.0.1", port, "/hang", 300ms);
    CHECK_FALSE(hung.ok());
    const auto silent = p.wait_for_line(lines::no_heartbeat, in(3s), mark);
    REQUIRE_MESSAGE(silent, p.output());
    check_no_heartbeat_then_killed(p, silent->number(1), mark, 300);

    // Replaced, and the pool serves again
    CHECK(p.wait_for_line(std::regex("all 2 workers ready"), in(3s), silent->index));
    CHECK(http_get("127.0.0.1", port, "/pid", 2s).ok());
}

TEST_CASE("a test-worker in hang-after mode is retired for no heartbeat, then killed and replaced")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(1, "hang-after=300", {"--graceful-timeout", "300ms"}));
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const int pid = ready->number(1);
    const auto stops = p.wait_for_line(std::regex("test worker " + std::to_string(pid) + " stops heartbeating"), in(3s));
    CHECK_MESSAGE(stops, p.output());

    check_no_heartbeat_then_killed(p, pid, ready->index, 300);
    const auto respawn = p.wait_for_line(lines::ready, in(3s), ready->index + 1);
    REQUIRE_MESSAGE(respawn, p.output());
    CHECK(respawn->number(1) != pid);
    CHECK(respawn->number(2) == 0);
}

TEST_CASE("a worker that never becomes ready is killed at the boot timeout")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(1, "never-ready", {"--boot-timeout", "300ms"}));
    const auto spawned = p.wait_for_line(lines::spawned, in(5s));
    REQUIRE_MESSAGE(spawned, p.output());
    const int pid = spawned->number(1);
    const auto killing = p.wait_for_line(worker_line(pid, R"(not ready (\S+ \w+) after spawn \(boot timeout\), killing)"), in(3s));
    REQUIRE_MESSAGE(killing, p.output());
    CHECK(parse_duration_ms(killing->groups[1]) == 300);
    const double waited = std::chrono::duration<double, std::milli>(killing->seen - spawned->seen).count();
    CHECK(waited >= 250);
    CHECK(waited < 1300);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(2s), killing->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "boot timeout");
    CHECK(p.count(lines::ready) == 0);
}

TEST_CASE("workers that crash at boot: the manager backs off without a fork storm, then exits 3")
{
    HardDeadline guard(40s);
    const auto start = Clock::now();
    Process p(test_worker_args(2, "crash-at-boot", {"--restart-limit", "3/5s"}));

    const auto backing_off = p.wait_for_line(lines::backing_off, in(10s));
    CHECK_MESSAGE(backing_off, "no backing off line:\n" << p.output());

    // No fork storm: over a fixed 2 s window only a handful of workers are spawned.
    const std::size_t spawned_before = p.count(lines::spawned);
    p.wait_exit(in(2s));
    const std::size_t spawned_in_window = p.count(lines::spawned) - spawned_before;
    MESSAGE("spawned before the window: " << spawned_before << ", in 2 s after backing off: " << spawned_in_window);
    CHECK(spawned_before <= 8);
    CHECK(spawned_in_window <= 4);

    const auto status = p.wait_exit(in(25s));
    REQUIRE_MESSAGE(status, "manager still running " << ms_since(start) << " ms after start:\n" << p.output());
    CHECK(status->code == 3);
    const auto giving_up = p.wait_for_line(lines::giving_up, in(100ms));
    CHECK_MESSAGE(giving_up, p.output());
    CHECK(p.count(lines::ready) == 0);
    CHECK(p.count(lines::spawned) <= 20);
    for (const auto& m : p.matches(lines::reaped)) CHECK(m.groups[2] == "crashed (signal 6)");
    MESSAGE("exit 3 after " << ms_since(start) << " ms, " << p.count(lines::spawned) << " spawns");
}

TEST_CASE("a worker exiting at boot is classified with its exit code")
{
    HardDeadline guard(30s);
    Process p(test_worker_args(1, "exit-at-boot=7", {"--restart-limit", "1/5s"}));
    const auto reaped = p.wait_for_line(lines::reaped, in(5s));
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[2] == "crashed (exit code 7)");
    const auto status = p.wait_exit(in(20s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 3);
    CHECK(p.count(lines::giving_up) == 1);
}

TEST_CASE("a pool that was ready and then crashes backs off and does not exit 3")
{
    HardDeadline guard(30s);
    Process p(test_worker_args(2, "crash-after=300", {"--restart-limit", "3/10s"}));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const auto backing_off = p.wait_for_line(lines::backing_off, in(8s));
    REQUIRE_MESSAGE(backing_off, p.output());
    CHECK(backing_off->number(3) == 3);
    for (const auto& m : p.matches(lines::reaped)) CHECK(m.groups[2] == "crashed (signal 6)");

    // Backing off, the manager stays up (and spawns again later); it does not give up.
    CHECK_FALSE(p.wait_exit(in(2500ms)));
    CHECK(p.count(lines::giving_up) == 0);
    CHECK(pid_alive(p.pid()));
}

TEST_CASE("a worker older than --max-worker-age is retired and replaced")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(2, "ok", {"--max-worker-age", "600ms"}));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const auto retiring = p.wait_for_line(std::regex(R"(worker (\d+) retiring: max age \(600 ms\))"), in(3s));
    REQUIRE_MESSAGE(retiring, p.output());
    const int pid = retiring->number(1);
    const auto spawned = p.wait_for_line(worker_line(pid, "spawned"), in(100ms));
    REQUIRE(spawned);
    const double age = std::chrono::duration<double, std::milli>(retiring->seen - spawned->seen).count();
    CHECK(age >= 500);
    CHECK(age < 1500);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (max age)");
    CHECK(poll_until([&] { return ready_pids(p).size() == 2 && ready_pids(p).count(pid) == 0; }, in(3s)));
}

TEST_CASE("TTIN and TTOU change the target; TTOU retires one worker")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(2, "ok"));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());

    // Each signal waits for its line: standard signals sent in a burst coalesce.
    REQUIRE(p.signal(SIGTTIN));
    const auto up1 = p.wait_for_line(std::regex("received TTIN: target is now 3 workers"), in(2s));
    REQUIRE_MESSAGE(up1, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(3s), up1->index), p.output());
    REQUIRE(p.signal(SIGTTIN));
    const auto up2 = p.wait_for_line(std::regex("received TTIN: target is now 4 workers"), in(2s), up1->index);
    REQUIRE_MESSAGE(up2, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 4 workers ready"), in(3s), up2->index), p.output());
    CHECK(ready_pids(p).size() == 4);
    CHECK(p.count(lines::spawned) == 4);

    REQUIRE(p.signal(SIGTTOU));
    const auto down = p.wait_for_line(std::regex("received TTOU: target is now 3 workers"), in(2s), up2->index);
    REQUIRE_MESSAGE(down, p.output());
    const auto retiring = p.wait_for_line(std::regex(R"(worker (\d+) retiring: TTOU)"), in(2s), down->index);
    REQUIRE_MESSAGE(retiring, p.output());
    const int pid = retiring->number(1);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (TTOU)");
    CHECK(ready_pids(p).size() == 3);
    CHECK(p.count(lines::spawned) == 4);
    CHECK_FALSE(pid_alive(pid));
}
