// Security (docs/operations.md, "Security"): what a worker can and cannot do to its manager, what a forked
// worker and an exec'd program are handed, and nothing more, and who may control a manager.
// Real binaries, real signals: a probe program running as --user nobody tries what a hostile
// worker would; /proc and kcmp(2) show what each process holds. Cases that need root (or the user
// nobody) skip with the reason, each a meson test of its own (meson.build).
#include "harness.hpp"
#include "security_checks.hpp"

#include <doctest/doctest.h>

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string herd_binary() { return binary("HERD"); }
std::string hello_http() { return binary("HELLO_HTTP"); }

// Debian's python3 (a version manager's shim on PATH would add its own start-up to every spawn).
std::string python3()
{
    return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

}  // namespace

TEST_CASE("a forked worker holds no descriptor of its manager but its standard streams and its pool's listeners, before and after USR2")
{
    if (same_file(::getpid(), 0, ::getpid(), 0) < 0) HERD_SKIP("kcmp(2) is not available here");
    HardDeadline guard(30s);
    TempDir dir;
    // Two C++ pools and an exec pool: the manager's event loop, the exec pool's launcher, the
    // control socket, the pid file, every heartbeat and output pipe are in the manager.
    write_file(dir / "app.conf", "[pool.web]\nworker = web\nworkers = 2\nlisten = 127.0.0.1:0\n"
                                 "[pool.jobs]\nworker = jobs\nworkers = 1\n"
                                 "[pool.tool]\ncommand = /bin/sleep 30\nworkers = 1\nready-after = 100ms\n");
    Process p(concat({hello_http(), "--config", dir / "app.conf", "--control", dir / "control.sock", "--pid-file",
                      dir / "app.pid"},
                     fast_options()));
    const auto port = p.wait_for_line(std::regex(R"(pool web: listening on 127\.0\.0\.1:(\d+))"), in(5s));
    REQUIRE_MESSAGE(port, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 pools ready: 4 workers"), in(10s)), p.output());
    const std::string listener = tcp_listener(port->number(1));
    // The standby is forked once the pools are steady.
    CHECK(poll_until([&] { return children_of(p.pid()).size() >= 5; }, in(2s)));
    // (Polled: a descriptor held for good shows at every look; a child's set-up is a moment.)
    std::vector<std::string> problems;
    poll_until([&] { return (problems = shared_beyond_allowed(p.pid(), listener)).empty(); }, in(2s), 100ms);
    CHECK_MESSAGE(problems.empty(), problems.size() << " descriptors too many, the first: " << first(problems));

    // USR2: the new image's workers (the hand-over record is a memfd then, the previous binary
    // is held open)
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("upgrade to generation 2 complete"), in(10s), mark), p.output());
    CHECK(poll_until([&] { return children_of(p.pid()).size() >= 5; }, in(2s)));
    poll_until([&] { return (problems = shared_beyond_allowed(p.pid(), listener)).empty(); }, in(2s), 100ms);
    CHECK_MESSAGE(problems.empty(), problems.size() << " descriptors too many after USR2, the first: " << first(problems));
}

