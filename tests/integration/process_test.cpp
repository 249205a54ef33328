// The manager as a process among others: --daemon, sockets from systemd (LISTEN_FDS), --user,
// process titles, and log files reopened by the workers too.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// What ps shows for pid: its argv area, NULs as spaces, trailing padding trimmed.
std::string title_of(int pid)
{
    std::string text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& c : text)
        if (c == '\0') c = ' ';
    text.erase(text.find_last_not_of(' ') + 1);
    return text;
}

// A field of /proc/PID/status ("Uid", "PPid", ...): its first value.
std::string status_field(int pid, const std::string& field)
{
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) {
            std::istringstream values(line.substr(field.size() + 1));
            std::string first;
            values >> first;
            return first;
        }
    return {};
}

// A daemon left running by a failed check is ended by its pid file.
struct DaemonGuard {
    std::string pid_file;
    ~DaemonGuard()
    {
        const long pid = first_number(read_file(pid_file));
        if (pid > 1) ::kill(pid_t(pid), SIGKILL);
    }
};

// hello-http with `option value`: the /proc/PID/status `field` of a worker (the one that answers
// /pid) and of the manager.
std::pair<std::string, std::string> worker_and_manager(const std::string& option, const std::string& value,
                                                       const std::string& field)
{
    Process p(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0", option, value}, fast_options()));
    const int port = wait_for_port(p, in(5s));
    REQUIRE(p.wait_for_lines(lines::ready, 1, in(5s)).size() == 1);
    const auto pid = http_get("127.0.0.1", port, "/pid", 2s);
    REQUIRE_MESSAGE(pid.status == 200, pid.error);
    return {status_field(std::stoi(pid.body), field), status_field(p.pid(), field)};
}

// The time slice a process runs with (ns), from /proc/PID/sched; 0 if the kernel shows none.
long long time_slice_of(int pid)
{
    for (const auto& line : read_lines("/proc/" + std::to_string(pid) + "/sched"))
        if (line.rfind("se.slice", 0) == 0) return std::atoll(line.substr(line.find(':') + 1).c_str());
    return 0;
}

}  // namespace

TEST_CASE("--daemon returns 0 once the pool is ready and leaves a manager that QUIT stops")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string pid_file = dir / "app.pid", log = dir / "app.log";
    DaemonGuard cleanup{pid_file};
    const auto started = Clock::now();
    const auto r = run(concat({test_worker(), "-w", "2", "--daemon", "--pid-file", pid_file, "--log-file", log},
                              fast_options()),
                       10s);
    REQUIRE_MESSAGE(r.status, r.output());
    CHECK_MESSAGE(r.status->code == 0, r.output());
    MESSAGE("--daemon returned after " << ms_since(started) << " ms");

    // By the time the command returned the pool was ready, and the manager runs on its own
    const long manager = first_number(read_file(pid_file));
    REQUIRE(manager > 1);
    CHECK(pid_alive(pid_t(manager)));
    CHECK(file_has_line(log, std::regex("all 2 workers ready")));
    CHECK(status_field(int(manager), "PPid") != std::to_string(::getpid()));
    CHECK(::getsid(pid_t(manager)) != ::getsid(0));

    REQUIRE(::kill(pid_t(manager), SIGQUIT) == 0);
    CHECK(poll_until([&] { return !std::filesystem::exists(pid_file); }, in(5s)));
    CHECK(poll_until([&] { return file_has_line(log, std::regex("exiting with code 0")); }, in(5s)));
}

TEST_CASE("--daemon exits 1 with the reason when the pool never becomes ready")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string pid_file = dir / "app.pid";
    DaemonGuard cleanup{pid_file};
    const auto r = run(concat({test_worker(), "-w", "1", "--mode", "crash-at-boot", "--daemon", "--pid-file", pid_file,
                               "--log-file", dir / "app.log", "--restart-limit", "3/10s"},
                              fast_options()),
                       15s);
    REQUIRE_MESSAGE(r.status, r.output());
    CHECK(r.status->code == 1);
    CHECK_MESSAGE(r.output().find("before its workers were ready") != std::string::npos, r.output());
    CHECK(file_has_line(dir / "app.log", std::regex("giving up: no worker ever became ready")));
}

