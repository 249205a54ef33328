// Several pools in one manager (DESIGN.md §7a) on real processes: restart plans (a delayed
// restart, a held slot, a failed pool), herdctl's pool commands, and USR2 of a server binary
// running three pools under wrk's load.
#include "pools_tree.hpp"
#include "rollout_checks.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

// The spawn in `pool` at index >= from, waited for.
Match wait_spawn(Tree& t, const std::string& pool, std::size_t from, Deadline deadline)
{
    const auto m = t.log().wait_for_line(pool_line(pool, "spawned in slot"), deadline, from);
    REQUIRE_MESSAGE(m, "no worker of pool " << pool << " spawned:\n" << t.log().output());
    return *m;
}

// herdctl ARGS succeeds; its output.
std::string ctl_ok(Tree& t, const std::vector<std::string>& args)
{
    const RunResult r = t.ctl(args);
    INFO("herdctl " << args.front() << ": " << r.output());
    REQUIRE(r.status);
    CHECK(r.status->code == 0);
    return r.output();
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A worker's command line as ps shows it.
std::string title(int pid)
{
    const RunResult r = run({"/bin/ps", "-o", "args=", "-p", std::to_string(pid)}, 3s);
    return r.lines.empty() ? std::string() : r.lines.front();
}

}  // namespace

TEST_CASE("plan restart, restart 500ms, wait: now, no earlier than 500 ms, then held until herdctl restart")
{
    HardDeadline guard(25s);
    Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n"
               "[pool.b]\ncommand = /bin/sleep 1000\nworkers = 1\nplan = restart, restart 500ms, wait\n");
    t.wait_ready(2);
    Process& p = t.log();
    INFO(p.output());

    std::size_t mark = p.lines().size();
    t.kill_one("b");
    wait_spawn(t, "b", mark, in(3s));
    REQUIRE(t.settles("b", 1, in(3s)));

    mark = p.lines().size();
    const Match exit2 = t.kill_one("b");
    const Match refill2 = wait_spawn(t, "b", mark, in(3s));
    CHECK(logged_ms(refill2.line) - logged_ms(exit2.line) >= 500);
    REQUIRE(t.settles("b", 1, in(3s)));

    mark = p.lines().size();
    t.kill_one("b");
    CHECK_FALSE(poll_until([&] { return t.spawns("b", mark) > 0; }, in(800ms), 20ms));
    const std::string held = t.status();
    CHECK(has(held, "pool b: running, 0 of 1 worker ready"));
    CHECK(has(held, "held until herdctl restart b"));
    CHECK(t.pids("a").size() == 1);

    mark = p.lines().size();
    CHECK(has(ctl_ok(t, {"restart", "b"}), "restarted b"));
    CHECK(t.spawns("b", mark) == 1);
    CHECK(t.ready("b").size() == 1);
    CHECK(t.spawns("a", mark) == 0);
}

TEST_CASE("USR2 replaces the workers of a pool whose plan holds a slot: the upgrade completes, the slot stays held")
{
    HardDeadline guard(25s);
    Tree t("upgrade-timeout = 5s\n", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n"
                                      "[pool.b]\ncommand = /bin/sleep 1000\nworkers = 2\nplan = wait\n");
    t.wait_ready(2);
    Process& p = t.log();
    INFO(p.output());
    t.kill_one("b");
    REQUIRE(poll_until([&] { return has(t.status(), "1 slot held until herdctl restart b"); }, in(3s), 50ms));

    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    for (const char* name : {"a", "b"})
        CHECK(p.wait_for_line(std::regex(std::string("pool ") + name + ": upgrade to generation 2 complete"), in(8s), mark));
    CHECK(p.count(lines::upgrade_going_back, mark) == 0);
    CHECK(t.pids("b").size() == 1);
    for (int pid : t.pids("b")) CHECK(worker_generations(p).at(pid) == 2);
    const std::string status = t.status();
    CHECK(has(status, "pool b: running, 1 of 2 workers ready"));
    CHECK(has(status, "1 slot held until herdctl restart b"));

    CHECK(has(ctl_ok(t, {"restart", "b"}), "restarted b"));
    CHECK(t.ready("b").size() == 2);
}

