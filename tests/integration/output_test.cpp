// Every worker's stdout and stderr into the log (DESIGN.md §7a, docs/tutorial.md "Writing a server"): a C++
// worker's printf, std::cout and stderr lines reach the log file with the worker's pool, slot and
// pid, stdout's at --stdout-level (info) and stderr's at --stderr-level (warn), under --log-file
// and --daemon; the worker's own log lines are not logged twice; USR2 hands the pipes over; an
// exec program sees HERD_POOL and keeps one pipe (and info) for both streams.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string test_worker() { return binary("TEST_WORKER"); }
std::string herd_binary() { return binary("HERD"); }

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A line logged in a worker's name: "[worker[SLOT] PID] [LEVEL] TEXT" (TEXT is a regex).
std::regex worker_output(int slot, int pid, const std::string& level, const std::string& text)
{
    return std::regex(R"(\[worker\[)" + std::to_string(slot) + R"(\] )" + std::to_string(pid) + R"(\] \[)" + level +
                      R"(\] )" + text);
}

// pid -> slot of every worker the log file says was spawned.
std::map<int, int> spawned_in(const std::string& log)
{
    std::map<int, int> slots;
    for (const auto& line : read_lines(log)) {
        std::smatch m;
        if (std::regex_search(line, m, lines::spawned)) slots[std::stoi(m[1])] = std::stoi(m[2]);
    }
    return slots;
}

// How many lines of `lines` match.
std::size_t count_in(const std::vector<std::string>& lines, const std::regex& re)
{
    std::size_t n = 0;
    for (const auto& l : lines) n += std::regex_search(l, re) ? 1 : 0;
    return n;
}

// The index of the first line that matches, or -1.
long index_in(const std::vector<std::string>& lines, const std::regex& re)
{
    for (std::size_t i = 0; i < lines.size(); ++i)
        if (std::regex_search(lines[i], re)) return long(i);
    return -1;
}

// What every `--mode print` worker of `slots` wrote at start is in the log: one line each, in
// its name, stdout's at info, stderr's at warn, the ESC escaped, its spdlog line once and plain.
void check_printed(const std::vector<std::string>& log, const std::map<int, int>& slots)
{
    for (const auto& [pid, slot] : slots) {
        CAPTURE(pid);
        const std::string p = std::to_string(pid);
        CHECK(count_in(log, worker_output(slot, pid, "info", "printf from worker " + p + " in slot " +
                                                                 std::to_string(slot) + "$")) == 1);
        CHECK(count_in(log, worker_output(slot, pid, "info", "cout from worker " + p + "$")) == 1);
        CHECK(count_in(log, worker_output(slot, pid, "warning", "stderr from worker " + p + "$")) == 1);
        CHECK(count_in(log, worker_output(slot, pid, "info", R"(\\x1b\[31mred from worker )" + p + R"(\\x1b\[0m$)")) == 1);
        CHECK(count_in(log, std::regex("test worker " + p + " logs through spdlog")) == 1);
        CHECK(count_in(log, worker_output(slot, pid, "info", "test worker " + p + " logs through spdlog$")) == 1);
    }
}

}  // namespace

TEST_CASE("under --log-file a C++ worker's printf, cout and stderr lines are in the file with slot and pid, stdout at info and stderr at warn")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string log = dir / "app.log";
    Process p(concat({test_worker(), "-w", "2", "--mode", "print", "--log-file", log}, fast_options()));
    REQUIRE_MESSAGE(poll_until([&] { return file_has_line(log, std::regex("all 2 workers ready")); }, in(8s)),
                    read_file(log) << p.output());
    const auto slots = spawned_in(log);
    REQUIRE(slots.size() == 2);
    // A worker writes its lines in on_start, before it is ready; the manager reads them as they come.
    REQUIRE_MESSAGE(poll_until([&] {
                        const auto lines = read_lines(log);
                        return count_in(lines, std::regex("red from worker")) == 2 &&
                               count_in(lines, std::regex("stderr from worker")) == 2;
                    }, in(3s)),
                    read_file(log));
    check_printed(read_lines(log), slots);
    // Nothing of it went anywhere but the log file
    CHECK_MESSAGE(p.output().find("from worker") == std::string::npos, p.output());

    // The last line, without a newline, is logged when the worker exits, before its exit
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, read_file(log));
    CHECK(status->code == 0);
    const auto lines = read_lines(log);
    for (const auto& [pid, slot] : slots) {
        CAPTURE(pid);
        const long last = index_in(lines, worker_output(slot, pid, "info", "last words of " + std::to_string(pid) + "$"));
        const long reaped = index_in(lines, worker_line(pid, "reaped:"));
        CHECK(last >= 0);
        CHECK(reaped >= 0);
        CHECK(last < reaped);
    }
}

TEST_CASE("logging to stderr, a worker's own log lines are written once, not logged again as its output")
{
    HardDeadline guard(15s);
    Process p(concat({test_worker(), "-w", "1", "--mode", "print"}, fast_options()));
    const auto spawned = p.wait_for_line(lines::spawned, in(5s));
    REQUIRE_MESSAGE(spawned, p.output());
    const int pid = spawned->number(1);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("red from worker " + std::to_string(pid)), in(5s)), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("stderr from worker " + std::to_string(pid)), in(2s)), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("logs through spdlog"), in(2s)), p.output());
    check_printed(p.lines(), {{pid, 0}});
    REQUIRE(p.signal(SIGQUIT));
    REQUIRE(p.wait_exit(in(5s)));
    CHECK(p.count(std::regex(R"(\[worker\[0\] \d+\] \[info\] worker \d+ stopping gracefully \(QUIT\)$)")) == 1);
    // A line of the worker's own log inside another one would show two time stamps
    CHECK(p.count(std::regex(R"(\] \[(info|warning)\] \[\d{4}-\d\d-\d\d )")) == 0);
}

