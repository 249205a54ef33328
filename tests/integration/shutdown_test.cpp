// Shutting down and log files: QUIT drains, TERM and INT are fast, USR1 reopens the log file.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }
std::string job_worker() { return binary("JOB_WORKER"); }
std::string herd_exe() { return binary("HERD"); }

const std::regex any_kill{R"(\), killing$)"};

// Start a server and wait until `workers` are ready.
void wait_ready(Process& p, unsigned workers)
{
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), in(5s)),
                    p.command() << "\n" << p.output());
}

// TERM or INT: a fast shutdown within the kill timeout, exit 0, no worker left, every worker
// stopped. `to_group`: the signal goes to the whole process group at once, workers included, as
// Ctrl-C in a terminal, timeout(1) and systemd's KillMode=control-group send it.
void check_fast_shutdown(int sig, const std::string& name, bool to_group = false)
{
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0"}, fast_options({"--kill-timeout", "2s"})));
    wait_ready(p, 2);
    const std::vector<int> workers = spawned_pids(p);

    const auto sent = Clock::now();
    if (to_group) REQUIRE(::kill(-p.pid(), sig) == 0);
    else REQUIRE(p.signal(sig));
    CHECK_MESSAGE(p.wait_for_line(std::regex("received " + name + R"(: fast shutdown of 2 workers \(kill timeout 2 s\))"), in(2s)),
                  p.output());
    const auto status = p.wait_exit(in(3s));
    REQUIRE_MESSAGE(status, "manager still running 3 s after " << name << ":\n" << p.output());
    MESSAGE(name << ": manager exited after " << ms_since(sent) << " ms");
    CHECK(ms_since(sent) < 2000);
    CHECK(status->exited());
    CHECK(status->code == 0);
    CHECK(p.wait_for_line(std::regex("manager " + std::to_string(p.pid()) + " exiting with code 0"), in(100ms)));
    CHECK(p.count(lines::reaped) == 2);
    CHECK_MESSAGE(p.count(std::regex(R"(reaped: stopped \(shutdown\))")) == 2, p.output());
    for (int pid : workers) CHECK_FALSE(pid_alive(pid));
}

// `pid`, the one worker of `p`, ignores `sig` (QUIT or TERM, whose timeout is 400 ms): the
// manager says so, kills it at that timeout with its line, and exits 0 soon after.
void check_killed_after_timeout(Process& p, int pid, int sig)
{
    const bool graceful = sig == SIGQUIT;
    const std::string name = graceful ? "QUIT" : "TERM";
    const std::string timeout = graceful ? "graceful timeout" : "kill timeout";
    const auto sent = Clock::now();
    REQUIRE(p.signal(sig));
    const std::string shutdown = graceful ? "graceful" : "fast";
    CHECK_MESSAGE(p.wait_for_line(std::regex("received " + name + ": " + shutdown + " shutdown of 1 workers? \\(" +
                                             timeout + " 400 ms\\)"),
                                  in(2s)),
                  p.output());
    const auto killing =
        p.wait_for_line(worker_line(pid, "still running (\\S+ \\S+) after " + name + " \\(" + timeout + "\\), killing"), in(3s));
    REQUIRE_MESSAGE(killing, p.output());
    CHECK(parse_duration_ms(killing->groups[1]) >= 400);
    CHECK(parse_duration_ms(killing->groups[1]) < 900);
    const auto reaped = p.wait_for_line(worker_line(pid, R"(reaped: (.+), slot 0)"), in(3s));
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "killed after " + timeout);
    const auto status = p.wait_exit(in(3s));
    REQUIRE_MESSAGE(status, p.output());
    const double took = ms_since(sent);
    CHECK(took >= 350);
    CHECK(took < 1500);
    CHECK(status->code == 0);
}

}  // namespace