TEST_CASE("a failed pool stops every pool, the last first, and the manager exits 3 naming it")
{
    for (const std::string plan :
         {"plan = stop\n", "plan = restart\nplan-count = 1\n", "on-restart-limit = stop\nrestart-limit = 1/10s\n"}) {
        CAPTURE(plan);
        HardDeadline guard(20s);
        Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n"
                   "[pool.b]\ncommand = /bin/sleep 1000\nworkers = 2\n" + plan +
                   "[pool.c]\ncommand = /bin/sleep 1000\nworkers = 1\n");
        t.wait_ready(3);
        Process& p = t.log();
        if (has(plan, "plan-count") || has(plan, "on-restart-limit")) {   // the first crash is refilled
            const std::size_t mark = p.lines().size();
            t.kill_one("b");
            wait_spawn(t, "b", mark, in(3s));
            REQUIRE(t.settles("b", 2, in(3s)));
        }
        const std::size_t mark = p.lines().size();
        REQUIRE(::kill(*t.ready("b").begin(), SIGKILL) == 0);
        const auto status = p.wait_exit(in(10s));
        INFO(p.output());
        REQUIRE(status);
        CHECK(status->code == 3);
        const auto giving_up = p.matches(std::regex("giving up: pool b failed: (.+)$"), mark);
        CHECK(giving_up.size() == 1);
        CHECK(p.count(std::regex("giving up")) == 1);
        // A failed pool keeps its stage (no "stopped" line): its reaps tell the order
        const auto reaps = [&](const char* name) { return p.matches(pool_line(name, "reaped: stopped"), mark); };
        const auto c = reaps("c"), b = reaps("b"), a = reaps("a");
        REQUIRE((c.size() == 1 && b.size() == 1 && a.size() == 1));
        CHECK(c[0].index < b[0].index);
        CHECK(b[0].index < a[0].index);
        CHECK(p.count(pool_line("b", "spawned"), mark) == 0);
        CHECK(p.count(std::regex("exiting with code 3")) == 1);
    }
}

TEST_CASE("herdctl plan POOL changes the plan at run time: status shows it, the next exits follow it")
{
    HardDeadline guard(20s);
    Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n[pool.b]\ncommand = /bin/sleep 1000\nworkers = 1\n");
    t.wait_ready(2);
    Process& p = t.log();
    INFO(p.output());
    CHECK(has(ctl_ok(t, {"plan", "b"}), "b: permanent"));
    CHECK(has(ctl_ok(t, {"plan", "b", "restart 1s, wait"}), "plan \"restart 1s, wait\""));
    CHECK(has(t.status(), "pool b: running, 1 of 1 worker ready, permanent, plan \"restart 1s, wait\""));

    std::size_t mark = p.lines().size();
    const Match exit1 = t.kill_one("b");
    const Match refill = wait_spawn(t, "b", mark, in(4s));
    CHECK(logged_ms(refill.line) - logged_ms(exit1.line) >= 1000);
    REQUIRE(t.settles("b", 1, in(3s)));

    mark = p.lines().size();
    t.kill_one("b");
    CHECK_FALSE(poll_until([&] { return t.spawns("b", mark) > 0; }, in(1500ms), 20ms));
    CHECK(has(t.status(), "held until herdctl restart b"));
}

TEST_CASE("herdctl scale, stop and start POOL answer when done and leave the other pools alone")
{
    HardDeadline guard(25s);
    Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n[pool.b]\ncommand = /bin/sleep 1000\nworkers = 1\n"
               "[pool.c]\ncommand = /bin/sleep 1000\nworkers = 1\n");
    t.wait_ready(3);
    Process& p = t.log();
    INFO(p.output());
    const auto a = t.pids("a"), c = t.pids("c");

    ctl_ok(t, {"scale", "b", "3"});
    CHECK(t.ready("b").size() == 3);
    CHECK(has(t.status(), "pool b: running, 3 of 3 workers ready"));

    const auto b = t.pids("b");
    const std::size_t stop_mark = p.lines().size();
    ctl_ok(t, {"stop", "b"});
    // Readiness counts the pools that serve and their workers, not the stopped one's
    CHECK(p.wait_for_line(std::regex(R"(all 2 pools ready: 2 workers \(1 stopped\)$)"), in(2s), stop_mark));
    CHECK(p.count(std::regex("all 3 pools ready"), stop_mark) == 0);
    CHECK(all_gone(std::vector<int>(b.begin(), b.end())));
    CHECK(t.pids("b").empty());
    CHECK(p.count(std::regex("pool b stopped")) == 1);
    CHECK(has(t.status(), "pool b: stopped"));

    const std::size_t mark = p.lines().size();
    ctl_ok(t, {"start", "b"});
    CHECK(t.spawns("b", mark) == 3);
    CHECK(t.ready("b").size() == 3);

    CHECK(t.pids("a") == a);
    CHECK(t.pids("c") == c);
    CHECK(t.spawns("a", 0) == 1);
    CHECK(t.spawns("c", 0) == 1);
}

