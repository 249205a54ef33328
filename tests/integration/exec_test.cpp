// Exec mode (DESIGN.md §7): `herd [options] -- COMMAND` runs real programs as the workers,
// python3 servers that take their socket the systemd way and /bin/sh scripts: what a program
// starts with (descriptors, environment, signals), its output in the manager's log, heartbeats
// written by a program, readiness without them, --stop-signal, crash loops, the command line, and
// USR2 of herd itself under load.
#include "harness.hpp"
#include "rollout_checks.hpp"

#include <doctest/doctest.h>

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string herd_binary() { return binary("HERD"); }

// Debian's python3 (a version manager's shim on PATH would add its own start-up to every spawn).
std::string python3()
{
    return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

// A socket-activated HTTP server: the socket at fd 3 (LISTEN_FDS), a heartbeat every 50 ms on
// HERD_HEARTBEAT_FD, /pid answers its pid with "Connection: close". On TERM (herd's default
// --stop-signal) it finishes the request in hand, stops accepting and exits 0.
constexpr const char* server_py = R"PY(
import os, signal, socket, time
assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not mine"
assert os.environ["LISTEN_FDS"] == "1"
listener = socket.socket(fileno=3)
heartbeat = int(os.environ["HERD_HEARTBEAT_FD"])
stopping = False
def stop(signum, frame):
    global stopping
    stopping = True
signal.signal(signal.SIGTERM, stop)
print("serving", os.environ["LISTEN_FDNAMES"], "in slot", os.environ["HERD_SLOT"],
      "generation", os.environ["HERD_GENERATION"], flush=True)
listener.settimeout(0.05)
beat = 0.0
while not stopping:
    if time.monotonic() - beat >= 0.05:
        os.write(heartbeat, b"\n")
        beat = time.monotonic()
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        continue
    with conn:
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        body = f"{os.getpid()}\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
listener.close()
print("stopping on TERM", flush=True)
)PY";

// The descriptor numbers pid has open.
std::set<int> fds_of(pid_t pid)
{
    std::set<int> fds;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
        fds.insert(std::stoi(e.path().filename().string()));
    return fds;
}

// What descriptor fd of pid is: "socket:[123]", "pipe:[456]", "/dev/null".
std::string fd_target(pid_t pid, int fd)
{
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec).string();
}

// pid's environment, KEY -> VALUE.
std::map<std::string, std::string> environment_of(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
    std::map<std::string, std::string> env;
    std::string var;
    while (std::getline(in, var, '\0')) {
        const auto eq = var.find('=');
        if (eq != std::string::npos) env[var.substr(0, eq)] = var.substr(eq + 1);
    }
    return env;
}

// A line the manager logged for a program's output: "[worker[SLOT] PID] [info] TEXT".
std::regex output_line(int slot, int pid, const std::string& text)
{
    return std::regex(R"(\[worker\[)" + std::to_string(slot) + R"(\] )" + std::to_string(pid) + R"(\] \[info\] )" + text);
}

// pid -> slot of every worker that logged "spawned".
std::map<int, int> slots(Process& p)
{
    std::map<int, int> out;
    for (const auto& m : p.matches(lines::spawned)) out[m.number(1)] = m.number(2);
    return out;
}

// herd with fast timing and `options`, then `--` and the command.
std::vector<std::string> herd_args(const std::vector<std::string>& options, const std::vector<std::string>& command)
{
    return concat(concat({herd_binary()}, fast_options(options)), concat({"--"}, command));
}

// Wait for "all N workers ready"; the pids that are ready then.
std::set<int> wait_all_ready(Process& p, unsigned workers, Deadline deadline)
{
    const auto all = p.wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), deadline);
    REQUIRE_MESSAGE(all, "the pool never got ready:\n" << p.output());
    return ready_pids(p);
}

