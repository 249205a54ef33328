// Supervision on real processes: hung workers, boot timeouts, crash loops, recycling by age,
// scaling with TTIN/TTOU, and workers that flood their heartbeat channel.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }

// When the harness read a line depends on how busy it was (under a sanitizer it can be late by
// a few hundred milliseconds); intervals are measured by the manager's clock, the lines' timestamps.
// Milliseconds of the day from a log line's "[YYYY-MM-DD HH:MM:SS.mmm]" timestamp.
double log_time_ms(const std::string& line)
{
    int h = 0, m = 0, sec = 0, ms = 0;
    if (std::sscanf(line.c_str(), "[%*d-%*d-%*d %d:%d:%d.%d]", &h, &m, &sec, &ms) != 4) return -1e9;
    return ((h * 60.0 + m) * 60.0 + sec) * 1000.0 + ms;
}


// test-worker with `workers`, fast timing, `--mode mode` and `extra`.
std::vector<std::string> test_worker_args(unsigned workers, const std::string& mode, std::vector<std::string> extra = {})
{
    return concat({test_worker(), "-w", std::to_string(workers), "--mode", mode}, fast_options(extra));
}

// Check the retire-then-kill sequence of a worker silent since `mark`, with the timing given.
void check_no_heartbeat_then_killed(Process& p, int pid, std::size_t mark, double graceful_ms)
{
    const auto silent = p.wait_for_line(worker_line(pid, R"(has no heartbeat for (\S+ \S+) \(timeout (\S+ \S+)\), retiring)"),
                                        in(3s), mark);
    REQUIRE_MESSAGE(silent, "no 'has no heartbeat' line for " << pid << ":\n" << p.output());
    const double silence = parse_duration_ms(silent->groups[1]);
    CHECK(parse_duration_ms(silent->groups[2]) == 500);
    CHECK(silence >= 500);
    CHECK(silence < 1500);

    const auto killing = p.wait_for_line(worker_line(pid, R"(still running (\S+ \S+) after QUIT \(graceful timeout\), killing)"),
                                         in(3s), silent->index);
    REQUIRE_MESSAGE(killing, "no graceful-timeout kill for " << pid << ":\n" << p.output());
    // The line names the time since QUIT: the graceful timeout, or a little more.
    CHECK(parse_duration_ms(killing->groups[1]) >= graceful_ms);
    CHECK(parse_duration_ms(killing->groups[1]) < graceful_ms + 500);
    const double waited = log_time_ms(killing->line) - log_time_ms(silent->line);
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
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0", "--test-endpoints"}, fast_options({"--graceful-timeout", "300ms"})));
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
    const int hung_pid = silent->number(1);
    CHECK(poll_until([&] { return ready_pids(p).size() == 2 && ready_pids(p).count(hung_pid) == 0; }, in(3s)));
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
    const auto killing = p.wait_for_line(worker_line(pid, R"(not ready (\S+ \S+) after spawn \(boot timeout\), killing)"), in(3s));
    REQUIRE_MESSAGE(killing, p.output());
    // The line names the time since spawn: the boot timeout, or a little more.
    CHECK(parse_duration_ms(killing->groups[1]) >= 300);
    CHECK(parse_duration_ms(killing->groups[1]) < 800);
    const double waited = log_time_ms(killing->line) - log_time_ms(spawned->line);
    CHECK(waited >= 250);
    CHECK(waited < 1300);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(2s), killing->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "boot timeout");
    CHECK(p.count(lines::ready) == 0);
}

