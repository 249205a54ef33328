// Rolling reload (HUP) under real load, DESIGN.md §3 and §4: the same rolling replacement as an
// upgrade, without a new binary; a changed config file applies (workers, listen), an invalid one
// changes nothing. Also: systemd's notifications around USR2 and HUP, and wrk's view of both.
#include "harness.hpp"
#include "rollout_checks.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }

// Connect to a unix stream socket and close: 0 if connected, else the errno.
int try_connect_unix(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    const int err = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
    ::close(fd);
    return err;
}

// -l 127.0.0.1:0 with fast timing and `extra` (the worker count comes from `extra` or a config file).
std::vector<std::string> server_args(const std::vector<std::string>& extra = {})
{
    return concat({"-l", "127.0.0.1:0"}, fast_options(extra));
}

// hello-http started with `--config config`, the file holding `text`, and ready with `workers`.
Process& start_configured(Deployment& d, const std::string& config, const std::string& text, unsigned workers)
{
    write_file(config, text);
    Process& p = d.start(server_args({"--config", config}));
    const std::string error = d.wait_ready(workers, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    return p;
}

std::uint64_t monotonic_usec()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000 + std::uint64_t(ts.tv_nsec) / 1000;
}

}  // namespace

TEST_CASE("HUP under load replaces every worker without one failed request")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    Process& p = d.start(server_args({"-w", "4"}));
    const std::string error = d.wait_ready(4, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    WatchedLoad load(d);
    const std::set<int> generation1 = generation_pids(p, 1);

    const std::size_t mark = p.lines().size();
    const auto sent = Clock::now();
    REQUIRE(p.signal(SIGHUP));
    const auto reloading = p.wait_for_line(lines::reloading, in(2s), mark);
    REQUIRE_MESSAGE(reloading, p.output());
    CHECK(reloading->number(1) == 2);
    CHECK(reloading->number(2) == 4);
    CHECK(reloading->number(3) == 1);
    const auto done = wait_complete(p, lines::reload_complete, mark, 2, 4);
    MESSAGE("HUP to 'complete': " << ms_since(sent) << " ms; " << done.line);
    check_replaced(p, mark, generation1, 2, 4, "reload");
    CHECK(min_serving(p, mark) >= 4);
    load.check(generation_pids(p, 2), Clock::now());
}

TEST_CASE("HUP applies a changed worker count from the config file")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    const std::string config = d.dir() / "app.conf";
    Process& p = start_configured(d, config, "workers = 2\n", 2);
    WatchedLoad load(d);
    const std::set<int> generation1 = generation_pids(p, 1);
    REQUIRE(generation1.size() == 2);

    write_file(config, "workers = 3\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto reloading = p.wait_for_line(lines::reloading, in(2s), mark);
    REQUIRE_MESSAGE(reloading, p.output());
    const auto done = wait_complete(p, lines::reload_complete, mark, 2, 3);
    check_replaced(p, mark, generation1, 2, 3, "reload");
    CHECK(min_serving(p, mark) >= 2);
    load.check(generation_pids(p, 2), Clock::now());

    // The new target holds: a TTIN counts from 3
    REQUIRE(p.signal(SIGTTIN));
    CHECK(p.wait_for_line(std::regex("received TTIN: target is now 4 workers"), in(2s), done.index));
}

TEST_CASE("HUP with an invalid config file keeps the running configuration and workers")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    const std::string config = d.dir() / "app.conf";
    Process& p = start_configured(d, config, "workers = 3\n", 3);
    WatchedLoad load(d);
    const std::set<int> generation1 = generation_pids(p, 1);

    write_file(config, "workers = abc\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto invalid = p.wait_for_line(lines::config_invalid, in(2s), mark);
    REQUIRE_MESSAGE(invalid, p.output());
    MESSAGE(invalid->line);
    CHECK_MESSAGE(std::regex_search(invalid->groups[1], std::regex("'abc'.*workers")), "the message names neither the value nor the option");
    // Nothing else happens
    const auto since = Clock::now();
    CHECK(load.client.wait_answered(300, in(5s)));
    CHECK(p.count(lines::reloading, mark) == 0);
    CHECK(p.count(lines::spawned, mark) == 0);
    CHECK(p.count(lines::reaped, mark) == 0);
    CHECK(ready_pids(p) == generation1);
    load.check(generation1, since);

    // Fixed, it reloads: the failed attempt left nothing half done
    write_file(config, "workers = 3\n");
    const std::size_t mark2 = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    wait_complete(p, lines::reload_complete, mark2, 2, 3);
    check_replaced(p, mark2, generation1, 2, 3, "reload");
}