TEST_CASE("a forked worker does not see NOTIFY_SOCKET or WATCHDOG_*: systemd hears the manager alone")
{
    HardDeadline guard(20s);
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    Process p(concat({binary("TEST_WORKER"), "-w", "2", "--mode", "environment"}, fast_options()),
              {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=60000000", "WATCHDOG_PID=1"});
    const auto seen = p.wait_for_lines(std::regex(R"(test worker (\d+) sees (.*)$)"), 2, in(5s));
    REQUIRE_MESSAGE(seen.size() == 2, p.output());
    for (const auto& m : seen) CHECK(m[2] == "NOTIFY_SOCKET=unset WATCHDOG_USEC=unset WATCHDOG_PID=unset");
    std::vector<std::string> datagrams;
    CHECK_MESSAGE(notify.wait_for("READY=1", in(5s), datagrams), p.output());   // the manager did hear it
    REQUIRE(p.signal(SIGQUIT));
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
}

namespace {

// What a hostile worker tries against its manager (its parent), one line each: "WHAT allowed"
// or "WHAT refused: ERRNO". argv: the control socket, the pid file.
constexpr const char* probe_py = R"PY(
import errno, os, signal, socket, sys
manager = os.getppid()
def attempt(what, action):
    try:
        action()
        print(what, "allowed", flush=True)
    except OSError as e:
        print(what, "refused:", errno.errorcode[e.errno], flush=True)
def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
attempt("signal TERM to the manager", lambda: os.kill(manager, signal.SIGTERM))
attempt("connect to the control socket", lambda: connect(sys.argv[1]))
attempt("open the pid file for writing", lambda: os.close(os.open(sys.argv[2], os.O_WRONLY)))
attempt("open the pid file for reading", lambda: os.close(os.open(sys.argv[2], os.O_RDONLY)))
attempt("read the manager's environ", lambda: open(f"/proc/{manager}/environ", "rb").read())
attempt("list the manager's descriptors", lambda: os.listdir(f"/proc/{manager}/fd"))
for fd in range(64):
    try:
        os.close(os.open(f"/proc/{manager}/fd/{fd}", os.O_RDONLY))
        print("open the manager's fd", fd, "allowed", flush=True)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            print("open the manager's fd", fd, "refused:", errno.errorcode[e.errno], flush=True)
print("every /proc/MANAGER/fd/N tried", flush=True)
attempt("setuid 0", lambda: os.setuid(0))
attempt("setgroups [0]", lambda: os.setgroups([0]))
print("groups", " ".join(str(g) for g in os.getgroups()), flush=True)
signal.sigwait([signal.SIGTERM])
)PY";

// A line the manager logged for a program's output: "[worker[SLOT] PID] [info] TEXT".
std::regex output_line(int pid, const std::string& text)
{
    return std::regex(R"(\[worker\[\d+\] )" + std::to_string(pid) + R"(\] \[info\] )" + text);
}

}  // namespace

TEST_CASE("as --user nobody a worker cannot signal, control or impersonate its manager, nor read what it holds; it keeps none of its groups")
{
    if (::geteuid() != 0) HERD_SKIP("--user needs root");
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) HERD_SKIP("no user 'nobody' here");
    if (::access("/usr/bin/setpriv", X_OK) != 0) HERD_SKIP("no setpriv here (to give the manager groups of its own)");
    HardDeadline guard(30s);
    TempDir dir;
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);   // only the files' own modes keep nobody out
    write_file(dir / "probe.py", probe_py);
    const std::string control = dir / "control.sock", pid_file = dir / "app.pid";
    // The manager runs as root with supplementary groups 4 (adm) and 27 (sudo) of its own.
    Process p(concat({"/usr/bin/setpriv", "--groups", "4,27", "--", herd_binary()},
                     concat(fast_options({"-w", "1", "--user", "nobody", "--heartbeat-timeout", "0", "--ready-after",
                                          "100ms", "--control", control, "--pid-file", pid_file}),
                            {"--", python3(), dir / "probe.py", control, pid_file})));
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const int pid = ready->number(1);
    REQUIRE_MESSAGE(p.wait_for_line(output_line(pid, "groups "), in(5s)), p.output());
    CHECK(status_field(p.pid(), "Groups") == "4 27");
    CHECK(status_field(pid, "Uid") == "65534\t65534\t65534\t65534");

    const auto said = [&](const std::string& what) { return p.count(output_line(pid, what + "$")) == 1; };
    CHECK_MESSAGE(said("signal TERM to the manager refused: EPERM"), p.output());
    CHECK(said("connect to the control socket refused: EACCES"));
    CHECK(said("open the pid file for writing refused: EACCES"));
    CHECK(said("open the pid file for reading allowed"));   // 0644 on purpose: it holds the pid alone
    CHECK(said("read the manager's environ refused: EACCES"));
    CHECK(said("list the manager's descriptors refused: EACCES"));
    CHECK(p.count(output_line(pid, "open the manager's fd")) == 0);
    CHECK(said("every /proc/MANAGER/fd/N tried"));
    CHECK(said("setuid 0 refused: EPERM"));
    CHECK(said("setgroups \\[0\\] refused: EPERM"));
    CHECK(said("groups " + std::to_string(nobody->pw_gid)));   // nobody's own group alone, not 4 or 27
    CHECK(p.count(std::regex("received TERM")) == 0);

    // The manager is untouched: it serves its control socket and stops cleanly.
    const auto status = run({binary("HERDCTL"), "--control", control, "ready"}, 5s);
    CHECK_MESSAGE((status.status && status.status->code == 0), status.output());
    REQUIRE(p.signal(SIGQUIT));
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
}