TEST_CASE("workers that crash at boot and were never ready: no fork storm, exit 3 with 'giving up'")
{
    HardDeadline guard(30s);
    const auto start = Clock::now();
    Process p(test_worker_args(2, "crash-at-boot", {"--restart-limit", "3/5s"}));
    const auto status = p.wait_exit(in(20s));
    REQUIRE_MESSAGE(status, "manager still running " << ms_since(start) << " ms after start:\n" << p.output());
    MESSAGE("exit after " << ms_since(start) << " ms, " << p.count(lines::spawned) << " spawns, "
                          << p.count(lines::backing_off) << " backing off lines");
    CHECK(status->exited());
    CHECK(status->code == 3);
    const auto giving_up = p.wait_for_line(lines::giving_up, in(100ms));
    REQUIRE_MESSAGE(giving_up, p.output());
    CHECK(giving_up->number(1) > 3);
    CHECK(p.wait_for_line(std::regex("manager " + std::to_string(p.pid()) + " exiting with code 3"), in(100ms)));
    CHECK(p.count(lines::ready) == 0);
    // No fork storm: a few spawns past the limit of 3, not hundreds.
    CHECK(p.count(lines::spawned) <= 3 + 2 + 4);
    const auto reaped = p.matches(lines::reaped);
    CHECK(reaped.size() >= 4);
    for (const auto& m : reaped) CHECK(m.groups[2] == "crashed (signal 6)");
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

    const double delay_ms = parse_duration_ms(backing_off->groups[4]);
    CHECK(delay_ms > 0);

    // Backing off, the manager stays up; it does not give up and does not fork in a loop.
    const std::size_t spawned_before = p.count(lines::spawned);
    CHECK_FALSE(p.wait_exit(in(2500ms)));
    const std::size_t spawned_in_window = p.count(lines::spawned) - spawned_before;
    MESSAGE("backing off (next spawn in " << backing_off->groups[4] << "); " << spawned_in_window
                                          << " spawns in the next 2.5 s");
    CHECK(spawned_in_window <= 6);
    CHECK(p.count(lines::giving_up) == 0);
    CHECK(pid_alive(p.pid()));
}

TEST_CASE("a worker older than --max-worker-age is retired and replaced")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(2, "ok", {"--max-worker-age", "600ms"}));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const auto retiring = p.wait_for_line(std::regex(R"(worker (\d+) retiring: max age \((\S+ \S+)\))"), in(3s));
    REQUIRE_MESSAGE(retiring, p.output());
    // The line names the worker's age: the limit plus at most 10 % jitter, or a little more.
    CHECK(parse_duration_ms(retiring->groups[2]) >= 600);
    CHECK(parse_duration_ms(retiring->groups[2]) < 1500);
    const int pid = retiring->number(1);
    const auto spawned = p.wait_for_line(worker_line(pid, "spawned"), in(100ms));
    REQUIRE(spawned);
    // The same from the log's clock: the age counts from the fork, the "spawned" line comes after
    // it (tens of milliseconds on a loaded machine, or under a sanitizer).
    const double age = log_time_ms(retiring->line) - log_time_ms(spawned->line);
    CHECK(age >= 550);
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
    const auto retiring = p.wait_for_line(std::regex(R"(worker (\d+) retiring: scaled down)"), in(2s), down->index);
    REQUIRE_MESSAGE(retiring, p.output());
    const int pid = retiring->number(1);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (scaled down)");
    CHECK(ready_pids(p).size() == 3);
    CHECK(p.count(lines::spawned) == 4);
    CHECK_FALSE(pid_alive(pid));
}

TEST_CASE("a worker reporting units of work past --max-requests is retired and replaced")
{
    HardDeadline guard(20s);
    // 1 unit per 10 ms tick: the limit of 20 is passed after about 200 ms.
    Process p(test_worker_args(1, "ok", {"--units", "1", "--max-requests", "20"}));
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const int pid = ready->number(1);
    const auto retiring = p.wait_for_line(worker_line(pid, R"(retiring: max requests \((\d+)\))"), in(3s));
    REQUIRE_MESSAGE(retiring, p.output());
    CHECK(retiring->number(1) >= 20);
    const double after = log_time_ms(retiring->line) - log_time_ms(ready->line);
    CHECK(after >= 150);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (max requests)");
    CHECK(poll_until([&] { return ready_pids(p).size() == 1 && ready_pids(p).count(pid) == 0; }, in(3s)));
}