TEST_CASE("HUP with a changed listen address in the config file serves the new address and closes the old one")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    const std::string config = d.dir() / "app.conf";
    const std::string socket = d.dir() / "new.sock";
    write_file(config, "workers = 2\nlisten = 127.0.0.1:0\n");
    Process& p = d.start(concat({"--config", config}, fast_options()));
    const std::string error = d.wait_ready(2, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    const int old_port = d.port();
    REQUIRE(http_get("127.0.0.1", old_port, "/pid", 2s).ok());
    const std::set<int> generation1 = generation_pids(p, 1);

    write_file(config, "workers = 2\nlisten = unix:" + socket + "\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    // Bound before any new worker needs it
    const auto listening = p.wait_for_line(lines::listening, in(2s), mark);
    REQUIRE_MESSAGE(listening, p.output());
    CHECK(listening->groups[1] == "unix:" + socket);
    const auto reloading = p.wait_for_line(lines::reloading, in(2s), mark);
    REQUIRE_MESSAGE(reloading, p.output());
    CHECK(listening->index < reloading->index);
    const auto done = p.wait_for_line(lines::reload_complete, in(10s), mark);
    REQUIRE_MESSAGE(done, p.output());
    check_replaced(p, mark, generation1, 2, 2, "reload");

    // The new address serves generation 2; the old one refuses
    const std::set<int> generation2 = generation_pids(p, 2);
    for (int i = 0; i < 4; ++i) {
        const auto r = http_get_unix(socket, "/pid", 2s);
        CHECK_MESSAGE(r.ok(), "on the new address: " << r.error << " status " << r.status);
        CHECK(generation2.count(static_cast<int>(first_number(r.body))) == 1);
    }
    int err = 0;
    CHECK_MESSAGE(poll_until([&] { return (err = try_connect("127.0.0.1", old_port, 200ms)) == ECONNREFUSED; }, in(300ms)),
                  "connecting to the old address after the reload: " << (err ? std::strerror(err) : "connected"));
}

TEST_CASE("HUP with a listen address that cannot be bound is refused, and the running configuration serves on")
{
    HardDeadline guard(30s);
    LoopbackListener taken;
    const std::string address = "127.0.0.1:" + std::to_string(taken.port);
    Deployment d(hello_http());
    const std::string config = d.dir() / "app.conf";
    write_file(config, "workers = 2\nlisten = 127.0.0.1:0\n");
    Process& p = d.start(concat({"--config", config}, fast_options()));
    const std::string error = d.wait_ready(2, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    WatchedLoad load(d);
    const std::set<int> generation1 = generation_pids(p, 1);

    write_file(config, "workers = 3\nlisten = " + address + "\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto refused = p.wait_for_line(
        std::regex("received HUP: cannot bind " + address + ": Address already in use; keeping the running configuration$"),
        in(2s), mark);
    REQUIRE_MESSAGE(refused, p.output());
    // Nothing else happens: no new listener, no new worker, generation 1 serves on the old address
    const auto since = Clock::now();
    CHECK(load.client.wait_answered(300, in(5s)));
    CHECK(p.count(lines::listening, mark) == 0);
    CHECK(p.count(lines::reloading, mark) == 0);
    CHECK(p.count(lines::spawned, mark) == 0);
    CHECK(p.count(lines::reaped, mark) == 0);
    CHECK(ready_pids(p) == generation1);
    load.check(generation1, since);
    // The refused file's worker count did not apply either: TTIN counts from 2
    REQUIRE(p.signal(SIGTTIN));
    CHECK_MESSAGE(p.wait_for_line(std::regex("received TTIN: target is now 3 workers"), in(2s), mark), p.output());
}

TEST_CASE("HUP whose new generation fails restores the previous options and listeners")
{
    HardDeadline guard(30s);
    Deployment d(test_worker());
    const std::string config = d.dir() / "app.conf";
    const std::string socket = d.dir() / "new.sock";
    write_file(config, "workers = 2\nlisten = 127.0.0.1:0\n");
    Process& p = d.start(concat({"--config", config}, fast_options({"--restart-limit", "3/10s"})));
    const std::string error = d.wait_ready(2, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    const int old_port = d.port();
    const std::set<int> generation1 = generation_pids(p, 1);

    // Three workers on a new address, each crashing at boot
    write_file(config, "workers = 3\nlisten = unix:" + socket + "\nmode = crash-at-boot\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto listening = p.wait_for_line(lines::listening, in(2s), mark);
    REQUIRE_MESSAGE(listening, p.output());
    CHECK(listening->groups[1] == "unix:" + socket);
    REQUIRE_MESSAGE(p.wait_for_line(lines::reloading, in(2s), mark), p.output());
    const auto failed = p.wait_for_line(std::regex("reload to generation 2 failed: (.+); generation 1 keeps serving$"), in(10s), mark);
    REQUIRE_MESSAGE(failed, p.output());
    MESSAGE(failed->line);

    // The listeners are generation 1's again: the old address accepts, the new one is closed
    CHECK(try_connect("127.0.0.1", old_port, 1s) == 0);
    int err = 0;
    CHECK_MESSAGE(poll_until([&] { return (err = try_connect_unix(socket)) != 0; }, in(2s)),
                  "the new address " << socket << " still accepts after the failed reload");
    CHECK(ready_pids(p) == generation1);
    for (int pid : generation1) CHECK(pid_alive(pid));

    // And so are the options, though the file still says otherwise: the target is 2 again (TTIN
    // makes it 3), and the new worker runs without crash-at-boot
    const std::size_t mark2 = p.lines().size();
    REQUIRE(p.signal(SIGTTIN));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("received TTIN: target is now 3 workers"), in(2s), mark2), p.output());
    const auto ready = p.wait_for_line(lines::ready, in(5s), mark2);
    REQUIRE_MESSAGE(ready, p.output());
    // (a worker of the failed generation may still be reaped now; none spawned since crashed)
    const auto since = p.matches(lines::spawned, mark2);
    REQUIRE(!since.empty());
    CHECK(since.front().number(1) == ready->number(1));
    for (const auto& [pid, why] : reaped_pids(p, mark2))
        CHECK_MESSAGE(std::none_of(since.begin(), since.end(), [&](const Match& m) { return m.number(1) == pid; }),
                      "worker " << pid << " spawned after the failed reload was reaped: " << why << "\n" << p.output());
    CHECK(ready_pids(p).size() == 3);
}

TEST_CASE("HUP and USR2 during a reload are ignored with a log line")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    Process& p = d.start(server_args({"-w", "2", "--graceful-timeout", "10s"}));
    const std::string error = d.wait_ready(2, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    // Old workers drain slowly: requests of 1.5 s are in flight when the reload starts
    InFlight slow(d.port(), "/sleep?ms=1500", 4, 10s);
    REQUIRE(slow.all_sent(in(2s)));

    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto reloading = p.wait_for_line(lines::reloading, in(2s), mark);
    REQUIRE_MESSAGE(reloading, p.output());
    REQUIRE(p.signal(SIGHUP));
    const auto ignored1 = p.wait_for_line(lines::in_progress, in(3s), reloading->index);
    REQUIRE_MESSAGE(ignored1, p.output());
    CHECK(ignored1->line.find("received HUP: a reload is in progress, ignored") != std::string::npos);
    REQUIRE(p.signal(SIGUSR2));
    const auto ignored2 = p.wait_for_line(lines::in_progress, in(3s), ignored1->index + 1);
    REQUIRE_MESSAGE(ignored2, p.output());
    CHECK(ignored2->line.find("received USR2: a reload is in progress, ignored") != std::string::npos);
    const auto done = wait_complete(p, lines::reload_complete, mark, 2, 2);
    CHECK_MESSAGE(done.index > ignored2->index, "the reload completed before the signals were ignored");

    // One reload, one new generation, no upgrade
    CHECK(p.count(lines::reloading, mark) == 1);
    CHECK(p.count(lines::upgrading, mark) == 0);
    CHECK(p.count(std::regex(R"(\(generation [3-9]\))"), mark) == 0);
    for (const auto& r : slow.results()) CHECK_MESSAGE(r.status == 200, "slow request: status " << r.status << " " << r.error);
}

TEST_CASE("systemd hears READY, RELOADING with MONOTONIC_USEC around USR2 and HUP, and STOPPING on QUIT")
{
    HardDeadline guard(30s);
    Deployment d(hello_http());
    NotifySocket notify(d.dir() / "notify.sock");
    Process& p = d.start(server_args({"-w", "2"}), {"NOTIFY_SOCKET=" + notify.path()});
    const std::string error = d.wait_ready(2, in(5s));
    REQUIRE_MESSAGE(error.empty(), error);
    std::vector<std::string> seen;
    auto all_seen = [&] {
        std::string text;
        for (const auto& m : seen) text += "[" + m + "] ";
        return text;
    };
    REQUIRE_MESSAGE(notify.wait_for("READY=1", in(3s), seen), all_seen());

    // USR2 and HUP: RELOADING=1 with the time, then READY=1 once the roll is done. A request of
    // 800 ms in flight keeps the old generation draining, so a READY=1 sent too early shows.
    auto check_reload = [&](int sig, const std::regex& complete) {
        seen.clear();
        std::atomic<bool> sent{false};
        HttpResult slow;
        std::thread client([&] { slow = http_get("127.0.0.1", d.port(), "/sleep?ms=800", 5s, [&] { sent = true; }); });
        struct Join {
            std::thread& t;
            ~Join()
            {
                if (t.joinable()) t.join();
            }
        } join{client};
        REQUIRE(poll_until([&] { return sent.load(); }, in(2s)));
        const std::size_t mark = p.lines().size();
        const std::uint64_t before = monotonic_usec();
        REQUIRE(p.signal(sig));
        const auto reloading = notify.wait_for("RELOADING=1", in(5s), seen);
        REQUIRE_MESSAGE(reloading, all_seen());
        const std::uint64_t after = monotonic_usec();
        std::smatch m;
        REQUIRE_MESSAGE(std::regex_search(*reloading, m, std::regex(R"((?:^|\n)MONOTONIC_USEC=(\d+)(?:\n|$))")), *reloading);
        const std::uint64_t usec = std::stoull(m[1].str());
        CHECK(usec >= before);
        CHECK(usec <= after);
        const auto ready = notify.wait_for("READY=1", in(10s), seen);
        REQUIRE_MESSAGE(ready, all_seen());
        // READY=1 only once the roll is done: its line was written before the datagram was sent.
        CHECK_MESSAGE(p.count(complete, mark) == 1, "READY=1 before the roll completed; datagrams: " << all_seen() << "\n" << p.output());
        // The roll ends before the next signal, or that one would be ignored
        REQUIRE_MESSAGE(p.wait_for_line(complete, in(5s), mark), p.output());
        client.join();
        CHECK(slow.status == 200);
    };
    deploy(hello_http(), d.app());
    check_reload(SIGUSR2, lines::upgrade_complete);
    check_reload(SIGHUP, lines::reload_complete);

    seen.clear();
    REQUIRE(p.signal(SIGQUIT));
    CHECK_MESSAGE(notify.wait_for("STOPPING=1", in(3s), seen), all_seen());
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
}

namespace {

// wrk (64 connections, back to back) against hello-http while `sig` rolls every worker: no socket
// error, no error response, the rollout complete with every old worker retired for it.
void wrk_through(int sig, const std::string& kind)
{
    const std::string wrk = binary("WRK", "/usr/bin/wrk");
    if (::access(wrk.c_str(), X_OK) != 0) HERD_SKIP("wrk not found at " + wrk);
    HardDeadline guard(30s);
    Deployment d(hello_http());
    const std::string config = d.dir() / "app.conf";
    Process& p = start_configured(d, config, "workers = 4\n", 4);
    const std::set<int> generation1 = generation_pids(p, 1);

    // wrk's output is a pipe, written at its end: its 64 sockets show when its load is on.
    // One thread: wrk sends back to back, and must leave the other core to the server.
    Process w({wrk, "-t1", "-c64", "-d3s", "http://127.0.0.1:" + std::to_string(d.port()) + "/"});
    REQUIRE_MESSAGE(poll_until([&] { return open_sockets(w.pid()) >= 64; }, in(3s)),
                    "wrk has " << open_sockets(w.pid()) << " sockets open:\n" << w.output());
    // And a few of our own connections, that must not fail either.
    LoadClient probe(LoadOptions{.port = d.port(), .connections = 2, .duration = 10s});
    REQUIRE(probe.wait_answered(100, in(3s)));

    if (sig == SIGUSR2) deploy(hello_http(), d.app());
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(sig));
    wait_complete(p, sig == SIGUSR2 ? lines::upgrade_complete : lines::reload_complete, mark, 2, 4);
    check_replaced(p, mark, generation1, 2, 4, kind);
    CHECK_MESSAGE(!w.status(), "wrk ended before the " << kind << " completed: raise -d");

    const auto status = w.wait_exit(in(10s));
    REQUIRE_MESSAGE(status, w.output());
    probe.stop();
    MESSAGE("wrk:\n" << w.output());
    CHECK(status->code == 0);
    const WrkResult r = parse_wrk(w.lines());
    REQUIRE_MESSAGE(r.parsed, w.output());
    CHECK(r.requests > 1000);
    CHECK(r.connect_errors == 0);
    CHECK(r.read_errors == 0);
    CHECK(r.write_errors == 0);
    CHECK(r.timeouts == 0);
    CHECK(r.non_2xx == 0);
    CHECK_MESSAGE(probe.stats().failed() == 0, probe.stats().describe());
}

}  // namespace

TEST_CASE("wrk -c64 sees no socket error and no error response during USR2")
{
    wrk_through(SIGUSR2, "upgrade");
}

TEST_CASE("wrk -c64 sees no socket error and no error response during HUP")
{
    wrk_through(SIGHUP, "reload");
}