TEST_CASE("QUIT answers every in-flight request, refuses new connections at once and exits 0")
{
    HardDeadline guard(30s);
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0"}, fast_options({"--graceful-timeout", "5s"})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    wait_ready(p, 2);
    const std::vector<int> workers = spawned_pids(p);

    // Four slow requests in flight
    InFlight slow(port, "/sleep?ms=800", 4, 5s);
    REQUIRE(slow.all_sent(in(2s)));

    // Graceful shutdown starts while they run
    const auto quit_at = Clock::now();
    REQUIRE(p.signal(SIGQUIT));
    const auto quit_line = p.wait_for_line(std::regex(R"(received QUIT: graceful shutdown of 2 workers \(graceful timeout 5 s\))"), in(2s));
    CHECK_MESSAGE(quit_line, p.output());

    // A new client during the drain is refused at once, not left in a backlog.
    int err = -1;
    const bool refused = poll_until([&] { return (err = try_connect("127.0.0.1", port, 200ms)) == ECONNREFUSED; }, quit_at + 300ms);
    const double refused_after = ms_since(quit_at);
    CHECK_MESSAGE(refused, "a connection attempt 300 ms into the drain got: " << (err == 0 ? "connected" : std::strerror(err)));
    const auto late = http_get("127.0.0.1", port, "/pid", 2s);
    CHECK_FALSE(late.ok());
    CHECK_MESSAGE(late.elapsed_ms < 200, "a request during the drain took " << late.elapsed_ms << " ms: " << late.error);
    CHECK_MESSAGE(late.error_code == ECONNREFUSED, "a request during the drain: " << late.error);
    MESSAGE("new connections refused " << refused_after << " ms after QUIT");
    CHECK_MESSAGE(!p.status(), "the drain must still be running (the requests take 800 ms)");

    // Every in-flight request is answered; the manager exits 0
    for (const auto& r : slow.results())
        CHECK_MESSAGE(r.status == 200, "in-flight request: status " << r.status << " " << r.error);
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->exited());
    CHECK(status->code == 0);
    CHECK(p.wait_for_line(std::regex("manager " + std::to_string(p.pid()) + " exiting with code 0"), in(100ms)));
    CHECK(p.count(any_kill) == 0);
    CHECK(p.count(std::regex("reaped: crashed")) == 0);
    for (int pid : workers) CHECK_FALSE(pid_alive(pid));
}

TEST_CASE("TERM shuts down fast and exits 0")
{
    HardDeadline guard(20s);
    check_fast_shutdown(SIGTERM, "TERM");
}

TEST_CASE("INT shuts down fast and exits 0")
{
    HardDeadline guard(20s);
    check_fast_shutdown(SIGINT, "INT");
}

TEST_CASE("INT or TERM to the whole process group (Ctrl-C, timeout, systemd) stops the workers, none reads as crashed")
{
    HardDeadline guard(20s);
    SUBCASE("INT") { check_fast_shutdown(SIGINT, "INT", true); }
    SUBCASE("TERM") { check_fast_shutdown(SIGTERM, "TERM", true); }
}

TEST_CASE("a worker ignoring QUIT is killed after the graceful timeout, and the manager exits 0")
{
    HardDeadline guard(20s);
    Process p(concat({test_worker(), "-w", "1", "--mode", "ignore-quit"}, fast_options({"--graceful-timeout", "400ms"})));
    wait_ready(p, 1);
    const int pid = spawned_pids(p).at(0);

    check_killed_after_timeout(p, pid, SIGQUIT);
}

TEST_CASE("a worker ignoring TERM is killed after the kill timeout, and the manager exits 0")
{
    HardDeadline guard(20s);
    // A program that ignores TERM (the disposition survives exec), run in exec mode
    Process p(concat(concat({herd_exe()}, fast_options({"-w", "1", "--kill-timeout", "400ms", "--heartbeat-timeout", "0",
                                                        "--ready-after", "100ms"})),
                     {"--", "/bin/sh", "-c", "trap '' TERM; exec sleep 30"}));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 1 workers? ready"), in(5s)), p.output());
    const int pid = spawned_pids(p).at(0);

    check_killed_after_timeout(p, pid, SIGTERM);
    CHECK_FALSE(pid_alive(pid));
}

