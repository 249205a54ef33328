// hello-http serves from a pool of workers: pids, replacement, listeners, recycling, and what
// survives a dead manager.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string test_worker() { return binary("TEST_WORKER"); }

// hello-http on 127.0.0.1:0 with `workers`, fast timing and `extra`; waits until all are ready.
struct Server {
    Process p;
    int port = -1;

    Server(unsigned workers, std::vector<std::string> extra = {})
        : p(concat({hello_http(), "-w", std::to_string(workers), "-l", "127.0.0.1:0"}, fast_options(extra)))
    {
        port = wait_for_port(p, in(5s));
        REQUIRE_MESSAGE(port > 0, "no listening line from: " << p.command() << "\n" << p.output());
        const auto all = p.wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), in(5s));
        REQUIRE_MESSAGE(all, "pool never ready:\n" << p.output());
    }

    HttpResult get(const std::string& path, milliseconds timeout = 2s) { return http_get("127.0.0.1", port, path, timeout); }
};

// The pid a /pid request was answered by, or -1.
int served_pid(const HttpResult& r)
{
    if (!r.ok()) return -1;
    return static_cast<int>(first_number(r.body));
}

}  // namespace

TEST_CASE("N workers come up and each answers /pid with its own pid")
{
    HardDeadline guard(20s);
    Server s(4);
    const std::set<int> ready = ready_pids(s.p);
    CHECK(ready.size() == 4);
    CHECK(s.p.count(lines::spawned) == 4);
    const auto started = s.p.matches(lines::started);
    REQUIRE(started.size() == 1);
    CHECK(started[0].number(1) == s.p.pid());
    CHECK(started[0].number(2) == 4);

    // Several connections at once, until every worker has answered (or 3 s passed).
    std::set<int> seen;
    const auto deadline = in(3s);
    while (seen.size() < 4 && Clock::now() < deadline) {
        std::vector<std::thread> clients;
        std::vector<int> pids(8, -1);
        for (std::size_t i = 0; i < pids.size(); ++i)
            clients.emplace_back([&, i] { pids[i] = served_pid(s.get("/pid")); });
        for (auto& t : clients) t.join();
        for (int pid : pids) {
            CHECK_MESSAGE(pid > 0, "a /pid request failed");
            if (pid > 0) {
                CHECK_MESSAGE(ready.count(pid) == 1, "/pid answered " << pid << ", not a ready worker");
                seen.insert(pid);
            }
        }
    }
    MESSAGE("distinct worker pids seen over /pid: " << seen.size() << " of 4");
    CHECK(seen.size() >= 2);
    CHECK(seen.count(s.p.pid()) == 0);
}

TEST_CASE("a worker killed with SIGKILL is reaped as crashed and replaced in its slot")
{
    HardDeadline guard(20s);
    Server s(4);
    const int victim = served_pid(s.get("/pid"));
    REQUIRE(victim > 0);
    const auto ready_line = s.p.wait_for_line(worker_line(victim, R"(ready in slot (\d+))"), in(1s));
    REQUIRE(ready_line);
    const int slot = ready_line->number(1);
    const std::size_t mark = s.p.lines().size();

    REQUIRE(::kill(victim, SIGKILL) == 0);
    const auto reaped = s.p.wait_for_line(worker_line(victim, "reaped: (.+), slot (\\d+)"), in(3s), mark);
    REQUIRE_MESSAGE(reaped, s.p.output());
    CHECK(reaped->groups[1] == "crashed (signal 9)");
    CHECK(reaped->number(2) == slot);

    const auto respawn = s.p.wait_for_line(lines::spawned, in(3s), reaped->index);
    REQUIRE_MESSAGE(respawn, s.p.output());
    CHECK(respawn->number(2) == slot);
    const int replacement = respawn->number(1);
    CHECK(replacement != victim);
    CHECK(s.p.wait_for_line(worker_line(replacement, "ready in slot " + std::to_string(slot)), in(3s), respawn->index));
    CHECK(s.p.wait_for_line(std::regex("all 4 workers ready"), in(3s), reaped->index));
    CHECK(ready_pids(s.p).size() == 4);
    CHECK(ready_pids(s.p).count(victim) == 0);
    CHECK(s.get("/pid").ok());
}

