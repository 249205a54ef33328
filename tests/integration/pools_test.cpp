// Several pools in one manager (DESIGN.md §7a) on real processes: exec pools of small programs
// under `herd --config FILE`. Ordered start, reverse stop, the strategies one, rest and all,
// restart types, HERD_POOL, and configurations a real binary refuses.
#include "pools_tree.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

// Three exec pools a, b, c of `workers` each, `section` added to every one.
std::string three_pools(int workers, const std::string& section = {}, const std::string& command = "/bin/sleep 1000")
{
    std::string text;
    for (const char* name : {"a", "b", "c"})
        text += std::string("[pool.") + name + "]\ncommand = " + command + "\nworkers = " + std::to_string(workers) +
                "\n" + section;
    return text;
}

// The index of the first line matching re, or the line count when none does.
std::size_t first_index(Process& p, const std::regex& re)
{
    const auto m = p.matches(re);
    return m.empty() ? p.lines().size() : m.front().index;
}
std::size_t last_index(Process& p, const std::regex& re)
{
    const auto m = p.matches(re);
    return m.empty() ? 0 : m.back().index;
}

// True if a worker of one of `pools` is spawned at index >= from before the deadline.
bool any_spawn(Tree& t, const std::vector<std::string>& pools, std::size_t from, Deadline deadline)
{
    return poll_until([&] {
        return std::any_of(pools.begin(), pools.end(), [&](const std::string& p) { return t.spawns(p, from) > 0; });
    }, deadline, 20ms);
}

}  // namespace

TEST_CASE("pools start in file order: each one's first spawn after the previous pool is all ready")
{
    HardDeadline guard(20s);
    Tree t("", three_pools(2));
    t.wait_ready(3);
    Process& p = t.log();
    const std::size_t a_ready = first_index(p, std::regex("pool a: all 2 workers ready"));
    const std::size_t b_ready = first_index(p, std::regex("pool b: all 2 workers ready"));
    const std::size_t b_spawn = first_index(p, pool_line("b", "spawned"));
    const std::size_t c_spawn = first_index(p, pool_line("c", "spawned"));
    INFO(p.output());
    CHECK(last_index(p, pool_line("a", "ready in slot")) < a_ready);
    CHECK(a_ready < b_spawn);
    CHECK(b_spawn < b_ready);
    CHECK(b_ready < c_spawn);
    CHECK(c_spawn < p.lines().size());
    CHECK(t.pids("a").size() == 2);
    CHECK(t.pids("b").size() == 2);
    CHECK(t.pids("c").size() == 2);
}

TEST_CASE("QUIT and TERM stop the pools in reverse order, each gone before the one before it is asked")
{
    for (const int sig : {SIGQUIT, SIGTERM}) {
        CAPTURE(sig);
        HardDeadline guard(20s);
        // Each program takes 200 ms to leave: a pool asked too early would be reaped among the later one's.
        Tree t("", three_pools(2, "", R"(/bin/sh -c 'trap "sleep 0.2; exit 0" TERM; while :; do sleep 0.05; done')"));
        t.wait_ready(3);
        Process& p = t.log();
        const std::size_t mark = p.lines().size();
        REQUIRE(p.signal(sig));
        const auto status = p.wait_exit(in(10s));
        REQUIRE_MESSAGE(status, p.output());
        INFO(p.output());
        CHECK(status->code == 0);
        for (const char* name : {"a", "b", "c"}) CHECK(p.count(pool_line(name, "reaped:"), mark) == 2);
        const std::size_t c_stopped = first_index(p, std::regex("pool c stopped"));
        const std::size_t b_stopped = first_index(p, std::regex("pool b stopped"));
        const std::size_t a_stopped = first_index(p, std::regex("pool a stopped"));
        CHECK(last_index(p, pool_line("c", "reaped:")) < c_stopped);
        CHECK(c_stopped < first_index(p, pool_line("b", "reaped:")));
        CHECK(last_index(p, pool_line("b", "reaped:")) < b_stopped);
        CHECK(b_stopped < first_index(p, pool_line("a", "reaped:")));
        CHECK(last_index(p, pool_line("a", "reaped:")) < a_stopped);
        CHECK(p.count(std::regex("exiting with code 0")) == 1);
    }
}

