// The manager at the limits of the machine: fork failing (RLIMIT_NPROC), descriptors exhausted
// (RLIMIT_NOFILE), a log file on a full disk, and the manager itself killed with -9 under load.
// At each limit the manager says so, keeps the serving workers, backs off without spinning (its
// CPU is read from /proc while the limit holds) and recovers by itself once the limit is lifted.
//
// Limits are set on the running manager with prlimit(1). Root is exempt from RLIMIT_NPROC, so
// that case runs the manager as an unused uid (setpriv); lowering a soft limit of a process of
// one's own uid needs no capability, so prlimit runs as that uid too.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string herdctl() { return binary("HERDCTL"); }

// The share of one CPU pid used over the next second.
double cpu_share(pid_t pid)
{
    const double before = cpu_seconds(pid);
    const auto start = Clock::now();
    poll_until([] { return false; }, in(1s), 100ms);   // a bounded wait of one second
    const double after = cpu_seconds(pid);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return (after - before) / seconds;
}

// The soft or hard value of a /proc/PID/limits line ("Max processes", "Max open files").
std::string limit_of(pid_t pid, const std::string& name, bool hard)
{
    for (const auto& line : read_lines("/proc/" + std::to_string(pid) + "/limits")) {
        if (line.rfind(name, 0) != 0) continue;
        std::istringstream words(line.substr(name.size()));
        std::vector<std::string> v;
        for (std::string w; words >> w;) v.push_back(w);
        if (v.size() >= 2) return hard ? v[1] : v[0];
    }
    return {};
}

// prlimit on pid, run as `prefix` (empty: as the test); true on success.
bool set_limit(const std::vector<std::string>& prefix, pid_t pid, const std::string& limit)
{
    const auto r = run(concat(prefix, {"/usr/bin/prlimit", "--pid", std::to_string(pid), limit}), 5s);
    INFO(r.output());
    return r.status && r.status->code == 0;
}

// Wait for the pool's standby (a child titled "...: standby").
bool has_standby(pid_t manager)
{
    const auto children = children_of(manager);
    return std::any_of(children.begin(), children.end(),
                       [](const Child& c) { return c.title.find("standby") != std::string::npos; });
}

// Pids the log file says are ready.
std::set<int> ready_pids_in_file(const std::string& path)
{
    std::set<int> pids;
    std::smatch m;
    for (const auto& line : read_lines(path))
        if (std::regex_search(line, m, lines::ready)) pids.insert(std::stoi(m[1]));
    return pids;
}

std::string worker_line_text(int pid, const std::string& rest)
{
    return "worker " + std::to_string(pid) + " " + rest;
}

// The worker that answers GET /pid, or -1.
int serving_pid(int port)
{
    const auto r = http_get("127.0.0.1", port, "/pid", 2s);
    return r.ok() ? int(first_number(r.body)) : -1;
}

}  // namespace

TEST_CASE("fork failing (RLIMIT_NPROC): one line, a backoff, the ready worker keeps serving, no busy loop, and the pool refills once the limit is lifted")
{
    if (::geteuid() != 0) HERD_SKIP("needs root to start the manager as another uid");
    if (::access("/usr/bin/setpriv", X_OK) != 0) HERD_SKIP("no setpriv");
    HardDeadline guard(45s);
    // A uid nobody else runs processes as: RLIMIT_NPROC counts every process of the uid
    const std::string uid = std::to_string(61000 + ::getpid() % 4000);
    const std::vector<std::string> as_uid{"/usr/bin/setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--"};
    Process p(concat(as_uid, concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0"}, fast_options())));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    REQUIRE(poll_until([&] { return has_standby(p.pid()); }, in(5s)));

    // No fork can succeed: the manager, two workers and the standby are over a limit of 1
    const std::string hard = limit_of(p.pid(), "Max processes", true);
    REQUIRE(set_limit(as_uid, p.pid(), "--nproc=1:"));
    const std::size_t from = p.lines().size();
    auto workers = ready_pids(p);
    REQUIRE(workers.size() == 2);
    // The first replacement is the standby (no fork); making the next standby fails
    const int first = *workers.begin(), second = *workers.rbegin();
    REQUIRE(::kill(first, SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("no standby process: cannot fork a worker: Resource temporarily unavailable"),
                                    in(5s), from), p.output());
    REQUIRE(::kill(second, SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("cannot spawn a worker in slot \\d+: cannot fork a worker: Resource "
                                               "temporarily unavailable"), in(5s), from), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("backing off: a spawn failed, next spawn in"), in(5s), from), p.output());

    // While the limit holds: serving, idle, and a few attempts spread out
    CHECK(serving_pid(port) > 0);
    const double share = cpu_share(p.pid());
    MESSAGE("manager CPU while fork fails: " << share * 100 << " %");
    CHECK(share < 0.05);
    const std::size_t attempts = p.count(std::regex("cannot spawn a worker"), from);
    MESSAGE(attempts << " spawn attempts in " << ms_since(p.line_times().at(from)) << " ms");
    CHECK(attempts <= 5);
    CHECK(p.count(std::regex("no standby process"), from) == 1);

    // Lifted: the pool refills by itself, and a standby is forked again
    const std::size_t lifted = p.lines().size();
    REQUIRE(set_limit(as_uid, p.pid(), "--nproc=" + hard + ":"));
    CHECK_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(15s), lifted), p.output());
    CHECK(poll_until([&] { return has_standby(p.pid()); }, in(5s)));
}