TEST_CASE("as --user nobody a forked worker keeps none of its manager's supplementary groups; --group alone clears them")
{
    if (::geteuid() != 0) HERD_SKIP("--user needs root");
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) HERD_SKIP("no user 'nobody' here");
    if (::access("/usr/bin/setpriv", X_OK) != 0) HERD_SKIP("no setpriv here (to give the manager groups of its own)");
    HardDeadline guard(30s);
    for (const auto& [option, value, groups] : std::vector<std::array<std::string, 3>>{
             {"--user", "nobody", std::to_string(nobody->pw_gid)}, {"--group", "nogroup", ""}}) {
        CAPTURE(option);
        Process p(concat({"/usr/bin/setpriv", "--groups", "4,27", "--", hello_http(), "-w", "1", "-l", "127.0.0.1:0",
                          option, value},
                         fast_options()));
        const int port = wait_for_port(p, in(5s));
        REQUIRE_MESSAGE(port > 0, p.output());
        REQUIRE_MESSAGE(p.wait_for_line(lines::all_ready, in(5s)), p.output());
        const auto answer = http_get("127.0.0.1", port, "/pid", 2s);
        REQUIRE_MESSAGE(answer.status == 200, answer.error);
        const pid_t worker = pid_t(first_number(answer.body));
        CHECK(status_field(p.pid(), "Groups") == "4 27");
        CHECK(status_field(worker, "Groups") == groups);
        CHECK(status_field(worker, "Gid") == "65534\t65534\t65534\t65534");
        REQUIRE(p.signal(SIGQUIT));
        CHECK(p.wait_exit(in(5s)));
    }
}

TEST_CASE("exec mode hands a program exactly its descriptors, environment, signal state, cwd, umask and process group")
{
    HardDeadline guard(20s);
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    const std::string socket = dir / "app.sock";
    // The manager holds a control socket, a pid file, systemd's variables and stale LISTEN_*
    // ones of someone else's; it starts in `dir` with umask 027.
    std::string command = "cd '" + dir.path() + "' && umask 027 && exec";
    for (const auto& a : concat({herd_binary()},
                                fast_options({"-w", "1", "-l", "127.0.0.1:0", "-l", "unix:" + socket, "--control",
                                              dir / "control.sock", "--pid-file", dir / "app.pid",
                                              "--heartbeat-timeout", "0", "--ready-after", "100ms"})))
        command += " '" + a + "'";
    command += " -- /bin/sleep 30";
    Process p({"/bin/sh", "-c", command},
              {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=60000000", "WATCHDOG_PID=1", "LISTEN_PID=1",
               "LISTEN_FDS=3", "LISTEN_FDNAMES=stale", "HERD_SECURITY_PROBE=passed on"});
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const pid_t pid = pid_t(ready->number(1));

    // Descriptors: /dev/null, the output pipe twice, the two sockets in --listen order, the
    // heartbeat pipe; nothing else
    CHECK(fds_of(pid) == std::set<int>{0, 1, 2, 3, 4, 5});
    CHECK(fd_target(pid, 0) == "/dev/null");
    CHECK(fd_target(pid, 1).starts_with("pipe:"));
    CHECK(fd_target(pid, 2) == fd_target(pid, 1));
    const auto port = p.matches(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"));
    REQUIRE(port.size() == 1);
    CHECK(fd_target(pid, 3) == tcp_listener(port[0].number(1)));
    CHECK(fd_target(pid, 4).starts_with("socket:"));
    CHECK(fd_target(pid, 5).starts_with("pipe:"));
    CHECK(fd_target(pid, 5) != fd_target(pid, 1));

    // Environment: the manager's (the test's, with the variables above), less systemd's and the
    // stale LISTEN_*, with herd's own; the shell's PWD aside
    std::map<std::string, std::string> expected;
    for (char** e = environ; *e; ++e) {
        const std::string var = *e;
        expected[var.substr(0, var.find('='))] = var.substr(var.find('=') + 1);
    }
    for (const char* gone : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "PWD", "OLDPWD"}) expected.erase(gone);
    expected["HERD_SECURITY_PROBE"] = "passed on";
    expected["LISTEN_FDS"] = "2";
    expected["LISTEN_PID"] = std::to_string(pid);
    expected["LISTEN_FDNAMES"] = "127.0.0.1_0:unix_" + socket;
    expected["HERD_HEARTBEAT_FD"] = "5";
    expected["HERD_SLOT"] = "0";
    expected["HERD_GENERATION"] = "1";
    expected["HERD_POOL"] = "main";
    auto env = environment_of(pid);
    env.erase("PWD");
    env.erase("OLDPWD");
    for (const auto& [key, value] : expected) {
        CAPTURE(key);
        CHECK(env[key] == value);
    }
    for (const auto& [key, value] : env) {
        CAPTURE(key);
        CHECK(expected.count(key) == 1);
    }

    // Signals: none blocked, none ignored, no handler; cwd and umask the manager's; its process
    // group the manager's (a signal to the group reaches it), its user the manager's
    for (const char* field : {"SigBlk", "SigIgn", "SigCgt", "SigPnd"}) {
        CAPTURE(field);
        CHECK(status_field(pid, field) == "0000000000000000");
    }
    CHECK(status_field(p.pid(), "SigBlk") != "0000000000000000");   // the manager blocks its own
    std::error_code ec;
    CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).string() == dir.path());
    CHECK(status_field(pid, "Umask") == "0027");
    CHECK(::getpgid(pid) == p.pid());
    CHECK(status_field(pid, "Uid") == status_field(p.pid(), "Uid"));

    REQUIRE(p.signal(SIGQUIT));
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
}

