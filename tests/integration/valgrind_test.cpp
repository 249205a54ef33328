// The manager under valgrind's memcheck (Debian's valgrind) through a whole lifecycle: start,
// scale, a worker killed with -9, HUP, USR2, stop. Zero errors and zero definite leaks, in the
// manager and in every process that ends under valgrind.
//
// What runs under valgrind: the manager, and every process it forks, since a forked child stays
// under valgrind (C++ workers and the standby: they are checked too, at their own exit, and run
// with a 10 s heartbeat timeout, as they are slower there). What runs natively: every program an
// exec pool starts (/bin/sleep here), skipped by --trace-children-skip. --trace-children=yes keeps
// the manager's own next image under valgrind after USR2's exec in place, and its pre-flight
// `--check` with it. Debian 12's valgrind 3.19 does not know pidfd_open, which Boost.Process
// waits for the pre-flight with: there the upgrade is abandoned with one line and the manager
// keeps serving, which is checked as well; a valgrind that knows it runs the upgrade.
//
// Every process valgrind ran prints "==PID== ERROR SUMMARY: N errors" at its exit (one killed with
// SIGKILL prints nothing); --errors-for-leak-kinds=definite makes a definite leak an error, and
// --error-exitcode makes the manager's exit code say so. No suppression is needed.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string herdctl() { return binary("HERDCTL"); }

constexpr int error_exit_code = 99;

// valgrind's path; empty where it is missing or cannot run these binaries (a sanitizer's).
std::string valgrind()
{
    const char* path = std::getenv("VALGRIND");
    return path ? path : "";
}

std::vector<std::string> under_valgrind(const std::vector<std::string>& argv)
{
    return concat({valgrind(), "--error-exitcode=" + std::to_string(error_exit_code),
                   "--leak-check=full", "--errors-for-leak-kinds=definite", "--trace-children=yes",
                   "--trace-children-skip=*/sleep"},
                  argv);
}

// Timing for processes that run 20 to 50 times slower than natively.
std::vector<std::string> slow_options()
{
    return {"--heartbeat-interval", "1s", "--heartbeat-timeout", "10s", "--boot-timeout", "20s",
            "--graceful-timeout", "10s", "--kill-timeout", "5s"};
}

// Every "ERROR SUMMARY" valgrind printed: pid -> errors; and the definite leaks it reported.
struct Summaries {
    std::map<int, int> errors;
    std::vector<std::string> leaks;   // "definitely lost" lines with more than 0 bytes
};
Summaries summaries(Process& p)
{
    Summaries s;
    for (const auto& m : p.matches(std::regex(R"(==(\d+)== ERROR SUMMARY: (\d+) errors)")))
        s.errors[m.number(1)] = m.number(2);
    for (const auto& m : p.matches(std::regex(R"(==\d+==\s+definitely lost: ([0-9,]+) bytes)")))
        if (m[1] != "0") s.leaks.push_back(m.line);
    return s;
}

// The pid a GET /pid answers with, or -1.
int serving_pid(int port)
{
    const auto r = http_get("127.0.0.1", port, "/pid", 5s);
    return r.ok() ? int(first_number(r.body)) : -1;
}

// Wait until a GET /pid is answered by a worker (any), or the deadline.
bool serves(int port, Deadline deadline)
{
    return poll_until([&] { return serving_pid(port) > 0; }, deadline, 50ms);
}

void check_clean(Process& p, const ExitStatus& status)
{
    const Summaries s = summaries(p);
    INFO(p.output());
    CHECK(status.code == 0);
    CHECK(s.errors.count(p.pid()) == 1);
    for (const auto& [pid, errors] : s.errors) {
        CAPTURE(pid);
        CHECK(errors == 0);
    }
    CHECK(s.leaks.empty());
    MESSAGE(s.errors.size() << " processes ended under valgrind with no error");
}

}  // namespace