TEST_CASE("descriptors exhausted (RLIMIT_NOFILE): control clients, a spawn and USR2 fail with one line each, the manager stays idle and serving, and all of it works again once the limit is lifted")
{
    HardDeadline guard(45s);
    TempDir dir;
    const std::string control = dir / "control.sock";
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0", "--control", control}, fast_options()));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    REQUIRE(poll_until([&] { return has_standby(p.pid()); }, in(5s)));
    const std::string soft = limit_of(p.pid(), "Max open files", false);
    MESSAGE("the manager holds " << open_fds(p.pid()) << " descriptors, limit " << soft);

    // No new descriptor: every one from 3 up is taken or over the limit
    REQUIRE(set_limit({}, p.pid(), "--nofile=3:"));
    const std::size_t from = p.lines().size();

    // (a) control clients: the kernel queues them, the manager cannot accept them
    std::vector<std::unique_ptr<ControlClient>> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<ControlClient>(control, 10s));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("control: cannot accept a connection: Too many open files; trying again in 100 ms"),
                                    in(5s), from), p.output());
    // (b) a worker killed: the standby takes its slot, no new standby; the next one cannot spawn
    auto workers = ready_pids(p);
    REQUIRE(workers.size() == 2);
    REQUIRE(::kill(*workers.begin(), SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("no standby process: cannot create a heartbeat pipe: Too many open files"),
                                    in(5s), from), p.output());
    REQUIRE(::kill(*workers.rbegin(), SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("cannot spawn a worker in slot \\d+: cannot create a heartbeat pipe: Too many "
                                               "open files"), in(5s), from), p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("backing off: a spawn failed"), in(5s), from), p.output());
    // (c) USR2: abandoned, generation 1 keeps serving
    REQUIRE(p.signal(SIGUSR2));
    const auto abandoned = p.wait_for_line(lines::upgrade_abandoned, in(5s), from);
    REQUIRE_MESSAGE(abandoned, p.output());
    MESSAGE(abandoned->line);
    CHECK(abandoned->number(2) == 1);

    // While the limit holds: serving, idle, and the accept failures rate-limited
    CHECK(serving_pid(port) > 0);
    const double share = cpu_share(p.pid());
    MESSAGE("manager CPU with no descriptor left: " << share * 100 << " %");
    CHECK(share < 0.05);
    const double seconds = ms_since(p.line_times().at(from)) / 1000;
    const std::size_t accept_lines = p.count(std::regex("control: cannot accept"), from);
    MESSAGE(accept_lines << " accept warnings in " << seconds << " s");
    CHECK(accept_lines <= 5 * (std::size_t(seconds) + 2));   // at most 5 control warnings a second

    // Lifted: the queued clients are answered, the pool refills, the standby and USR2 work again
    const std::size_t lifted = p.lines().size();
    REQUIRE(set_limit({}, p.pid(), "--nofile=" + soft + ":"));
    for (auto& c : clients) CHECK(c->ask("{\"command\":\"status\"}\n").find("\"workers\"") != std::string::npos);
    CHECK_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(15s), lifted), p.output());
    CHECK(poll_until([&] { return has_standby(p.pid()); }, in(5s)));
    REQUIRE(p.signal(SIGUSR2));
    CHECK_MESSAGE(p.wait_for_line(lines::upgrade_complete, in(15s), lifted), p.output());
    CHECK(serving_pid(port) > 0);
}