TEST_CASE("a worker of the middle pool killed: one refills its slot, rest also rolls the later pool, all every other")
{
    for (const std::string strategy : {"one", "rest", "all"}) {
        CAPTURE(strategy);
        HardDeadline guard(25s);
        Tree t("restart-strategy = " + strategy + "\n", three_pools(2));
        t.wait_ready(3);
        const auto a = t.pids("a"), c = t.pids("c");
        const std::size_t mark = t.log().lines().size();
        t.kill_one("b");
        INFO(t.log().output());
        REQUIRE(t.settles("b", 2, in(5s)));
        CHECK(t.spawns("b", mark) == 1);
        const bool c_rolls = strategy != "one";
        const bool a_rolls = strategy == "all";
        if (c_rolls) {
            // Replaced rolling: two new workers ready, the two old ones gone.
            REQUIRE(poll_until([&] { return t.spawns("c", mark) == 2 && t.settles("c", 2, in(0ms)); }, in(5s)));
            for (int pid : c) CHECK(t.pids("c").count(pid) == 0);
        }
        if (a_rolls) {
            REQUIRE(poll_until([&] { return t.spawns("a", mark) == 2 && t.settles("a", 2, in(0ms)); }, in(5s)));
            for (int pid : a) CHECK(t.pids("a").count(pid) == 0);
        }
        // What must not roll does not, in the time a roll takes here.
        std::vector<std::string> untouched;
        if (!a_rolls) untouched.push_back("a");
        if (!c_rolls) untouched.push_back("c");
        CHECK_FALSE(any_spawn(t, untouched, mark, in(700ms)));
        if (!a_rolls) CHECK(t.pids("a") == a);
        if (!c_rolls) CHECK(t.pids("c") == c);
        CHECK(t.status().find("pool b: running, 2 of 2 workers ready") != std::string::npos);
    }
}

TEST_CASE("restart = temporary: a killed worker is not refilled and the pool's target shrinks")
{
    HardDeadline guard(20s);
    Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n"
               "[pool.b]\ncommand = /bin/sleep 1000\nworkers = 2\nrestart = temporary\n");
    t.wait_ready(2);
    const std::size_t mark = t.log().lines().size();
    t.kill_one("b");
    INFO(t.log().output());
    CHECK_FALSE(any_spawn(t, {"a", "b"}, mark, in(700ms)));
    CHECK(t.pids("b").size() == 1);
    CHECK(t.status().find("pool b: running, 1 of 1 worker ready, temporary") != std::string::npos);
}

TEST_CASE("restart = transient: exit 0 is not refilled, exit 1 and SIGKILL are")
{
    HardDeadline guard(20s);
    Tree t("", "[pool.a]\ncommand = /bin/sleep 1000\nworkers = 1\n"
               "[pool.b]\ncommand = " + signalled_program + "\nworkers = 3\nrestart = transient\n");
    t.wait_ready(2);
    Process& p = t.log();
    INFO(p.output());

    std::size_t mark = p.lines().size();
    const Match clean = t.kill_one("b", SIGUSR1);
    CHECK(clean.line.find("reaped: finished (exit 0)") != std::string::npos);
    CHECK_FALSE(any_spawn(t, {"a", "b"}, mark, in(700ms)));
    CHECK(t.status().find("pool b: running, 2 of 2 workers ready, transient") != std::string::npos);

    for (const int sig : {SIGUSR2, SIGKILL}) {
        CAPTURE(sig);
        mark = p.lines().size();
        t.kill_one("b", sig);
        CHECK(t.settles("b", 2, in(3s)));
        CHECK(t.spawns("b", mark) == 1);
        CHECK(t.spawns("a", mark) == 0);
    }
}