// Stop the manager with `signal`; it must exit 0, and no program may read as crashed.
void stop_cleanly(Process& p, int signal)
{
    REQUIRE(p.signal(signal));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, "the manager did not exit:\n" << p.output());
    CHECK_MESSAGE(status->code == 0, status->describe() << "\n" << p.output());
    CHECK_MESSAGE(p.count(std::regex("reaped: crashed")) == 0, p.output());
}

// herd with `args` must exit 2 with one line matching `message`.
void check_usage_error(const std::vector<std::string>& args, const std::string& message)
{
    const auto r = run(concat({herd_binary()}, args), 5s);
    INFO("output:\n" << r.output());
    REQUIRE(r.status);
    CHECK(r.status->code == 2);
    std::vector<std::string> lines;
    for (const auto& l : r.lines)
        if (!l.empty()) lines.push_back(l);
    REQUIRE(lines.size() == 1);
    CHECK_MESSAGE(std::regex_search(lines[0], std::regex(message)), lines[0] << " does not match " << message);
}

}  // namespace

TEST_CASE("programs get their socket the systemd way and serve; their output is logged with slot and pid; nothing else leaks in")
{
    HardDeadline guard(20s);
    TempDir dir;
    write_file(dir / "server.py", server_py);
    Process p(herd_args({"-w", "2", "-l", "127.0.0.1:0"}, {python3(), dir / "server.py"}));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    const std::set<int> workers = wait_all_ready(p, 2, in(10s));
    REQUIRE(workers.size() == 2);

    const auto answer = http_get("127.0.0.1", port, "/pid", 2s);
    REQUIRE_MESSAGE(answer.ok(), answer.error);
    CHECK(workers.count(int(first_number(answer.body))) == 1);

    const auto slot_of = slots(p);
    for (int pid : workers) {
        CAPTURE(pid);
        const int slot = slot_of.at(pid);
        // Its first line, as the manager logged it
        // (LISTEN_FDNAMES: the address as given, ':' made '_')
        CHECK_MESSAGE(p.wait_for_line(output_line(slot, pid, "serving 127\\.0\\.0\\.1_0 in slot " + std::to_string(slot) +
                                                                 " generation 1$"),
                                      in(2s)),
                      p.output());
        // Descriptors: /dev/null, the output pipe twice, the socket, the heartbeat pipe; nothing else
        // (once the worker that answered has closed that connection)
        CHECK(poll_until([&] { return fds_of(pid) == std::set<int>{0, 1, 2, 3, 4}; }, in(2s)));
        CHECK(fd_target(pid, 0) == "/dev/null");
        CHECK(fd_target(pid, 1).starts_with("pipe:"));
        CHECK(fd_target(pid, 1) == fd_target(pid, 2));
        CHECK(fd_target(pid, 3).starts_with("socket:"));
        CHECK(fd_target(pid, 4).starts_with("pipe:"));
        CHECK(fd_target(pid, 4) != fd_target(pid, 1));
        // Environment: the systemd variables for itself, herd's, and not the manager's own
        auto env = environment_of(pid);
        CHECK(env["LISTEN_FDS"] == "1");
        CHECK(env["LISTEN_PID"] == std::to_string(pid));
        CHECK(env["LISTEN_FDNAMES"] == "127.0.0.1_0");
        CHECK(env["HERD_HEARTBEAT_FD"] == "4");
        CHECK(env["HERD_SLOT"] == std::to_string(slot));
        CHECK(env["HERD_GENERATION"] == "1");
        CHECK(env.count("NOTIFY_SOCKET") == 0);
    }

    // QUIT: TERM (the default --stop-signal) to each; each finishes and exits 0
    const std::size_t mark = p.lines().size();
    stop_cleanly(p, SIGQUIT);
    const auto reaped = reaped_pids(p, mark);
    for (int pid : workers) {
        CHECK(reaped.count(pid) == 1);
        if (reaped.count(pid)) CHECK(reaped.at(pid) == "retired (shutdown)");
        CHECK(p.count(output_line(slot_of.at(pid), pid, "stopping on TERM$"), mark) == 1);
    }
}