TEST_CASE("USR2 with three pools under wrk: no error, same manager, every pool a new generation, plans kept")
{
    const std::string wrk = binary("WRK", "/usr/bin/wrk");
    if (::access(wrk.c_str(), X_OK) != 0) HERD_SKIP("wrk not found at " + wrk);
    HardDeadline guard(40s);
    Tree t(binary("HELLO_HTTP"),
           "name = hello\nheartbeat-interval = 100ms\nheartbeat-timeout = 2s\njob-interval = 100ms\n",
           "[pool.web]\nworker = web\nworkers = 2\nlisten = 127.0.0.1:0\n"
           "[pool.jobs]\nworker = jobs\nworkers = 1\nrestart = transient\nplan = restart, restart 5s, wait\n"
           "[pool.tick]\ncommand = /bin/sleep 1000\nworkers = 1\nheartbeat = off\nready-after = 150ms\n",
           false);
    Process& p = t.log();
    const int port = wait_for_port(p, in(8s));
    REQUIRE_MESSAGE(port > 0, p.output());
    t.wait_ready(3);
    INFO(p.output());
    for (int pid : t.ready("web")) CHECK(std::regex_search(title(pid), std::regex(R"(^hello: web\[[01]\] gen 1$)")));
    for (int pid : t.ready("jobs")) CHECK(title(pid) == "hello: jobs[0] gen 1");

    Process w({wrk, "-t1", "-c16", "-d4s", "http://127.0.0.1:" + std::to_string(port) + "/"});
    REQUIRE_MESSAGE(poll_until([&] { return open_sockets(w.pid()) >= 16; }, in(3s)), w.output());
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGUSR2));
    // Pool by pool: each one's own "upgrade to generation 2 complete"
    for (const char* name : {"web", "jobs", "tick"})
        REQUIRE(p.wait_for_line(std::regex(std::string("pool ") + name + ": upgrade to generation 2 complete"), in(20s), mark));
    const auto runs = p.wait_for_line(std::regex(R"(upgrade: manager (\d+) now runs \S+; 4 workers in 3 pools)"), in(0ms), mark);
    REQUIRE(runs);
    CHECK(runs->number(1) == p.pid());
    CHECK_FALSE(p.status());

    const auto wrk_status = w.wait_exit(in(10s));
    REQUIRE_MESSAGE(wrk_status, w.output());
    MESSAGE("wrk:\n" << w.output());
    const WrkResult r = parse_wrk(w.lines());
    REQUIRE_MESSAGE(r.parsed, w.output());
    CHECK(r.requests > 100);
    CHECK(r.errors() == 0);

    const std::string status = t.status();
    CHECK(has(status, "pool web: running, 2 of 2 workers ready, permanent"));
    CHECK(has(status, "pool jobs: running, 1 of 1 worker ready, transient, plan \"restart, restart 5s, wait\""));
    CHECK(has(status, "pool tick: running, 1 of 1 worker ready, permanent"));
    // Every worker row (SLOT PID GEN STATE ...) is of generation 2.
    std::map<int, int> generation;
    const std::regex row{R"(^\d+\s+(\d+)\s+(\d+)\s+ready\s)"};
    std::istringstream in_status(status);
    for (std::string line; std::getline(in_status, line);) {
        std::smatch m;
        if (std::regex_search(line, m, row)) generation[std::stoi(m[1])] = std::stoi(m[2]);
    }
    CHECK(generation.size() == 4);
    for (const auto& [pid, gen] : generation) CHECK_MESSAGE(gen == 2, "worker " << pid);
    for (int pid : t.ready("web")) CHECK(std::regex_search(title(pid), std::regex(R"(^hello: web\[[01]\] gen 2$)")));
}