TEST_CASE("--daemon exits 1 naming the address when it is in use")
{
    HardDeadline guard(10s);
    Process first(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0"}, fast_options()));
    const int port = wait_for_port(first, in(5s));
    REQUIRE(port > 0);
    TempDir dir;
    const auto r = run({hello_http(), "-w", "1", "-l", "127.0.0.1:" + std::to_string(port), "--daemon", "--pid-file",
                        dir / "app.pid"},
                       5s);
    REQUIRE_MESSAGE(r.status, r.output());
    CHECK(r.status->code == 1);
    CHECK_MESSAGE(r.output().find("cannot bind 127.0.0.1:" + std::to_string(port) + ": Address already in use") !=
                      std::string::npos,
                  r.output());
}

TEST_CASE("sockets passed the systemd way (LISTEN_FDS) are adopted and served")
{
    HardDeadline guard(15s);
    // The test binds, as systemd would, and passes the socket at fd 3 with LISTEN_PID = the server's pid.
    LoopbackListener listener(true);   // inherited by the shell: no close-on-exec
    const int sock = listener.fd, port = listener.port;
    const std::string fd = std::to_string(sock);
    const std::string move_to_3 = sock == 3 ? "" : "exec 3<&" + fd + " " + fd + "<&-; ";
    std::string command = move_to_3 + "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec '" + hello_http() + "' -w 2";
    for (const auto& o : fast_options()) command += " " + o;
    Process p({"/bin/bash", "-c", command});

    const auto listening = p.wait_for_line(lines::listening, in(5s));
    REQUIRE_MESSAGE(listening, p.output());
    CHECK(listening->groups[1] == "127.0.0.1:" + std::to_string(port));
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    const auto r = http_get("127.0.0.1", port, "/", 2s);
    CHECK_MESSAGE(r.status == 200, r.error);
    // The variables were meant for the manager alone: a worker does not see them
    const auto pid = http_get("127.0.0.1", port, "/pid", 2s);
    REQUIRE(pid.status == 200);
    CHECK(read_file("/proc/" + pid.body + "/environ").find("LISTEN_FDS=") == std::string::npos);
}

TEST_CASE("--user makes workers drop to that user while the manager keeps its own")
{
    if (::geteuid() != 0) HERD_SKIP("needs root");
    const passwd* nobody = ::getpwnam("nobody");
    REQUIRE(nobody);
    HardDeadline guard(15s);
    const auto [worker, manager] = worker_and_manager("--user", "nobody", "Uid");
    CHECK(worker == std::to_string(nobody->pw_uid));
    CHECK(manager == "0");
}

TEST_CASE("--group makes workers drop to that group")
{
    if (::geteuid() != 0) HERD_SKIP("needs root");
    const group* nogroup = ::getgrnam("nogroup");
    if (!nogroup) HERD_SKIP("no group 'nogroup' here");
    HardDeadline guard(15s);
    const auto [worker, manager] = worker_and_manager("--group", "nogroup", "Gid");
    CHECK(worker == std::to_string(nogroup->gr_gid));
    CHECK(manager == "0");
}

TEST_CASE("--help and --version print and exit 0 without starting anything")
{
    const auto help = run({hello_http(), "--help"}, 5s);
    REQUIRE(help.status);
    CHECK(help.status->code == 0);
    CHECK(help.output().find("--heartbeat-timeout") != std::string::npos);
    CHECK(help.output().find("--greeting") != std::string::npos);   // the application's own option
    const auto version = run({hello_http(), "--version"}, 5s);
    REQUIRE(version.status);
    CHECK(version.status->code == 0);
    CHECK(version.output().find("herd 0.1.0") != std::string::npos);
}

TEST_CASE("every server's --help has --adopt-check, and the application's options with their placeholder and default")
{
    for (const std::string& server : {hello_http(), binary("JOB_WORKER"), binary("BLOCKING_ECHO"), binary("HERD")}) {
        const auto help = run({server, "--help"}, 5s);
        INFO(server << "\n" << help.output());
        REQUIRE(help.status);
        CHECK(help.status->code == 0);
        CHECK(std::regex_search(help.output(), std::regex("--adopt-check V +with --check")));
    }
    const auto hello = run({hello_http(), "--help"}, 5s).output();
    INFO(hello);
    CHECK(std::regex_search(hello, std::regex("--greeting TEXT +body of / .*\\(default Hello,")));
    CHECK(std::regex_search(hello, std::regex("--idle-timeout D +close a kept-alive connection[^(]*\\(default 60s\\)")));
    CHECK(std::regex_search(hello, std::regex("--job-size MIB +MiB checksummed per job \\(default 4\\)")));
    const auto jobs = run({binary("JOB_WORKER"), "--help"}, 5s).output();
    INFO(jobs);
    CHECK(std::regex_search(jobs, std::regex("--job-interval D +time between the starts of two jobs \\(default 1s\\)")));
}

TEST_CASE("--log-level warn keeps the lifecycle's warnings and drops its routine lines")
{
    HardDeadline guard(15s);
    Process p(concat({test_worker(), "-w", "1", "--log-level", "warn", "--mode", "hang-after=200"},
                     fast_options({"--heartbeat-timeout", "300ms", "--graceful-timeout", "200ms"})));
    REQUIRE_MESSAGE(p.wait_for_line(lines::no_heartbeat, in(5s)), p.output());
    CHECK(p.count(lines::spawned) == 0);
    CHECK(p.count(lines::ready) == 0);
    CHECK(p.count(lines::started) == 0);
}

TEST_CASE("an unknown --user is a usage error")
{
    const auto r = run({hello_http(), "-l", "127.0.0.1:0", "--user", "no-such-user-here"}, 5s);
    REQUIRE(r.status);
    CHECK(r.status->code == 2);
    CHECK(r.output().find("invalid value 'no-such-user-here' for --user: no such user") != std::string::npos);
}

TEST_CASE("process titles name the manager and each worker's slot and generation")
{
    HardDeadline guard(10s);
    Process p(concat({test_worker(), "-w", "2", "--name", "shop"}, fast_options()));
    const auto ready = p.wait_for_lines(lines::ready, 2, in(5s));
    REQUIRE(ready.size() == 2);
    CHECK(title_of(p.pid()) == "shop: manager");
    for (const auto& m : ready)
        CHECK(title_of(m.number(1)) == "shop: worker[" + m.groups[2] + "] gen 1");
}

TEST_CASE("the manager runs with a long time slice, its workers and standby with the default one")
{
    HardDeadline guard(10s);
    Process p(concat({test_worker(), "-w", "2"}, fast_options()));
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    // 2 workers and the standby, each past its first steps after fork (a child shows the manager's
    // title, and has its slice, until it has run them: on a busy machine that can take a while)
    REQUIRE(poll_until([&] {
        const auto children = children_of(p.pid());
        return children.size() == 3 && std::none_of(children.begin(), children.end(), [](const Child& c) {
                   return c.title.ends_with(": manager");
               });
    }, in(3s)));
    const long long manager = time_slice_of(p.pid()), mine = time_slice_of(::getpid());
    if (manager != 50'000'000) HERD_SKIP("this kernel grants no time slice on request (Linux 6.12 and later do)");
    for (const auto& child : children_of(p.pid())) {
        INFO("child " << child.pid << " (" << child.title << ")");
        CHECK(time_slice_of(child.pid) == mine);
    }
}

TEST_CASE("USR1 makes the workers reopen the log file too")
{
    HardDeadline guard(15s);
    TempDir dir;
    const std::string log = dir / "app.log", rotated = dir / "app.log.1";
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0", "--log-file", log}, fast_options()));
    REQUIRE(poll_until([&] { return file_has_line(log, std::regex("all 2 workers ready")); }, in(5s)));
    std::filesystem::rename(log, rotated);
    REQUIRE(p.signal(SIGUSR1));
    REQUIRE(poll_until([&] { return std::filesystem::exists(log); }, in(3s)));
    // Give each worker's loop a turn to act on USR1 (it does so from its own io_context).
    const int port = [&] {
        for (const auto& l : read_lines(rotated))
            if (l.find("listening on 127.0.0.1:") != std::string::npos) return parse_port(l);
        return 0;
    }();
    REQUIRE(port > 0);
    for (int i = 0; i < 8; ++i) http_get("127.0.0.1", port, "/", 1s);
    // A worker's next line goes to the new file
    REQUIRE(p.signal(SIGQUIT));
    REQUIRE(p.wait_exit(in(5s)));
    CHECK(file_has_line(log, std::regex(R"(\[worker\[\d\] \d+\] \[info\] worker \d+ stopping gracefully \(QUIT\))")));
    CHECK_FALSE(file_has_line(rotated, std::regex("stopping gracefully")));
}

TEST_CASE("as PID 1 the manager reaps adopted orphans, and USR2 still upgrades it")
{
    if (::geteuid() != 0 || !std::filesystem::exists("/usr/bin/unshare")) HERD_SKIP("needs root and unshare");
    HardDeadline guard(20s);
    // A chroot or most containers cannot make a new mount namespace (for a /proc of its own)
    const auto probe = run({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/true"}, 5s);
    if (!probe.status || probe.status->code != 0)
        HERD_SKIP("unshare cannot make a pid and mount namespace here: " + (probe.lines.empty() ? std::string("no output") : probe.lines[0]));
    TempDir dir;
    const std::string app = dir / "app";
    deploy(test_worker(), app);
    // Each worker leaves 3 orphans behind at start; in its own pid namespace the manager is PID 1.
    Process p(concat({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", app, "-w", "2", "--mode", "orphans=3"},
                     fast_options()));
    const auto started = p.wait_for_line(lines::started, in(5s));
    REQUIRE_MESSAGE(started, p.output());
    CHECK(started->number(1) == 1);
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    int manager = 0;
    REQUIRE(poll_until([&] { auto c = children_of(p.pid()); return c.size() == 1 && (manager = c[0].pid); }, in(2s)));

    // The orphans exit 50 ms after they were adopted; nothing of theirs is left, not even a zombie
    auto only_the_pool = [&] {
        const auto c = children_of(manager);
        return c.size() == 3 && std::none_of(c.begin(), c.end(), [](const Child& x) { return x.state == 'Z'; });
    };
    CHECK_MESSAGE(poll_until(only_the_pool, in(3s)), "children of the manager: " << children_of(manager).size());

    // The pre-flight's exit is Boost.Process's to collect, not the orphan reaper's
    deploy(test_worker(), app);
    REQUIRE(::kill(manager, SIGUSR2) == 0);
    const auto done = p.wait_for_line(lines::upgrade_complete, in(10s));
    REQUIRE_MESSAGE(done, p.output());
    CHECK(poll_until(only_the_pool, in(3s)));
    REQUIRE(::kill(manager, SIGQUIT) == 0);
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

TEST_CASE("with WATCHDOG_USEC set the manager sends WATCHDOG=1 at half the interval")
{
    HardDeadline guard(10s);
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    Process p(concat({test_worker(), "-w", "1"}, fast_options()),
              {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000"});
    std::vector<std::string> seen;
    REQUIRE(notify.wait_for("READY=1", in(5s), seen));
    // 100 ms apart: three within 0.5 s (and the first came at start)
    const auto from = Clock::now();
    int watchdogs = 0;
    while (watchdogs < 3 && notify.wait_for("WATCHDOG=1", from + 500ms, seen)) ++watchdogs;
    CHECK_MESSAGE(watchdogs == 3, watchdogs << " WATCHDOG=1 in 500 ms");
    // A WATCHDOG_PID naming another process is not for this manager
    Process other(concat({test_worker(), "-w", "1"}, fast_options()),
                  {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
    REQUIRE(other.wait_for_lines(lines::ready, 1, in(5s)).size() == 1);
    p.kill_group();
    while (notify.receive(in(0ms))) {   // what the first manager sent before it was killed
    }
    seen.clear();
    CHECK_FALSE(notify.wait_for("WATCHDOG=1", in(400ms), seen));
}

TEST_CASE("systemd's STATUS= says how many workers are ready, why an upgrade was abandoned, and that the manager stops")
{
    HardDeadline guard(15s);
    Deployment d(test_worker());
    NotifySocket notify(d.dir() / "notify.sock");
    Process& p = d.start(concat({"-w", "2"}, fast_options()), {"NOTIFY_SOCKET=" + notify.path()});
    std::vector<std::string> seen;
    auto all_seen = [&] {
        std::string text;
        for (const auto& m : seen) text += "[" + m + "] ";
        return text + "\n" + p.output();
    };
    const auto ready = notify.wait_for("READY=1", in(5s), seen);
    REQUIRE_MESSAGE(ready, all_seen());
    CHECK_MESSAGE(ready->find("STATUS=2 workers ready") != std::string::npos, *ready);

    deploy_script("#!/bin/sh\necho \"bad config\" >&2\nexit 2\n", d.app());
    seen.clear();
    REQUIRE(p.signal(SIGUSR2));
    const auto abandoned = notify.wait_for("STATUS=upgrade abandoned", in(5s), seen);
    REQUIRE_MESSAGE(abandoned, all_seen());
    CHECK_MESSAGE(*abandoned == "READY=1\nSTATUS=upgrade abandoned: " + d.app() + " --check failed (exit code 2): bad config",
                  *abandoned);

    seen.clear();
    REQUIRE(p.signal(SIGQUIT));
    const auto stopping = notify.wait_for("STOPPING=1", in(3s), seen);
    REQUIRE_MESSAGE(stopping, all_seen());
    CHECK_MESSAGE(stopping->find("STATUS=stopping gracefully") != std::string::npos, *stopping);
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}