namespace {

// Children of `parent` whose process title says they are the standby (zombies aside).
std::vector<int> standbys(pid_t parent)
{
    std::vector<int> found;
    for (const auto& c : children_of(parent))
        if (c.state != 'Z' && c.title.find(": standby") != std::string::npos) found.push_back(c.pid);
    return found;
}

bool reaped(int pid)
{
    return !std::filesystem::exists("/proc/" + std::to_string(pid));
}

}  // namespace

TEST_CASE("a standby becomes the replacement of a killed worker, and a dead standby is reaped and replaced")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(2, "ok"));
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    int standby = 0;
    REQUIRE_MESSAGE(poll_until([&] { auto s = standbys(p.pid()); return s.size() == 1 && (standby = s[0]); }, in(3s)),
                    "no standby next to a steady pool");

    // A killed worker's replacement is the standby itself: no fork on the way
    const int victim = *ready_pids(p).begin();
    const std::size_t mark = p.lines().size();
    REQUIRE(::kill(victim, SIGKILL) == 0);
    const auto spawned = p.wait_for_line(lines::spawned, in(3s), mark);
    REQUIRE_MESSAGE(spawned, p.output());
    CHECK(spawned->number(1) == standby);
    REQUIRE(p.wait_for_line(worker_line(standby, "ready in slot"), in(3s), mark));

    // Another standby follows; killed, it is reaped (no zombie) and replaced
    int next = 0;
    REQUIRE(poll_until([&] { auto s = standbys(p.pid()); return s.size() == 1 && s[0] != standby && (next = s[0]); }, in(3s)));
    REQUIRE(::kill(next, SIGKILL) == 0);
    CHECK_MESSAGE(poll_until([&] { return reaped(next); }, in(3s)), "the dead standby was not reaped");
    CHECK(poll_until([&] { auto s = standbys(p.pid()); return s.size() == 1 && s[0] != next; }, in(3s)));
    CHECK(p.count(lines::reaped, mark) == 1);   // only the killed worker: a standby is no worker

    // A graceful stop ends the standby with everything else
    const int last = standbys(p.pid()).at(0);
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->exited());
    CHECK(status->code == 0);
    CHECK(reaped(last));
}

TEST_CASE("--spare 0 keeps no standby")
{
    HardDeadline guard(10s);
    Process p(test_worker_args(2, "ok", {"--spare", "0"}));
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    // A standby would be forked within a loop turn of the pool being steady; give it 300 ms.
    CHECK_FALSE(poll_until([&] { return !standbys(p.pid()).empty(); }, in(300ms)));
}

// Workers that flood their heartbeat channel (test-worker's flood modes: the worker in slot 0
// floods, the others heartbeat every 100 ms).
namespace {

// Of one core, over a flood. A manager that read each channel as fast as it was written took
// 50-99 % here; paced, it takes under 1 % (2-3 % under ASan+UBSan): room for a loaded machine.
constexpr double flood_cpu_bound = 10.0;

// The manager's CPU use over `window` in % of one core, reading its output meanwhile; -1 if it
// exited.
double manager_cpu_percent(Process& p, std::chrono::milliseconds window)
{
    const double before = cpu_seconds(p.pid());
    const auto start = Clock::now();
    if (p.wait_exit(start + window)) return -1;
    const double after = cpu_seconds(p.pid());
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (before < 0 || after < 0) return -1;
    return 100.0 * (after - before) / seconds;
}

// Any byte of the output that a terminal would act on: every control byte but the newline, DEL.
std::size_t raw_control_bytes(const std::string& text)
{
    std::size_t n = 0;
    for (unsigned char c : text)
        if ((c < 0x20 && c != '\n') || c == 0x7f) ++n;
    return n;
}

// The pid of the ready worker in `slot` the log names first at or after line `from`.
std::optional<Match> ready_in_slot(Process& p, int slot, Deadline deadline, std::size_t from = 0)
{
    return p.wait_for_line(std::regex(R"(worker (\d+) ready in slot )" + std::to_string(slot) + " after"), deadline, from);
}

}  // namespace