TEST_CASE("workers exit within two heartbeat intervals of the manager's SIGKILL")
{
    HardDeadline guard(20s);
    Process p({test_worker(), "-w", "3", "--heartbeat-interval", "250ms", "--heartbeat-timeout", "2s"});
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(5s)), p.output());
    const std::vector<int> workers = spawned_pids(p);
    REQUIRE(workers.size() == 3);
    for (int pid : workers) REQUIRE(pid_alive(pid));

    const auto killed_at = Clock::now();
    REQUIRE(p.signal(SIGKILL));
    const bool gone = poll_until([&] { return all_gone(workers); }, killed_at + 500ms, 2ms);
    MESSAGE("workers gone " << ms_since(killed_at) << " ms after the manager was killed");
    CHECK_MESSAGE(gone, "workers still running 500 ms (2 heartbeat intervals) after the manager died");
    const auto st = p.wait_exit(in(1s));
    REQUIRE(st);
    CHECK(st->signal == SIGKILL);
}

namespace {

// Generation of every worker, from the spawned lines.
std::map<int, int> generations(Process& p)
{
    std::map<int, int> g;
    for (const auto& m : p.matches(lines::spawned)) g[m.number(1)] = m.number(3);
    return g;
}

// After HUP or USR2 (`name`): either the contract's "not available yet" line, and nothing changes,
// or (DESIGN.md §3, §4) a rolling replacement by a new generation that completes, with the same
// manager pid and the pool at its target, every ready worker of the new generation.
void check_reload(Server& s, int sig, const std::string& name, const std::string& complete)
{
    const std::size_t mark = s.p.lines().size();
    const auto before = ready_pids(s.p);
    REQUIRE(s.p.signal(sig));
    const auto received = s.p.wait_for_line(std::regex("received " + name + ": (.+)$"), in(2s), mark);
    REQUIRE_MESSAGE(received, s.p.output());
    const auto done = s.p.wait_for_line(std::regex(complete + R"( to generation (\d+) complete)"), in(10s), mark);
    REQUIRE_MESSAGE(done, s.p.output());
    const int generation = done->number(1);
    CHECK(pid_alive(s.p.pid()));
    CHECK_FALSE(s.p.status());
    // Old workers drain and are reaped; the pool is the new generation only
    CHECK(poll_until([&] { return ready_pids(s.p).size() == 2; }, in(5s)));
    auto gens = generations(s.p);
    for (int pid : ready_pids(s.p)) CHECK_MESSAGE(gens[pid] == generation, "worker " << pid << " of generation " << gens[pid]);
    for (int pid : before) CHECK(poll_until([&] { return !pid_alive(pid); }, in(5s)));
    CHECK(s.p.count(std::regex("reaped: crashed"), mark) == 0);
}

}  // namespace

TEST_CASE("HUP and USR2 never interrupt service and keep the manager's pid")
{
    HardDeadline guard(40s);
    Server s(2);

    // A client keeps asking while the signals are handled: not one request may fail.
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::vector<std::string> failures;
    std::thread client([&] {
        while (!stop) {
            const auto r = s.get("/pid", 2s);
            if (r.ok()) ++answered;
            else failures.push_back(r.error.empty() ? "status " + std::to_string(r.status) : r.error);
        }
    });
    struct Stop {
        std::atomic<bool>& stop;
        std::thread& t;
        ~Stop()
        {
            stop = true;
            if (t.joinable()) t.join();
        }
    } stopper{stop, client};

    check_reload(s, SIGHUP, "HUP", "reload");
    check_reload(s, SIGUSR2, "USR2", "upgrade");
    const int before_stop = answered.load();
    CHECK(poll_until([&] { return answered.load() > before_stop + 5; }, in(2s)));

    stop = true;
    client.join();
    MESSAGE(answered.load() << " requests answered during HUP and USR2");
    CHECK(answered.load() > 0);
    CHECK_MESSAGE(failures.empty(), failures.size() << " failed requests, first: " << (failures.empty() ? "" : failures[0]));
    CHECK(pid_alive(s.p.pid()));
}

TEST_CASE("hello-http serves on a unix socket")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string sock = dir / "hello.sock";
    Process p(concat({hello_http(), "-w", "2", "-l", "unix:" + sock}, fast_options()));
    const auto listening = p.wait_for_line(lines::listening, in(5s));
    REQUIRE_MESSAGE(listening, p.output());
    CHECK(listening->groups[1] == "unix:" + sock);
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    for (int i = 0; i < 3; ++i) {
        const auto r = http_get_unix(sock, "/pid", 2s);
        CHECK_MESSAGE(r.ok(), r.error << " status " << r.status);
        CHECK(ready_pids(p).count(static_cast<int>(first_number(r.body))) == 1);
    }
}