TEST_CASE("under --daemon a worker's output reaches the log file")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string pid_file = dir / "app.pid", log = dir / "app.log";
    const auto r = run(concat({test_worker(), "-w", "1", "--mode", "print", "--daemon", "--pid-file", pid_file,
                               "--log-file", log},
                              fast_options()),
                       10s);
    const long manager = first_number(read_file(pid_file));
    // Whatever happens below, the daemon goes
    struct Stop {
        long pid;
        ~Stop()
        {
            if (pid > 1) ::kill(pid_t(pid), SIGKILL);
        }
    } stop{manager};
    REQUIRE_MESSAGE(r.status, r.output());
    REQUIRE_MESSAGE(r.status->code == 0, r.output());
    REQUIRE(manager > 1);
    REQUIRE_MESSAGE(poll_until([&] {
                        return file_has_line(log, std::regex("red from worker")) &&
                               file_has_line(log, std::regex("stderr from worker"));
                    }, in(3s)),
                    read_file(log));
    check_printed(read_lines(log), spawned_in(log));
    REQUIRE(::kill(pid_t(manager), SIGQUIT) == 0);
    CHECK(poll_until([&] { return file_has_line(log, std::regex("exiting with code 0")); }, in(5s)));
    CHECK(file_has_line(log, std::regex(R"(\[worker\[0\] \d+\] \[info\] last words of \d+$)")));
}

TEST_CASE("USR2 hands the workers' output pipes over: the new image logs what the old generation writes")
{
    HardDeadline guard(30s);
    Deployment d(test_worker());
    Process& p = d.start(concat({"-w", "2", "--mode", "print", "-l", "127.0.0.1:0"}, fast_options()));
    const std::string ready = d.wait_ready(2, in(8s));
    REQUIRE_MESSAGE(ready.empty(), ready);
    const auto first = generation_pids(p, 1);
    REQUIRE(first.size() == 2);
    REQUIRE(p.signal(SIGUSR2));
    const auto runs = p.wait_for_line(lines::upgrade_runs, in(10s));
    REQUIRE_MESSAGE(runs, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(lines::upgrade_complete, in(10s), runs->index), p.output());
    // Each old worker wrote its last words after QUIT, to the pipes the new image now reads
    for (int pid : first) {
        CAPTURE(pid);
        const auto last = p.wait_for_line(std::regex(R"(\[worker\[\d\] )" + std::to_string(pid) +
                                                     R"(\] \[info\] last words of )" + std::to_string(pid) + "$"),
                                          in(5s), runs->index);
        CHECK_MESSAGE(last, p.output());
        // ... and its stderr pipe went over too
        CHECK(p.wait_for_line(std::regex(R"(\[worker\[\d\] )" + std::to_string(pid) +
                                         R"(\] \[warning\] stderr after QUIT from worker )" + std::to_string(pid) + "$"),
                              in(0s), runs->index));
        // What was read before the exec was logged once, by the image that read it
        CHECK(p.count(std::regex(R"(\] \[warning\] stderr from worker )" + std::to_string(pid) + "$")) == 1);
    }
    const auto second = generation_pids(p, 2);
    CHECK(second.size() == 2);
    for (int pid : second)
        CHECK_MESSAGE(p.wait_for_line(std::regex(R"(\] \[warning\] stderr from worker )" + std::to_string(pid) + "$"),
                                      in(3s), runs->index),
                      p.output());
    REQUIRE(p.signal(SIGTERM));
    REQUIRE(p.wait_exit(in(5s)));
}

TEST_CASE("an exec program sees HERD_POOL; its stdout and stderr share one pipe and are logged at info, in order")
{
    HardDeadline guard(15s);
    const std::string script = "echo \"pool=$HERD_POOL\"; echo one; echo two >&2; echo three; exec sleep 30";
    Process p(concat(concat({herd_binary()}, fast_options({"-w", "1", "--ready-after", "100ms"})),
                     {"--", "/bin/sh", "-c", script}));
    const auto spawned = p.wait_for_line(lines::spawned, in(5s));
    REQUIRE_MESSAGE(spawned, p.output());
    const int pid = spawned->number(1);
    const auto pool = p.wait_for_line(worker_output(0, pid, "info", "pool=main$"), in(3s));
    const auto three = p.wait_for_line(worker_output(0, pid, "info", "three$"), in(3s));
    REQUIRE_MESSAGE((pool && three), p.output());
    const auto one = p.wait_for_line(worker_output(0, pid, "info", "one$"), in(0s));
    const auto two = p.wait_for_line(worker_output(0, pid, "info", "two$"), in(0s));
    REQUIRE((one && two));
    CHECK(pool->index < one->index);
    CHECK(one->index < two->index);
    CHECK(two->index < three->index);
    REQUIRE(p.signal(SIGTERM));
    REQUIRE(p.wait_exit(in(5s)));
}