TEST_CASE("under valgrind a manager of C++ workers runs start, TTIN, kill -9, HUP, USR2 and QUIT with no error and no definite leak")
{
    if (valgrind().empty()) HERD_SKIP("valgrind is not installed, or this build is sanitized");
    HardDeadline guard(100s);
    TempDir dir;
    // A copy of the binary, so that USR2 finds it where it was started
    const std::string app = dir / "app";
    deploy(hello_http(), app);
    Process p(under_valgrind(concat({app, "-w", "2", "-l", "127.0.0.1:0", "--pid-file", dir / "app.pid"}, slow_options())));
    const int port = wait_for_port(p, in(30s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(30s)), p.output());

    // Scale up
    std::size_t from = p.lines().size();
    REQUIRE(p.signal(SIGTTIN));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(20s), from), p.output());

    // A worker killed with -9 is replaced
    const int victim = serving_pid(port);
    REQUIRE(victim > 0);
    from = p.lines().size();
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(worker_line(victim, "reaped: crashed \\(signal 9\\)"), in(20s), from), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(20s), from), p.output());

    // Reload
    from = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(lines::reload_complete, in(30s), from), p.output());
    CHECK(serves(port, in(10s)));

    // Upgrade: completed, or abandoned where valgrind cannot run the pre-flight (no pidfd_open);
    // twice, for a failed launch must leave nothing behind that breaks the next one
    for (int i = 0; i < 2; ++i) {
        from = p.lines().size();
        REQUIRE(p.signal(SIGUSR2));
        const auto outcome =
            p.wait_for_line(std::regex("upgrade to generation \\d+ complete|upgrade abandoned"), in(40s), from);
        REQUIRE_MESSAGE(outcome, p.output());
        MESSAGE("USR2 under valgrind: " << outcome->line);
        CHECK(serves(port, in(10s)));
    }
    CHECK(p.count(std::regex("re-registration")) == 0);

    // Graceful stop
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(30s));
    REQUIRE_MESSAGE(status, p.output());
    check_clean(p, *status);
}

TEST_CASE("under valgrind a manager of several pools, an exec pool among them, runs start, scale, kill -9, HUP and TERM with no error and no definite leak")
{
    if (valgrind().empty()) HERD_SKIP("valgrind is not installed, or this build is sanitized");
    HardDeadline guard(100s);
    TempDir dir;
    const std::string control = dir / "control.sock";
    std::string conf = "restart-strategy = one\ncontrol = " + control + "\n[pool]\n";
    const auto slow = slow_options();
    for (std::size_t i = 0; i + 1 < slow.size(); i += 2) conf += slow[i].substr(2) + " = " + slow[i + 1] + "\n";
    conf += "[pool.web]\nworker = web\nworkers = 2\nlisten = 127.0.0.1:0\n"
            "[pool.jobs]\nworker = jobs\nworkers = 1\n"
            "[pool.side]\ncommand = /bin/sleep 1000\nworkers = 2\nready-after = 200ms\n";
    write_file(dir / "pools.conf", conf);
    Process p(under_valgrind({hello_http(), "--config", dir / "pools.conf"}));
    const auto listening = p.wait_for_line(std::regex(R"(pool web: listening on 127\.0\.0\.1:(\d+))"), in(30s));
    REQUIRE_MESSAGE(listening, p.output());
    const int port = listening->number(1);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 pools ready: 5 workers"), in(40s)), p.output());

    // Scale a pool through the control socket
    std::size_t from = p.lines().size();
    const auto scaled = run({herdctl(), "--control", control, "scale", "web", "3"}, 30s);
    REQUIRE_MESSAGE(scaled.status, scaled.output());
    CHECK_MESSAGE(scaled.status->code == 0, scaled.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 pools ready: 6 workers"), in(20s), from), p.output());

    // A worker of each kind killed with -9 is replaced
    const int web = serving_pid(port);
    REQUIRE(web > 0);
    const auto side = p.matches(std::regex(R"(pool side: worker (\d+) spawned)"));
    REQUIRE(!side.empty());
    from = p.lines().size();
    REQUIRE(::kill(web, SIGKILL) == 0);
    REQUIRE(::kill(side.front().number(1), SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_lines(std::regex("pool (web|side): worker \\d+ ready in slot"), 2, in(20s), from).size() == 2,
                    p.output());

    // Reload (the file is unchanged: every worker stays)
    from = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("reload complete in"), in(30s), from), p.output());
    CHECK(serves(port, in(10s)));

    // Fast stop
    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(30s));
    REQUIRE_MESSAGE(status, p.output());
    check_clean(p, *status);
}