TEST_CASE("an exec program sees HERD_POOL, its pool's name")
{
    HardDeadline guard(15s);
    const std::string echo = R"(/bin/sh -c 'echo "in pool $HERD_POOL slot $HERD_SLOT"; exec sleep 1000')";
    Tree t("", "[pool.front]\ncommand = " + echo + "\nworkers = 1\n[pool.back-1]\ncommand = " + echo + "\nworkers = 2\n");
    t.wait_ready(2);
    Process& p = t.log();
    INFO(p.output());
    CHECK(p.wait_for_lines(std::regex(R"(\] in pool front slot 0$)"), 1, in(2s)).size() == 1);
    CHECK(p.wait_for_lines(std::regex(R"(\] in pool back-1 slot [01]$)"), 2, in(2s)).size() == 2);
}

TEST_CASE("a server binary's workers are titled NAME: POOL[slot] gen G, an exec pool beside them sees HERD_POOL")
{
    HardDeadline guard(15s);
    Tree t(binary("HELLO_HTTP"), "name = titled\nheartbeat-interval = 100ms\njob-interval = 100ms\n",
           "[pool.web]\nworker = web\nworkers = 2\nlisten = 127.0.0.1:0\n[pool.jobs]\nworker = jobs\nworkers = 1\n"
           "[pool.side]\ncommand = /bin/sh -c 'echo \"side sees $HERD_POOL\"; exec sleep 1000'\nworkers = 1\n"
           "ready-after = 150ms\nheartbeat = off\n",
           false);
    t.wait_ready(3);
    Process& p = t.log();
    INFO(p.output());
    const auto title = [](int pid) {
        const RunResult r = run({"/bin/ps", "-o", "args=", "-p", std::to_string(pid)}, 3s);
        return r.lines.empty() ? std::string() : r.lines.front();
    };
    std::set<std::string> titles;
    for (const char* name : {"web", "jobs"})
        for (int pid : t.ready(name)) titles.insert(title(pid));
    CHECK(titles == std::set<std::string>{"titled: web[0] gen 1", "titled: web[1] gen 1", "titled: jobs[0] gen 1"});
    CHECK(p.wait_for_line(std::regex(R"(\] side sees side$)"), in(2s)));
}

TEST_CASE("a real binary refuses a bad configuration of pools: exit 2, one line naming file, line and key")
{
    HardDeadline guard(15s);
    TempDir dir;
    const auto refuses = [&](const std::string& program, const std::string& text, const std::string& expected) {
        write_file(dir / "bad.conf", text);
        const RunResult r = run({program, "--config", dir / "bad.conf"}, 5s);
        INFO(r.output());
        REQUIRE(r.status);
        CHECK(r.status->code == 2);
        REQUIRE(r.lines.size() == 1);
        CHECK(std::regex_search(r.lines[0], std::regex("^\\S+: config file " + dir.path() + "/bad\\.conf, " + expected)));
    };
    const std::string herd = binary("HERD"), hello = binary("HELLO_HTTP");
    refuses(hello, "[pool.web]\nworker = web\nlisten = 127.0.0.1:0\n[pool.x]\nworker = nope\n",
            "line 5: unknown worker type 'nope' for pool 'x' \\(this binary has: web, jobs\\)$");
    refuses(herd, "[pool.a]\ncommand = /bin/true\n[pool.b]\ncommand = /bin/true\n[pool.a]\ncommand = /bin/true\n",
            "line 5: pool 'a' given twice \\(first at line 1\\)$");
    LoopbackListener port;   // an address nobody else takes meanwhile: the refusal comes before any bind
    const std::string address = "127.0.0.1:" + std::to_string(port.port);
    refuses(hello, "[pool.one]\nworker = web\nlisten = " + address + "\n[pool.two]\nworker = web\nlisten = " + address + "\n",
            "line 6: pool 'two' cannot listen on " + address + ": pool 'one' listens on " + address);
    refuses(herd, "restart-strategy = some\n[pool.a]\ncommand = /bin/true\n",
            "line 1: invalid value 'some' for restart-strategy: expected one, rest or all$");
    refuses(herd, "[pool.a]\ncommand = /bin/true\n[pool.b]\ncommand = /bin/true\nplan-count = 2\n",
            "line 5: .*plan-count");
}