TEST_CASE("without heartbeats a program is ready after --ready-after, starts with signals at their defaults, and is not sent USR1; HUP replaces it")
{
    HardDeadline guard(20s);
    // sh's own state is what it inherited; grep shows it, then sleep is the program.
    const std::string script = "grep -E '^Sig(Blk|Ign)' /proc/self/status; "
                               "echo \"heartbeat fd $HERD_HEARTBEAT_FD, sockets ${LISTEN_FDS:-none}\"; exec sleep 30";
    Process p(herd_args({"-w", "2", "--heartbeat-timeout", "0", "--ready-after", "300ms"}, {"/bin/sh", "-c", script}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    REQUIRE(workers.size() == 2);
    for (const auto& m : p.matches(lines::ready)) {
        CAPTURE(m.line);
        CHECK(parse_duration_ms(m[3]) >= 300);
        CHECK(parse_duration_ms(m[3]) < 1000);
    }
    CHECK(p.count(std::regex("each is ready once it has run 300 ms \\(--ready-after\\) and is asked to stop with TERM")) == 1);
    const auto slot_of = slots(p);
    for (int pid : workers) {
        CAPTURE(pid);
        const int slot = slot_of.at(pid);
        CHECK_MESSAGE(p.wait_for_line(output_line(slot, pid, "SigBlk:\\s+0000000000000000$"), in(2s)), p.output());
        CHECK(p.count(output_line(slot, pid, "SigIgn:\\s+0000000000000000$")) == 1);
        CHECK(p.count(output_line(slot, pid, "heartbeat fd 3, sockets none$")) == 1);
        CHECK(fds_of(pid) == std::set<int>{0, 1, 2, 3});
    }

    // USR1 reopens the manager's log and is not forwarded: sleep, which does not handle it, would
    // die of it ("crashed (signal 10)") instead of retiring on the HUP that follows.
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR1));
    REQUIRE(p.wait_for_line(std::regex("received USR1: reopening log files"), in(2s), mark));

    // HUP: a rolling replacement, each new program ready by --ready-after before an old one leaves
    REQUIRE(p.signal(SIGHUP));
    wait_complete(p, lines::reload_complete, mark, 2, 2);
    check_replaced(p, mark, workers, 2, 2, "reload");
    CHECK(min_serving(p, mark) >= 2);

    stop_cleanly(p, SIGQUIT);
}