TEST_CASE("a worker that closes its heartbeat channel is retired for no heartbeat; the manager and the other workers carry on")
{
    HardDeadline guard(20s);
    // Slot 0 sends one record, closes its channel and lives on; slot 1 heartbeats every 50 ms.
    const std::string script =
        "if [ \"$HERD_SLOT\" = 0 ]; then echo >&\"$HERD_HEARTBEAT_FD\"; eval \"exec $HERD_HEARTBEAT_FD>&-\"; exec sleep 30; fi; "
        "while :; do echo >&\"$HERD_HEARTBEAT_FD\"; sleep 0.05; done";
    Process p(concat({herd_binary()}, concat(fast_options({"-w", "2", "--ready-after", "3s"}), {"--", "/bin/sh", "-c", script})));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const auto first = p.wait_for_line(std::regex(R"(worker (\d+) ready in slot 0 )"), in(1s));
    const auto honest = p.wait_for_line(std::regex(R"(worker (\d+) ready in slot 1 )"), in(1s));
    REQUIRE(first);
    REQUIRE(honest);
    const int closer = first->number(1);

    const auto silent = p.wait_for_line(worker_line(closer, "has no heartbeat for"), in(3s));
    REQUIRE_MESSAGE(silent, p.output());
    const auto reaped = p.wait_for_line(worker_line(closer, "reaped: (.+), slot 0"), in(3s));
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK(reaped->groups[1] == "no heartbeat");
    CHECK_MESSAGE(p.wait_for_line(std::regex(R"(worker (\d+) ready in slot 0 )"), in(3s), reaped->index), p.output());
    // The honest worker was never touched; the manager still acts at once
    CHECK(p.count(worker_line(honest->number(1), "(retiring|has no heartbeat|reaped)")) == 0);
    CHECK(pid_alive(honest->number(1)));
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGTTIN));
    CHECK_MESSAGE(p.wait_for_line(std::regex("received TTIN: target is now 3 workers"), in(2s), mark), p.output());
    REQUIRE(p.signal(SIGQUIT));
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
}