TEST_CASE("a worker flooding its heartbeat channel with valid records costs the manager little, and the pool works on")
{
    HardDeadline guard(20s);
    Process p(test_worker_args(3, "flood-records"));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(5s)), p.output());
    const auto flooder = ready_in_slot(p, 0, in(1s));
    REQUIRE(flooder);
    const int pid = flooder->number(1);
    const auto floods = p.wait_for_line(worker_line(pid, R"(floods its heartbeat channel: (\d+) bytes within (\S+ \S+); )"
                                                         "it is read no faster than that from now on"), in(3s));
    REQUIRE_MESSAGE(floods, p.output());
    CHECK(floods->number(1) == 16384);
    CHECK(parse_duration_ms(floods->groups[2]) == 100);

    const std::size_t mark = p.lines().size();
    const double cpu = manager_cpu_percent(p, 2000ms);
    MESSAGE("manager CPU while one worker floods valid records: " << cpu << " % of a core");
    CHECK(cpu >= 0);
    CHECK(cpu < flood_cpu_bound);
    // Nobody hung, nobody retired (valid records are heartbeats), nothing more logged about it
    CHECK(p.count(lines::retiring) == 0);
    CHECK(p.count(lines::reaped) == 0);
    CHECK(p.lines().size() - mark <= 2);
    CHECK(ready_pids(p).size() == 3);
    CHECK(p.count(worker_line(pid, "floods its heartbeat channel: ")) == 1);

    // The manager still acts at once: a new worker is ready, and a graceful stop ends everyone
    const std::size_t before_ttin = p.lines().size();
    REQUIRE(p.signal(SIGTTIN));
    CHECK_MESSAGE(p.wait_for_line(std::regex("all 4 workers ready"), in(3s), before_ttin), p.output());
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