TEST_CASE("USR2 and HUP during a graceful shutdown are ignored with a log line")
{
    HardDeadline guard(20s);
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0"}, fast_options({"--graceful-timeout", "5s"})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE(port > 0);
    wait_ready(p, 2);
    // Requests of 1.5 s in flight keep the workers draining
    InFlight slow(port, "/sleep?ms=1500", 2, 5s);
    REQUIRE(slow.all_sent(in(2s)));

    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGQUIT));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("received QUIT: graceful shutdown of 2 workers"), in(2s), mark), p.output());
    REQUIRE(p.signal(SIGUSR2));
    const auto usr2 = p.wait_for_line(std::regex("received USR2: the manager is stopping, ignored$"), in(2s), mark);
    CHECK_MESSAGE(usr2, p.output());
    REQUIRE(p.signal(SIGHUP));
    const auto hup = p.wait_for_line(std::regex("received HUP: the manager is stopping, ignored$"), in(2s), mark);
    CHECK_MESSAGE(hup, p.output());
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
    // Neither started anything: no pre-flight, no new generation
    CHECK(p.count(lines::upgrading, mark) == 0);
    CHECK(p.count(lines::reloading, mark) == 0);
    CHECK(p.count(lines::spawned, mark) == 0);
    for (const auto& r : slow.results()) CHECK_MESSAGE(r.status == 200, "slow request: status " << r.status << " " << r.error);
}

TEST_CASE("a worker draining slowly after QUIT finishes within the graceful timeout")
{
    HardDeadline guard(20s);
    Process p(concat({test_worker(), "-w", "2", "--mode", "slow-drain=500"}, fast_options({"--graceful-timeout", "3s"})));
    wait_ready(p, 2);
    const auto sent = Clock::now();
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(4s));
    REQUIRE_MESSAGE(status, p.output());
    const double took = ms_since(sent);
    MESSAGE("slow-drain=500: manager exited " << took << " ms after QUIT");
    CHECK(took >= 450);
    CHECK(took < 2500);
    CHECK(status->code == 0);
    CHECK(p.count(any_kill) == 0);
    const auto reaped = p.matches(lines::reaped);
    CHECK(reaped.size() == 2);
    for (const auto& m : reaped) CHECK(m.groups[2].find("crashed") == std::string::npos);
}

TEST_CASE("USR1 reopens the log file after it was renamed")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string log = dir / "herd.log";
    const std::string rotated = dir / "herd.log.1";
    Process p(concat({test_worker(), "-w", "2", "--log-file", log}, fast_options()));
    REQUIRE_MESSAGE(poll_until([&] { return file_has_line(log, std::regex("all 2 workers ready")); }, in(5s), 10ms),
                    "log file:\n" << read_lines(log).size() << " lines; output:\n" << p.output());
    // The lifecycle lines went to the file, not to stderr.
    CHECK(p.count(lines::all_ready) == 0);

    REQUIRE(std::rename(log.c_str(), rotated.c_str()) == 0);
    REQUIRE(p.signal(SIGUSR1));
    REQUIRE_MESSAGE(poll_until([&] { return std::filesystem::exists(log); }, in(2s)), "USR1 did not create " << log);
    CHECK(poll_until(
        [&] { return file_has_line(log, std::regex("received USR1: reopening log files")) ||
                     file_has_line(rotated, std::regex("received USR1: reopening log files")); },
        in(1s)));

    // New lines go to the new file only
    REQUIRE(p.signal(SIGTTIN));
    CHECK(poll_until([&] { return file_has_line(log, std::regex("received TTIN: target is now 3 workers")); }, in(2s), 10ms));
    CHECK(poll_until([&] { return file_has_line(log, std::regex("all 3 workers ready")); }, in(3s), 10ms));
    CHECK_FALSE(file_has_line(rotated, std::regex("received TTIN")));
    CHECK(file_has_line(rotated, std::regex("all 2 workers ready")));
}

TEST_CASE("job-worker runs its workers and stops on QUIT with exit code 0")
{
    HardDeadline guard(20s);
    Process p(concat({job_worker(), "-w", "2"}, fast_options({"--graceful-timeout", "5s"})));
    wait_ready(p, 2);
    const std::vector<int> workers = spawned_pids(p);
    CHECK(workers.size() == 2);
    // Still running and ready a few heartbeats later
    CHECK_FALSE(p.wait_exit(in(300ms)));
    CHECK(p.count(lines::reaped) == 0);

    REQUIRE(p.signal(SIGQUIT));
    CHECK(p.wait_for_line(std::regex(R"(received QUIT: graceful shutdown of 2 workers)"), in(2s)));
    const auto status = p.wait_exit(in(7s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
    CHECK(p.count(any_kill) == 0);
    CHECK(p.count(lines::reaped) == 2);
    for (int pid : workers) CHECK_FALSE(pid_alive(pid));
}