TEST_CASE("a program that writes heartbeats and then hangs is retired for no heartbeat, then killed after --graceful-timeout")
{
    HardDeadline guard(20s);
    // It ignores TERM, its stop signal: only the KILL after the graceful timeout ends it.
    const std::string script = "trap '' TERM; i=0; while [ $i -lt 3 ]; do echo >&\"$HERD_HEARTBEAT_FD\"; sleep 0.1; "
                               "i=$((i+1)); done; echo hanging; exec sleep 30";
    Process p(herd_args({"-w", "1", "--graceful-timeout", "500ms", "--kill-timeout", "300ms"}, {"/bin/sh", "-c", script}));
    const auto ready = p.wait_for_line(lines::ready, in(5s));
    REQUIRE_MESSAGE(ready, p.output());
    const int pid = ready->number(1);
    CHECK(p.wait_for_line(output_line(0, pid, "hanging$"), in(3s)));
    const auto silent = p.wait_for_line(worker_line(pid, R"(has no heartbeat for (\S+ \S+) \(timeout 500 ms\), retiring)"),
                                        in(3s));
    REQUIRE_MESSAGE(silent, p.output());
    const auto killing = p.wait_for_line(
        worker_line(pid, R"(still running (\S+ \S+) after TERM \(graceful timeout\), killing)"), in(3s), silent->index);
    REQUIRE_MESSAGE(killing, p.output());
    CHECK(parse_duration_ms(killing->groups[1]) >= 500);
    const auto reaped = p.wait_for_line(worker_line(pid, "reaped: killed after graceful timeout, slot 0"), in(3s));
    REQUIRE_MESSAGE(reaped, p.output());
    CHECK_FALSE(pid_alive(pid));
    // Replaced in its slot
    CHECK(p.wait_for_line(std::regex(R"(worker \d+ spawned in slot 0 \(generation 1\))"), in(3s), reaped->index));

    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(5s));
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("with herd's defaults a program that knows nothing of herd runs on, past --boot-timeout and --heartbeat-timeout")
{
    HardDeadline guard(20s);
    // Only the timing is shortened: --heartbeat stays at its default (auto).
    Process p(herd_args({"-w", "2", "--boot-timeout", "1s", "--ready-after", "200ms"}, {"/bin/sleep", "100"}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    REQUIRE(workers.size() == 2);
    CHECK(p.count(std::regex("is retired after 500 ms of silence only once it has sent one \\(--heartbeat auto\\)")) == 1);
    // Three boot timeouts and five heartbeat timeouts later, the same two programs run.
    const std::size_t mark = p.lines().size();
    const auto respawn = p.wait_for_line(std::regex("spawned|boot timeout|no heartbeat|reaped"), in(2500ms), mark);
    CHECK_MESSAGE(!respawn, respawn->line << "\n" << p.output());
    for (int pid : workers) CHECK(pid_alive(pid));
    CHECK(spawned_pids(p).size() == 2);
    stop_cleanly(p, SIGQUIT);
}

TEST_CASE("--heartbeat auto: a program that sends one record and then goes silent is retired for no heartbeat")
{
    HardDeadline guard(20s);
    // Slot 0 beats at once (ready at that record); slot 1 only after it was ready by time.
    const std::string script = "[ \"$HERD_SLOT\" = 1 ] && sleep 1.5; echo >&\"$HERD_HEARTBEAT_FD\"; echo beat; exec sleep 30";
    Process p(herd_args({"-w", "2", "--ready-after", "200ms", "--restart-limit", "100/10s"}, {"/bin/sh", "-c", script}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    REQUIRE(workers.size() == 2);
    const auto slot_of = slots(p);
    for (int pid : workers) {
        CAPTURE(pid);
        const auto beat = p.wait_for_line(output_line(slot_of.at(pid), pid, "beat$"), in(3s));
        REQUIRE_MESSAGE(beat, p.output());
        const auto silent = p.wait_for_line(worker_line(pid, R"(has no heartbeat for (\S+ \S+) \(timeout 500 ms\), retiring)"), in(3s));
        REQUIRE_MESSAGE(silent, p.output());
        CHECK(parse_duration_ms(silent->groups[1]) >= 500);
        CHECK(silent->index > beat->index);
        const auto ready = p.matches(worker_line(pid, R"(ready in slot \d after (\S+ \S+)$)"));
        REQUIRE(ready.size() == 1);
        if (slot_of.at(pid) == 1) CHECK(parse_duration_ms(ready[0].groups[1]) < 1500);   // by time, before its record
        CHECK_MESSAGE(p.wait_for_line(worker_line(pid, "reaped: no heartbeat, slot"), in(3s)), p.output());
    }
    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(5s));
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("--heartbeat required: a program that sends no record is killed at --boot-timeout")
{
    HardDeadline guard(20s);
    Process p(herd_args({"-w", "1", "--heartbeat", "required", "--boot-timeout", "600ms", "--restart-limit", "100/10s"},
                        {"/bin/sleep", "100"}));
    const auto killed = p.wait_for_line(lines::boot_timeout, in(5s));
    REQUIRE_MESSAGE(killed, p.output());
    CHECK(p.count(lines::ready) == 0);
    CHECK(p.count(std::regex("each is ready at its first heartbeat on HERD_HEARTBEAT_FD and is asked")) == 1);
    REQUIRE(p.signal(SIGTERM));
    CHECK(p.wait_exit(in(5s)));
}

TEST_CASE("programs that fail at boot make herd back off, then give up with exit code 3; long and unfinished lines are logged")
{
    HardDeadline guard(20s);
    const std::string script = "head -c 5000 /dev/zero | tr '\\0' x; echo; echo boom >&2; "
                               "printf 'no newline at the end'; exit 7";
    Process p(herd_args({"-w", "2", "--restart-limit", "3/10s"}, {"/bin/sh", "-c", script}));
    const auto status = p.wait_exit(in(10s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 3);
    CHECK(p.count(lines::giving_up) == 1);
    CHECK(p.count(lines::backing_off) == 1);
    auto reaped = reaped_pids(p);
    // Giving up stops what is still booting gracefully: a program spawned just before may be
    // stopped before it fails, and only after the giving-up line.
    const auto gave_up = p.matches(lines::giving_up);
    REQUIRE(gave_up.size() == 1);
    std::erase_if(reaped, [&](const auto& r) {
        if (r.second != "stopped (shutdown)") return false;
        const auto exit = p.matches(worker_line(r.first, "reaped:"));
        CHECK((exit.size() == 1 && exit[0].index > gave_up[0].index));
        return true;
    });
    CHECK(reaped.size() >= 4);
    for (const auto& [pid, outcome] : reaped) CHECK(outcome == "crashed (exit code 7)");
    // Each program's output, before its exit
    const auto slot_of = slots(p);
    for (const auto& [pid, outcome] : reaped) {
        CAPTURE(pid);
        const int slot = slot_of.at(pid);
        const auto cut = p.matches(output_line(slot, pid, "x{4096} \\[cut: longer than 4096 bytes\\]$"));
        CHECK(cut.size() == 1);
        CHECK(p.count(output_line(slot, pid, "boom$")) == 1);
        const auto last = p.matches(output_line(slot, pid, "no newline at the end$"));
        const auto exit = p.matches(worker_line(pid, "reaped:"));
        REQUIRE(last.size() == 1);
        REQUIRE(exit.size() == 1);
        CHECK(last[0].index < exit[0].index);
    }
}

TEST_CASE("a program's child that keeps its stdout open costs the manager no descriptor per restart")
{
    HardDeadline guard(20s);
    // Each program leaves a `sleep 30` behind holding its stdout (and heartbeat pipe), says so, and
    // exits after 300 ms: restarted at once, again and again.
    const std::string script = "sleep 30 & echo \"holder $!\"; sleep 0.3; printf 'last words'";
    Process p(herd_args({"-w", "1", "--ready-after", "100ms", "--restart-limit", "100/10s"}, {"/bin/sh", "-c", script}));
    const auto second = p.wait_for_lines(lines::ready, 2, in(5s));
    REQUIRE_MESSAGE(second.size() == 2, p.output());
    const int baseline = open_fds(p.pid());
    REQUIRE(baseline > 0);
    const auto eighth = p.wait_for_lines(lines::ready, 8, in(10s));
    REQUIRE_MESSAGE(eighth.size() == 8, p.output());
    CHECK_MESSAGE(poll_until([&] { return open_fds(p.pid()) <= baseline; }, in(1s)),
                  "the manager had " << baseline << " descriptors after the first restart, " << open_fds(p.pid())
                                     << " after the seventh");

    // Every program's output was read to its end before its reap, the unfinished last line too.
    std::set<int> holders;
    const auto reaped = reaped_pids(p);
    REQUIRE(reaped.size() >= 7);
    for (const auto& [pid, outcome] : reaped) {
        CAPTURE(pid);
        CHECK(outcome == "finished (exit 0)");
        const auto holder = p.matches(output_line(0, pid, "holder (\\d+)$"));
        REQUIRE(holder.size() == 1);
        holders.insert(holder[0].number(1));
        const auto last = p.matches(output_line(0, pid, "last words$"));
        const auto exit = p.matches(worker_line(pid, "reaped:"));
        REQUIRE(last.size() == 1);
        REQUIRE(exit.size() == 1);
        CHECK(last[0].index < exit[0].index);
    }
    for (int holder : holders) CHECK(pid_alive(holder));   // the children stayed, the descriptors did not

    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(5s));
    REQUIRE(status);
    CHECK(status->code == 0);
    // The children left behind are in the manager's process group: gone with it.
    p.kill_group();
    for (int holder : holders) CHECK(poll_until([&] { return !pid_alive(holder); }, in(2s)));
}

TEST_CASE("--stop-signal is what TTOU and QUIT send: a program that stops on INT retires, none crashes")
{
    HardDeadline guard(20s);
    const std::string script = "trap 'echo stopping on INT; kill $!; exit 0' INT; sleep 30 & wait";
    Process p(herd_args({"-w", "2", "--stop-signal", "INT", "--heartbeat-timeout", "0", "--ready-after", "100ms"},
                        {"/bin/sh", "-c", script}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    const auto slot_of = slots(p);
    std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGTTOU));
    const auto retiring = p.wait_for_line(std::regex(R"(worker (\d+) retiring: scaled down)"), in(2s), mark);
    REQUIRE_MESSAGE(retiring, p.output());
    const int left = retiring->number(1);
    CHECK(p.wait_for_line(worker_line(left, "reaped: retired \\(scaled down\\)"), in(3s), mark));
    CHECK(p.count(output_line(slot_of.at(left), left, "stopping on INT$")) == 1);

    mark = p.lines().size();
    stop_cleanly(p, SIGQUIT);
    for (int pid : workers) {
        if (pid == left) continue;
        CHECK(p.count(worker_line(pid, "reaped: retired \\(shutdown\\)"), mark) == 1);
        CHECK(p.count(output_line(slot_of.at(pid), pid, "stopping on INT$"), mark) == 1);
    }
    CHECK(p.count(std::regex("killing"), mark) == 0);
}

TEST_CASE("a program gone from disk after start cannot be spawned: herd backs off, leaves no zombie, serves on")
{
    HardDeadline guard(20s);
    TempDir dir;
    write_file(dir / "run.sh", "#!/bin/sh\nexec sleep 30\n");
    ::chmod((dir / "run.sh").c_str(), 0755);
    Process p(herd_args({"-w", "2", "--heartbeat-timeout", "0", "--ready-after", "100ms", "--restart-limit", "2/10s"},
                        {dir / "run.sh"}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    std::filesystem::remove(dir / "run.sh");
    const int victim = *workers.begin();
    ::kill(victim, SIGKILL);
    const auto failed = p.wait_for_line(std::regex("cannot spawn a worker in slot \\d: cannot start " + dir.path() +
                                                   "/run.sh: No such file or directory"),
                                        in(3s));
    REQUIRE_MESSAGE(failed, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(lines::backing_off, in(3s)), p.output());
    // The children that could not exec were reaped at once; the other worker serves on.
    for (const auto& child : children_of(p.pid())) CHECK_MESSAGE(child.state != 'Z', "zombie " << child.pid);
    CHECK(pid_alive(*workers.rbegin()));
    CHECK(p.count(lines::giving_up) == 0);
    REQUIRE(p.signal(SIGTERM));
    const auto status = p.wait_exit(in(5s));
    REQUIRE(status);
    CHECK(status->code == 0);
}

TEST_CASE("--user makes the program run as that user, the manager keeping its own")
{
    if (::geteuid() != 0) HERD_SKIP("needs root");
    const passwd* nobody = ::getpwnam("nobody");
    REQUIRE(nobody);
    const std::string uid = std::to_string(nobody->pw_uid);
    HardDeadline guard(20s);
    Process p(herd_args({"-w", "1", "--user", "nobody", "--heartbeat-timeout", "0", "--ready-after", "100ms"},
                        {"/bin/sh", "-c", "echo \"uid $(id -u)\"; exec sleep 30"}));
    const std::set<int> workers = wait_all_ready(p, 1, in(5s));
    const int pid = *workers.begin();
    CHECK_MESSAGE(p.wait_for_line(output_line(0, pid, "uid " + uid + "$"), in(2s)), p.output());
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("Uid:")) CHECK(line.find("\t" + uid + "\t") != std::string::npos);
    stop_cleanly(p, SIGQUIT);
}

TEST_CASE("workers die with the manager (PR_SET_PDEATHSIG)")
{
    HardDeadline guard(20s);
    Process p(herd_args({"-w", "2", "--heartbeat-timeout", "0", "--ready-after", "100ms"}, {"/bin/sleep", "30"}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    REQUIRE(p.signal(SIGKILL));
    CHECK(p.wait_exit(in(2s)));
    for (int pid : workers)
        CHECK_MESSAGE(poll_until([&] { return !pid_alive(pid); }, in(2s)), "worker " << pid << " outlived the manager");
}

TEST_CASE("a program running as --user dies with the manager (PR_SET_PDEATHSIG set again after the switch)")
{
    // Switching user clears PR_SET_PDEATHSIG; sleep sends no heartbeat that could fail.
    if (::geteuid() != 0) HERD_SKIP("--user needs root");
    HardDeadline guard(20s);
    Process p(herd_args({"-w", "2", "--user", "nobody", "--ready-after", "100ms"}, {"/bin/sleep", "30"}));
    const std::set<int> workers = wait_all_ready(p, 2, in(5s));
    REQUIRE(p.signal(SIGKILL));
    CHECK(p.wait_exit(in(2s)));
    for (int pid : workers)
        CHECK_MESSAGE(poll_until([&] { return !pid_alive(pid); }, in(2s)), "program " << pid << " running as nobody outlived the manager");
    p.kill_group();
}

TEST_CASE("the command line: no command, a missing or non-executable one, a malformed pool are usage errors; --check checks the command")
{
    TempDir dir;
    write_file(dir / "data.txt", "not a program\n");
    check_usage_error({"-w", "2"}, "^herd: no command to run: herd \\[options\\] -- COMMAND \\[ARGS\\.\\.\\.\\]$");
    check_usage_error({"--"}, "no command to run");
    check_usage_error({"--", "herd-no-such-program"}, "^herd: cannot execute 'herd-no-such-program': not found in PATH");
    check_usage_error({"--", dir / "missing"}, "^herd: cannot execute " + dir.path() + "/missing: No such file or directory$");
    check_usage_error({"--", dir / "data.txt"}, "^herd: cannot execute " + dir.path() + "/data.txt: Permission denied$");
    check_usage_error({"/bin/true"}, "unexpected argument '/bin/true' \\(the command goes after --\\)");
    write_file(dir / "pools.conf", "workers = 2\n[pool.web]\nworkers = 3\n[pool.Jobs]\n");
    check_usage_error({"--config", dir / "pools.conf", "--", "/bin/true"},
                      "^herd: config file .*/pools\\.conf, line 4: invalid pool name 'Jobs': use a-z, 0-9, _ and - only$");
    write_file(dir / "manager.conf", "[pool.web]\ncommand = /bin/true\ncontrol = /tmp/x.sock\n");
    check_usage_error({"--config", dir / "manager.conf"},
                      "^herd: config file .*/manager\\.conf, line 3: option 'control' applies to the whole manager; "
                      "put it before the first \\[section\\]$");
    check_usage_error({"--stop-signal", "STOP", "--", "/bin/true"}, "invalid value 'STOP' for --stop-signal");

    const auto ok = run({herd_binary(), "--check", "-w", "3", "--", "sh", "-c", "exit 1"}, 5s);
    REQUIRE(ok.status);
    CHECK(ok.status->code == 0);
    CHECK(ok.output().find("herd: configuration is valid") != std::string::npos);
    check_usage_error({"--check", "--", dir / "data.txt"}, "Permission denied");

    // Executable, but not by the kernel: no fork loop into exit 3, one line and exit 2, in --check too
    write_file(dir / "noshebang.sh", "echo hello\n");
    ::chmod((dir / "noshebang.sh").c_str(), 0755);
    const std::string format = "^herd: cannot execute " + dir.path() +
                               "/noshebang\\.sh: Exec format error \\(neither an ELF binary nor a script starting with #!\\)$";
    check_usage_error({"-w", "2", "--", dir / "noshebang.sh"}, format);
    check_usage_error({"--check", "--", dir / "noshebang.sh"}, format);
    write_file(dir / "lost.sh", "#!/nonexistent/bash\necho hello\n");
    ::chmod((dir / "lost.sh").c_str(), 0755);
    // A binary built for a system with another loader: execve would fail with ENOENT
    std::ifstream true_binary("/bin/true", std::ios::binary);
    std::string elf((std::istreambuf_iterator<char>(true_binary)), std::istreambuf_iterator<char>());
    const std::string loader = "/lib64/ld-linux-x86-64.so.2";
    if (const auto at = elf.find(loader + '\0'); at != std::string::npos) {
        write_file(dir / "foreign", elf.replace(at, loader.size(), "/lib64/ld-linux-x86-64.so.9"));
        ::chmod((dir / "foreign").c_str(), 0755);
        check_usage_error({"--check", "--", dir / "foreign"},
                          "^herd: cannot execute " + dir.path() + "/foreign: its ELF interpreter "
                          "/lib64/ld-linux-x86-64\\.so\\.9: No such file or directory$");
    }
    check_usage_error({"--check", "--", dir / "lost.sh"},
                      "^herd: cannot execute " + dir.path() + "/lost\\.sh: its interpreter /nonexistent/bash \\(#! line\\): "
                      "No such file or directory$");

    const auto version = run({herd_binary(), "--version"}, 5s);
    REQUIRE(version.status);
    CHECK(version.status->code == 0);
    CHECK(std::regex_search(version.output(), std::regex(R"(^herd \d+\.\d+\.\d+\n?$)")));
}

TEST_CASE("USR2 upgrades herd itself under load: the same pid, every program replaced, not one failed request")
{
    HardDeadline guard(30s);
    Deployment d(herd_binary());
    write_file(d.dir() / "server.py", server_py);
    d.start(concat(concat({"-w", "3", "-l", "127.0.0.1:0"}, fast_options()), {"--", python3(), d.dir() / "server.py"}));
    const std::string error = d.wait_ready(3, in(10s));
    REQUIRE_MESSAGE(error.empty(), error);
    Process& p = d.process();
    const std::set<int> generation1 = generation_pids(p, 1);
    REQUIRE(generation1.size() == 3);
    WatchedLoad load(d, 8);

    deploy(herd_binary(), d.app());
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    const auto runs = p.wait_for_line(lines::upgrade_runs, in(10s), mark);
    REQUIRE_MESSAGE(runs, p.output());
    CHECK(runs->number(1) == d.pid());
    wait_complete(p, lines::upgrade_complete, mark, 2, 3);
    check_replaced(p, mark, generation1, 2, 3, "upgrade");
    CHECK(min_serving(p, mark) >= 3);
    const std::set<int> generation2 = generation_pids(p, 2);
    load.check(generation2, Clock::now());

    // The old programs' last lines, written after the exec, were logged by the new image.
    const auto slot_of = slots(p);
    for (int pid : generation1)
        CHECK_MESSAGE(p.count(output_line(slot_of.at(pid), pid, "stopping on TERM$"), mark) == 1, p.output());
    for (int pid : generation2) {
        CAPTURE(pid);
        CHECK(p.count(output_line(slot_of.at(pid), pid, "serving .* generation 2$"), mark) == 1);
        // The new image leaks nothing either (once the connections of the load are closed)
        CHECK(poll_until([&] { return fds_of(pid) == std::set<int>{0, 1, 2, 3, 4}; }, in(2s)));
    }
    stop_cleanly(p, SIGQUIT);
}