TEST_CASE("a log file on a full disk (/dev/full): one line on stderr, the lines are dropped, the manager supervises and serves as before")
{
    HardDeadline guard(30s);
    TempDir dir;
    const std::string control = dir / "control.sock";
    int port = -1;
    {
        LoopbackListener reserved;   // a free port; nothing is logged that would tell the manager's
        port = reserved.port;
    }
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:" + std::to_string(port), "--log-file", "/dev/full",
                      "--control", control},
                     fast_options()));
    const std::regex dropped("Failed flush to file /dev/full: No space left on device; log lines are dropped until it "
                             "can be written again");
    REQUIRE_MESSAGE(p.wait_for_line(dropped, in(5s)), p.output());
    auto ready = [&] {
        const auto r = run({herdctl(), "--control", control, "ready"}, 5s);
        return r.status && r.status->code == 0;
    };
    REQUIRE(poll_until(ready, in(10s), 50ms));
    const int victim = serving_pid(port);
    REQUIRE(victim > 0);

    // A worker killed is replaced, TTIN adds one: supervision goes on without its log
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE(poll_until([&] { return !pid_alive(victim); }, in(5s)));
    REQUIRE(p.signal(SIGTTIN));
    const auto status_has_3 = [&] {
        const auto r = run({herdctl(), "--control", control, "status", "--json"}, 5s);
        return r.status && r.status->code == 0 && r.output().find("\"target\":3") != std::string::npos;
    };
    CHECK(poll_until(status_has_3, in(5s), 50ms));
    CHECK(poll_until(ready, in(10s), 50ms));
    CHECK(serving_pid(port) > 0);
    const double share = cpu_share(p.pid());
    MESSAGE("manager CPU with its log file full: " << share * 100 << " %");
    CHECK(share < 0.05);
    // Said once, not once per line
    CHECK(p.count(dropped) == 1);
    CHECK(p.count(std::regex("LOG ERROR")) == 0);

    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(10s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

TEST_CASE("a log file past RLIMIT_FSIZE: the manager is not ended by SIGXFSZ, drops its lines, and counts them once it can write again")
{
    HardDeadline guard(30s);
    TempDir dir;
    const std::string log = dir / "app.log", control = dir / "control.sock";
    Process p(concat({hello_http(), "-w", "2", "-l", "127.0.0.1:0", "--log-file", log, "--control", control},
                     fast_options()));
    REQUIRE(poll_until([&] { return file_has_line(log, std::regex("all 2 workers ready")); }, in(5s)));
    const auto size = std::filesystem::file_size(log);
    REQUIRE(set_limit({}, p.pid(), "--fsize=" + std::to_string(size) + ":"));

    // Lines the manager must write: a worker killed and replaced
    const int victim = *ready_pids_in_file(log).begin();
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("Failed (write|flush) to file .*app.log: File too large; log lines are dropped"),
                                    in(5s)), p.output());
    const auto ready = [&] {
        const auto r = run({herdctl(), "--control", control, "ready"}, 5s);
        return r.status && r.status->code == 0;
    };
    CHECK(poll_until([&] { return !pid_alive(victim) && ready(); }, in(5s), 50ms));
    CHECK(pid_alive(p.pid()));
    CHECK(std::filesystem::file_size(log) == size);

    // Lifted: the next line is preceded by the count of those dropped
    REQUIRE(set_limit({}, p.pid(), "--fsize=unlimited:"));
    REQUIRE(p.signal(SIGTTIN));
    CHECK(poll_until([&] { return file_has_line(log, std::regex("received TTIN")); }, in(5s)));
    CHECK(file_has_line(log, std::regex(R"(\[warning\] \d+ log lines could not be written to .*app.log and were dropped)")));
    CHECK(!file_has_line(log, std::regex(worker_line_text(victim, "reaped"))));
    CHECK(p.count(std::regex("log lines are dropped")) == 1);
}

TEST_CASE("the manager killed with -9 under load: every worker is gone within two heartbeat intervals, and a new manager on the same pid file and address serves")
{
    HardDeadline guard(45s);
    TempDir dir;
    const std::string pid_file = dir / "app.pid";
    const auto interval = 250ms;
    const auto options = fast_options({"--heartbeat-interval", "250ms", "--heartbeat-timeout", "2s"});
    Process p(concat({hello_http(), "-w", "4", "-l", "127.0.0.1:0", "--pid-file", pid_file}, options));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 4 workers ready"), in(5s)), p.output());
    REQUIRE(poll_until([&] { return has_standby(p.pid()); }, in(5s)));

    LoadOptions lo;
    lo.port = port;
    lo.connections = 16;
    lo.duration = 20s;
    LoadClient load(lo);
    REQUIRE(load.wait_answered(500, in(10s)));
    std::vector<int> children;
    for (const auto& c : children_of(p.pid())) children.push_back(c.pid);
    REQUIRE(children.size() >= 5);   // four workers and the standby

    REQUIRE(::kill(p.pid(), SIGKILL) == 0);
    REQUIRE(p.wait_exit(in(5s)));
    const auto killed = Clock::now();
    const bool gone = poll_until([&] { return all_gone(children); }, in(2 * interval), 1ms);
    const double took = ms_since(killed);
    load.stop();
    MESSAGE("every worker gone " << took << " ms after the manager was reaped (" << load.stats().ok << " requests answered)");
    CHECK(gone);

    // A new manager on the same pid file and address
    Process again(concat({hello_http(), "-w", "4", "-l", "127.0.0.1:" + std::to_string(port), "--pid-file", pid_file}, options));
    REQUIRE_MESSAGE(again.wait_for_line(std::regex("all 4 workers ready"), in(10s)), again.output());
    CHECK(first_number(read_lines(pid_file).empty() ? "" : read_lines(pid_file).front()) == again.pid());
    CHECK(serving_pid(port) > 0);
}