TEST_CASE("the worker README shows serves a TCP and a unix listener, and stops gracefully on QUIT")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string sock = dir / "readme.sock";
    Process p(concat({binary("README_WORKER"), "-w", "2", "-l", "127.0.0.1:0", "-l", "unix:" + sock}, fast_options()));
    const int port = wait_for_port(p, in(5s));
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    for (int i = 0; i < 3; ++i) {
        const auto tcp = http_get("127.0.0.1", port, "/", 2s);
        CHECK_MESSAGE(tcp.ok(), tcp.error << " status " << tcp.status);
        CHECK(tcp.body == "hello\n");
        const auto local = http_get_unix(sock, "/", 2s);
        CHECK_MESSAGE(local.ok(), local.error << " status " << local.status);
        CHECK(local.body == "hello\n");
    }
    REQUIRE(p.signal(SIGQUIT));
    const auto status = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(status, p.output());
    CHECK(status->code == 0);
    CHECK(p.count(lines::graceful_kill) == 0);
}

TEST_CASE("hello-http serves on [::1]:0")
{
    HardDeadline guard(20s);
    Process p(concat({hello_http(), "-w", "2", "-l", "[::1]:0"}, fast_options()));
    const int port = wait_for_port(p, in(5s), "[::1]");
    REQUIRE_MESSAGE(port > 0, p.output());
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    for (int i = 0; i < 3; ++i) {
        const auto r = http_get("::1", port, "/pid", 2s);
        CHECK_MESSAGE(r.ok(), r.error << " status " << r.status);
    }
}

TEST_CASE("a worker that served --max-requests is retired and replaced")
{
    HardDeadline guard(20s);
    Server s(1, {"--max-requests", "5"});
    const int first = *ready_pids(s.p).begin();

    // Enough requests to pass the limit; the manager learns the count from heartbeats.
    int answered = 0;
    for (int i = 0; i < 8; ++i) answered += s.get("/pid").ok() ? 1 : 0;
    CHECK(answered >= 5);
    // The line names the count behind the decision: at least the limit.
    const auto retiring = s.p.wait_for_line(worker_line(first, R"(retiring: max requests \((\d+)\))"), in(3s));
    REQUIRE_MESSAGE(retiring, s.p.output());
    CHECK(retiring->number(1) >= 5);
    CHECK(retiring->number(1) <= answered);
    const auto reaped = s.p.wait_for_line(worker_line(first, R"(reaped: retired \(max requests\))"), in(4s));
    CHECK_MESSAGE(reaped, s.p.output());
    CHECK(poll_until([&] { return ready_pids(s.p).size() == 1 && ready_pids(s.p).count(first) == 0; }, in(3s)));
    CHECK(s.get("/pid").ok());
}

TEST_CASE("a pool that had ready workers backs off on crashes and keeps serving")
{
    HardDeadline guard(30s);
    Server s(3, {"--restart-limit", "2/10s"});
    const int slot0_worker = [&] {
        for (const auto& m : s.p.matches(lines::ready))
            if (m.number(2) == 0) return m.number(1);
        return -1;
    }();
    REQUIRE(slot0_worker > 0);

    // Kill whatever runs in slot 0 until the manager backs off
    int victim = slot0_worker;
    std::optional<Match> backing_off;
    for (int kills = 0; kills < 6 && !backing_off; ++kills) {
        const std::size_t mark = s.p.lines().size();
        REQUIRE(::kill(victim, SIGKILL) == 0);
        REQUIRE_MESSAGE(s.p.wait_for_line(worker_line(victim, "reaped: crashed \\(signal 9\\)"), in(3s), mark), s.p.output());
        backing_off = s.p.wait_for_line(lines::backing_off, in(200ms), mark);
        if (backing_off) break;
        const auto next = s.p.wait_for_line(std::regex(R"(worker (\d+) ready in slot 0)"), in(3s), mark);
        REQUIRE_MESSAGE(next, s.p.output());
        victim = next->number(1);
    }
    REQUIRE_MESSAGE(backing_off, "no backing off line after repeated crashes:\n" << s.p.output());
    CHECK(backing_off->number(3) == 2);
    CHECK(backing_off->number(1) > 2);
    const double delay_ms = parse_duration_ms(backing_off->groups[4]);
    CHECK(delay_ms > 0);

    // The other two workers keep serving while the manager backs off
    for (int i = 0; i < 5; ++i) CHECK(s.get("/pid").ok());
    CHECK(pid_alive(s.p.pid()));

    // After the delay the slot is filled again; the manager never gives up
    const auto refilled = s.p.wait_for_line(std::regex("all 3 workers ready"), in(milliseconds(static_cast<long>(delay_ms)) + 5s),
                                            backing_off->index);
    CHECK_MESSAGE(refilled, s.p.output());
    CHECK(s.p.count(lines::giving_up) == 0);
    CHECK_FALSE(s.p.wait_exit(in(100ms)));
}