TEST_CASE("a worker flooding its heartbeat channel with garbage is retired and replaced, and the log stays printable and short")
{
    HardDeadline guard(20s);
    // The replacement in slot 0 floods too, as a broken program would: the restart limit
    // (retirements for bad records are failures) soon backs off.
    Process p(test_worker_args(2, "flood-garbage", {"--restart-limit", "2/10s"}));
    const auto flooder = ready_in_slot(p, 0, in(5s));
    REQUIRE_MESSAGE(flooder, p.output());
    const int pid = flooder->number(1);
    const auto honest = ready_in_slot(p, 1, in(5s));
    REQUIRE_MESSAGE(honest, p.output());

    // One line names the worker, how much it sent and what, printable
    const auto retiring = p.wait_for_line(
        worker_line(pid, R"re(retiring: bad heartbeat records \((\d+) malformed, (\d+) bytes of them, limits 10 and 4096; first: "(.*)"\)$)re"),
        in(3s));
    REQUIRE_MESSAGE(retiring, p.output());
    // Retired at whichever limit it passed first: how the reads cut the flood decides which
    const long malformed = retiring->number(1), bytes = std::stol(retiring->groups[2]);
    CHECK_MESSAGE((malformed > 10 || bytes > 4096), malformed << " malformed, " << bytes << " bytes");
    CHECK(retiring->groups[3] == R"(\x1b[31mred\x00nul\x0dcr \x01\x7f junk)");
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (bad heartbeat records)");
    const auto replacement = ready_in_slot(p, 0, in(3s), flooder->index + 1);
    REQUIRE_MESSAGE(replacement, p.output());
    CHECK(replacement->number(1) != pid);

    // Backing off, the manager costs little, the honest worker works on, the log grows slowly
    REQUIRE_MESSAGE(p.wait_for_line(lines::backing_off, in(5s)), p.output());
    const std::size_t mark = p.lines().size();
    const double cpu = manager_cpu_percent(p, 2000ms);
    MESSAGE("manager CPU while workers flood garbage: " << cpu << " % of a core; " << p.lines().size() - mark
                                                        << " log lines in 2 s");
    CHECK(cpu >= 0);
    CHECK(cpu < flood_cpu_bound);
    CHECK(p.lines().size() - mark <= 40);
    CHECK(ready_pids(p).count(honest->number(1)) == 1);
    CHECK(p.count(worker_line(honest->number(1), "(retiring|reaped|floods|sent a malformed)")) == 0);
    CHECK(p.count(lines::no_heartbeat) == 0);
    // Each flooder's bad records are logged once, never a raw control byte
    for (int flood_pid : spawned_pids(p))
        CHECK(p.count(worker_line(flood_pid, "sent a malformed heartbeat record")) <= 1);
    CHECK(p.count(worker_line(pid, R"(sent a malformed heartbeat record "\\x1b\[31mred\\x00nul\\x0dcr )")) == 1);
    CHECK(raw_control_bytes(p.output()) == 0);
}

TEST_CASE("once a backoff has ended and the pool is ready again, the manager sleeps instead of spinning")
{
    HardDeadline guard(20s);
    TempDir dir;
    // The first start in each slot fails at once (two failures: a backoff), later ones run on,
    // ready by --ready-after.
    const std::string started = dir / "started-$HERD_SLOT";
    const std::string script = "[ -e " + started + " ] || { touch " + started + "; exit 1; }; exec sleep 60";
    Process p(concat(concat({binary("HERD")}, fast_options({"-w", "2", "--restart-limit", "1/10s",
                                                            "--ready-after", "100ms"})),
                     {"--", "/bin/sh", "-c", script}));
    REQUIRE_MESSAGE(p.wait_for_line(lines::backing_off, in(5s)), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(8s)), p.output());
    // The backoff's end has passed and asks for nothing more: no deadline is due for seconds.
    const double cpu = manager_cpu_percent(p, 1500ms);
    MESSAGE("manager CPU with a ready pool after a backoff: " << cpu << " % of a core");
    CHECK(cpu >= 0);
    CHECK(cpu < flood_cpu_bound);
    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

TEST_CASE("a worker whose own memory stays over --max-worker-memory is replaced, then retired; the others are untouched")
{
    HardDeadline guard(15s);
    // The worker in slot 0 grows by 100 MiB; its replacement grows too, as a leaking program would.
    Process p(test_worker_args(2, "grow=100", {"--max-worker-memory", "64M", "--max-worker-memory-window", "500ms"}));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const auto grower = ready_in_slot(p, 0, in(1s));
    const auto honest = ready_in_slot(p, 1, in(1s));
    REQUIRE_MESSAGE((grower && honest), p.output());
    const int pid = grower->number(1);
    const auto grew = p.wait_for_line(std::regex("test worker " + std::to_string(pid) + " grew by 100 MiB"), in(3s));
    REQUIRE_MESSAGE(grew, p.output());

    // One line names the worker, its memory, the limit and how long it was over
    const auto retiring = p.wait_for_line(
        worker_line(pid, R"(retiring: max memory \((\S+) MiB over 64 MiB for (\S+ \S+)\)$)"), in(3s), grew->index);
    REQUIRE_MESSAGE(retiring, p.output());
    CHECK(std::stod(retiring->groups[1]) >= 100);
    CHECK(std::stod(retiring->groups[1]) < 120);
    // The window began when the worker crossed 64 MiB, before it finished growing: the line's
    // own figure is the check (the time since "grew by 100 MiB" is shorter by the growing).
    CHECK(parse_duration_ms(retiring->groups[2]) >= 500);
    // Replaced first (--spare 1): the new worker in slot 0 was ready before the old one was asked to go
    const auto replacement = ready_in_slot(p, 0, in(3s), grower->index + 1);
    REQUIRE_MESSAGE(replacement, p.output());
    CHECK(replacement->number(1) != pid);
    CHECK(replacement->index < retiring->index);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(3s), retiring->index);
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "retired (max memory)");

    // The worker under the limit serves on, never sampled into a retirement
    CHECK(ready_pids(p).count(honest->number(1)) == 1);
    CHECK(p.count(worker_line(honest->number(1), "(retiring|reaped)")) == 0);
    CHECK(p.count(lines::no_heartbeat) == 0);
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