TEST_CASE("a worker in a session of its own is stopped as any other and dies with a killed manager; a child it double-forked away is left running with the sockets")
{
    HardDeadline guard(20s);
    TempDir dir;
    // The program leaves a grandchild in a session of its own (a double fork: the subshell exits),
    // then becomes a session and process group leader itself (setsid(1) execs sleep in place).
    const std::string script = "(setsid sleep 30 & echo $! > '" + (dir / "orphan.pid") + "'); exec setsid sleep 30";
    Process p(concat({herd_binary()},
                     concat(fast_options({"-w", "1", "-l", "127.0.0.1:0", "--heartbeat-timeout", "0", "--ready-after",
                                          "100ms"}),
                            {"--", "/bin/sh", "-c", script})));
    const int port = wait_for_port(p, in(5s));
    REQUIRE(port > 0);
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const pid_t worker = pid_t(ready->number(1));
    KillAtEnd orphan;
    REQUIRE(poll_until([&] { return first_number(read_text(dir / "orphan.pid")) > 1; }, in(2s)));
    orphan.pid = pid_t(first_number(read_text(dir / "orphan.pid")));
    // setsid(1) runs in the worker and in the background child a moment after they started and
    // the pid was written: wait for it to take effect
    CHECK(poll_until([&] { return ::getsid(worker) == worker && ::getpgid(worker) == worker; }, in(2s)));
    CHECK(poll_until([&] { return ::getsid(orphan.pid) == orphan.pid; }, in(2s)));
    CHECK(status_field(orphan.pid, "PPid") != std::to_string(p.pid()));   // not the manager's child

    // QUIT: the worker gets the stop signal by its pid, whatever its group, and goes
    REQUIRE(p.signal(SIGQUIT));
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
    CHECK(p.count(worker_line(worker, "reaped: stopped \\(shutdown\\)")) == 1);   // it died of TERM
    CHECK(!pid_alive(worker));
    // The double-forked child is nobody's worker: herd does not know it, and it lives on, holding
    // the listening socket (a client's connect still succeeds, into a backlog nobody serves).
    CHECK(pid_alive(orphan.pid));
    CHECK(try_connect("127.0.0.1", port, 1s) == 0);

    // A manager killed outright: a worker in a session of its own still dies with it (PR_SET_PDEATHSIG)
    Process killed(concat({herd_binary()}, concat(fast_options({"-w", "1", "--heartbeat-timeout", "0", "--ready-after", "100ms"}),
                                                  {"--", "/bin/sh", "-c", "exec setsid sleep 30"})));
    const auto second = killed.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(second, killed.output());
    const pid_t leader = pid_t(second->number(1));
    KillAtEnd left{leader};
    REQUIRE(poll_until([&] { return ::getsid(leader) == leader; }, in(2s)));
    REQUIRE(killed.signal(SIGKILL));
    CHECK(killed.wait_exit(in(2s)));
    CHECK_MESSAGE(poll_until([&] { return !pid_alive(leader); }, in(2s)), "worker " << leader << " outlived its manager");
}

TEST_CASE("as root herdctl controls a manager that runs as another uid, whose socket is that uid's, mode 0600")
{
    if (::geteuid() != 0) HERD_SKIP("switching uid needs root");
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) HERD_SKIP("no user 'nobody' here");
    if (::access("/usr/bin/setpriv", X_OK) != 0) HERD_SKIP("no setpriv here (to start the manager as nobody)");
    if (::access(herd_binary().c_str(), R_OK | X_OK) != 0) HERD_SKIP("the herd binary is not readable here");
    HardDeadline guard(20s);
    TempDir dir;
    REQUIRE(::chown(dir.path().c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
    const std::string control = dir / "control.sock";
    Process p(concat({"/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--",
                      herd_binary()},
                     concat(fast_options({"-w", "1", "--heartbeat-timeout", "0", "--ready-after", "100ms", "--control",
                                          control}),
                            {"--", "/bin/sleep", "30"})));
    REQUIRE_MESSAGE(p.wait_for_line(lines::all_ready, in(5s)), p.output());
    struct stat st{};
    REQUIRE(::stat(control.c_str(), &st) == 0);
    CHECK(st.st_uid == nobody->pw_uid);
    CHECK((st.st_mode & 0777) == 0600);

    // Root passes the mode (it may open any file) and SO_PEERCRED (uid 0 is let in): every command.
    const auto ctl = [&](const std::vector<std::string>& args) {
        return run(concat({binary("HERDCTL"), "--control", control}, args), 10s);
    };
    const auto status = ctl({"status"});
    CHECK_MESSAGE((status.status && status.status->code == 0), status.output());
    const auto scaled = ctl({"scale", "2"});
    CHECK_MESSAGE((scaled.status && scaled.status->code == 0), scaled.output());
    CHECK_MESSAGE(p.wait_for_line(std::regex("control request from pid \\d+: target is now 2 workers"), in(2s)), p.output());
    const auto stopped = ctl({"stop"});
    CHECK_MESSAGE((stopped.status && stopped.status->code == 0), stopped.output());
    const auto exit = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(exit, p.output());
    CHECK(exit->code == 0);
}
