// HUP with several pools (DESIGN.md §7a): the file read again and folded in by pool name. New
// pools start, removed pools stop gracefully and go, changed pools are replaced rolling, untouched
// pools keep every worker (and serve on, under wrk); a bad file changes nothing.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

const std::regex pool_ready{R"(pool (\S+): worker (\d+) ready in slot)"};
const std::regex pool_reaped{R"(pool (\S+): worker (\d+) reaped: )"};
const std::regex pools_ready{R"(all (\d+) pools ready: (\d+) workers)"};
const std::regex web_listening{R"(pool web: listening on 127\.0\.0\.1:(\d+)$)"};
const std::regex pools_reload_complete{R"(reload complete in (\S+ \S+): (\d+) pools, (\d+) workers$)"};

// web (HTTP), jobs (a Worker type without sockets) and `third`, an exec pool of `sleep`.
std::string pools_config(const std::string& control, unsigned jobs, const std::string& third,
                         const std::string& web_listen = "127.0.0.1:0")
{
    return "control = " + control + "\n"
           "[pool.web]\nworker = web\nworkers = 2\nlisten = " + web_listen + "\n"
           "[pool.jobs]\nworker = jobs\nworkers = " + std::to_string(jobs) + "\n"
           "[pool." + third + "]\ncommand = /bin/sh -c \"exec sleep 300\"\nworkers = 1\nready-after = 100ms\n";
}

// Pids that logged "ready" in each pool, from line `from` on.
std::map<std::string, std::set<int>> ready_by_pool(Process& p, std::size_t from = 0)
{
    std::map<std::string, std::set<int>> out;
    for (const auto& m : p.matches(pool_ready, from)) out[m[1]].insert(std::stoi(m[2]));
    return out;
}

std::set<int> reaped_in(Process& p, const std::string& pool, std::size_t from)
{
    std::set<int> out;
    for (const auto& m : p.matches(pool_reaped, from))
        if (m[1] == pool) out.insert(std::stoi(m[2]));
    return out;
}

struct Started {
    Process* process;
    std::string config;
    std::string control;
    int port;
    std::map<std::string, std::set<int>> pids;
};

Started start_pools(Deployment& d)
{
    Started s{nullptr, d.dir() / "app.conf", d.dir() / "control.sock", 0, {}};
    write_file(s.config, pools_config(s.control, 2, "cache"));
    Process& p = d.start(fast_options({"--config", s.config}));
    s.process = &p;
    REQUIRE_MESSAGE(p.wait_for_line(pools_ready, in(10s)), p.output());
    const auto port = p.wait_for_line(web_listening, in(1s));
    REQUIRE_MESSAGE(port, p.output());
    s.port = std::stoi((*port)[1]);
    s.pids = ready_by_pool(p);
    REQUIRE(s.pids["web"].size() == 2);
    REQUIRE(s.pids["jobs"].size() == 2);
    REQUIRE(s.pids["cache"].size() == 1);
    return s;
}

// A process's arguments, separated by spaces.
std::string cmdline_of(const std::string& pid)
{
    std::ifstream in("/proc/" + pid + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(text.begin(), text.end(), '\0', ' ');
    return text;
}

bool line_after(Process& p, const std::string& text, std::size_t from)
{
    return p.count(std::regex(text), from) > 0;
}

}  // namespace

TEST_CASE("HUP with several pools under wrk: a new pool starts, a removed one goes, a changed one rolls, web keeps every worker")
{
    const std::string wrk = binary("WRK", "/usr/bin/wrk");
    if (::access(wrk.c_str(), X_OK) != 0) HERD_SKIP("wrk not found at " + wrk);
    HardDeadline guard(40s);
    Deployment d(binary("HELLO_HTTP"));
    Started s = start_pools(d);
    Process& p = *s.process;

    Process w({wrk, "-t1", "-c32", "-d4s", "http://127.0.0.1:" + std::to_string(s.port) + "/"});
    REQUIRE_MESSAGE(poll_until([&] { return open_sockets(w.pid()) >= 32; }, in(3s)),
                    "wrk has " << open_sockets(w.pid()) << " sockets open:\n" << w.output());

    // jobs grows (changed), cache goes, extra comes; web is as it was.
    write_file(s.config, pools_config(s.control, 3, "extra"));
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto complete = p.wait_for_line(pools_reload_complete, in(15s), mark);
    REQUIRE_MESSAGE(complete, p.output());
    CHECK((*complete)[2] == "3");
    CHECK((*complete)[3] == "6");
    CHECK_MESSAGE(!w.status(), "wrk ended before the reload completed: raise -d");

    // One line per pool saying what happens to it
    CHECK(line_after(p, R"(pool web: unchanged, 2 workers kept$)", mark));
    CHECK(line_after(p, R"(pool jobs: changed, replaced rolling)", mark));
    CHECK(line_after(p, R"(pool extra: new, starts after jobs$)", mark));
    CHECK(line_after(p, R"(pool cache: removed, stopping)", mark));

    const auto after = ready_by_pool(p, mark);
    CHECK_MESSAGE(after.count("web") == 0, "web spawned workers in the reload:\n" << p.output());
    CHECK(reaped_in(p, "web", mark).empty());
    for (int pid : s.pids["web"]) CHECK(pid_alive(pid));
    REQUIRE(after.count("jobs") == 1);
    CHECK(after.at("jobs").size() == 3);
    for (int pid : s.pids["jobs"]) CHECK(after.at("jobs").count(pid) == 0);
    CHECK(reaped_in(p, "jobs", mark) == s.pids["jobs"]);
    REQUIRE(after.count("extra") == 1);
    CHECK(after.at("extra").size() == 1);
    CHECK(reaped_in(p, "cache", mark) == s.pids["cache"]);
    CHECK(poll_until([&] { return all_gone({s.pids["cache"].begin(), s.pids["cache"].end()}); }, in(2s)));
    CHECK(p.wait_for_line(std::regex("pool cache: removed, its last worker is gone"), in(2s), mark));

    // herdctl status shows the new set
    const RunResult status = run({binary("HERDCTL"), "--control", s.control, "status"}, 5000ms);
    REQUIRE_MESSAGE(status.status, status.output());
    const std::string text = status.output();
    CHECK_MESSAGE(text.find("pool web: running, 2 of 2") != std::string::npos, text);
    CHECK_MESSAGE(text.find("pool jobs: running, 3 of 3") != std::string::npos, text);
    CHECK_MESSAGE(text.find("pool extra: running, 1 of 1") != std::string::npos, text);
    CHECK_MESSAGE(text.find("pool cache") == std::string::npos, text);
    for (int pid : s.pids["web"]) CHECK_MESSAGE(text.find(" " + std::to_string(pid) + " ") != std::string::npos, text);

    const auto ended = w.wait_exit(in(10s));
    REQUIRE_MESSAGE(ended, w.output());
    MESSAGE("wrk:\n" << w.output());
    CHECK(ended->code == 0);
    const WrkResult r = parse_wrk(w.lines());
    REQUIRE_MESSAGE(r.parsed, w.output());
    CHECK(r.requests > 1000);
    CHECK(r.connect_errors == 0);
    CHECK(r.read_errors == 0);
    CHECK(r.write_errors == 0);
    CHECK(r.timeouts == 0);
    CHECK(r.non_2xx == 0);
}

TEST_CASE("HUP with several pools and an unknown key in a section is refused with one line; every pool keeps every worker")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    Started s = start_pools(d);
    Process& p = *s.process;

    write_file(s.config, pools_config(s.control, 3, "extra") + "bogus-key = 1\n");
    const std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto refused = p.wait_for_line(lines::config_invalid, in(5s), mark);
    REQUIRE_MESSAGE(refused, p.output());
    CHECK_MESSAGE((*refused)[1].find("'bogus-key'") != std::string::npos, (*refused)[0]);
    CHECK_MESSAGE((*refused)[1].find("line 13") != std::string::npos, (*refused)[0]);

    // The manager goes on answering, with the pools it had, each worker as it was.
    const RunResult status = run({binary("HERDCTL"), "--control", s.control, "status"}, 5000ms);
    REQUIRE_MESSAGE(status.status, status.output());
    const std::string text = status.output();
    CHECK_MESSAGE(text.find("pool jobs: running, 2 of 2") != std::string::npos, text);
    CHECK_MESSAGE(text.find("pool cache: running, 1 of 1") != std::string::npos, text);
    CHECK_MESSAGE(text.find("pool extra") == std::string::npos, text);
    for (const auto& [pool, pids] : s.pids)
        for (int pid : pids) {
            CHECK_MESSAGE(pid_alive(pid), "pool " << pool << " lost worker " << pid);
            CHECK_MESSAGE(text.find(" " + std::to_string(pid) + " ") != std::string::npos, text);
        }
    CHECK(p.count(lines::spawned, mark) == 0);
    CHECK(p.count(lines::reaped, mark) == 0);
    CHECK(p.count(std::regex(R"(\[error\])"), mark) == 1);
    const HttpResult r = http_get("127.0.0.1", s.port, "/", 2000ms);
    CHECK_MESSAGE(r.status == 200, r.status);
}

TEST_CASE("HUP with several pools: an address in use refuses the reload; a new web address frees the old one")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    Started s = start_pools(d);
    Process& p = *s.process;

    // web to an address something else holds, and a pool added: nothing happens.
    auto taken = std::make_unique<LoopbackListener>();
    const std::string busy = "127.0.0.1:" + std::to_string(taken->port);
    write_file(s.config, pools_config(s.control, 2, "cache", busy) + "[pool.extra]\nworker = jobs\n");
    std::size_t mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto refused = p.wait_for_line(
        std::regex("received HUP: pool web: cannot bind " + busy + R"(: .*; keeping the running configuration$)"),
        in(5s), mark);
    REQUIRE_MESSAGE(refused, p.output());
    CHECK(p.count(std::regex(R"(\[error\])"), mark) == 1);
    CHECK(p.count(std::regex("pool extra"), mark) == 0);
    CHECK(p.count(lines::spawned, mark) == 0);
    CHECK(try_connect("127.0.0.1", s.port, 2000ms) == 0);

    // The address is free now: web rolls onto it, and its old one closes for good, though
    // jobs' and cache's workers were forked while it was open.
    const int port = taken->port;
    taken.reset();
    write_file(s.config, pools_config(s.control, 2, "cache", "127.0.0.1:" + std::to_string(port)));
    mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    const auto complete = p.wait_for_line(pools_reload_complete, in(10s), mark);
    REQUIRE_MESSAGE(complete, p.output());
    CHECK(line_after(p, R"(pool web: changed, replaced rolling)", mark));
    CHECK(line_after(p, R"(pool jobs: unchanged, 2 workers kept$)", mark));
    const HttpResult r = http_get("127.0.0.1", port, "/", 2000ms);
    CHECK_MESSAGE(r.status == 200, r.error);
    CHECK(poll_until([&] { return try_connect("127.0.0.1", s.port, 500ms) == ECONNREFUSED; }, in(3s)));
    for (int pid : s.pids["jobs"]) CHECK(pid_alive(pid));
}

TEST_CASE("HUP with several pools: a pool whose new generation fails goes back alone; the others keep what they rolled to")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    const std::string config = d.dir() / "app.conf", control = d.dir() / "control.sock";
    write_file(config, pools_config(control, 2, "cache"));
    Process& p = d.start(fast_options({"--config", config, "--upgrade-timeout", "2s"}));
    REQUIRE_MESSAGE(p.wait_for_line(pools_ready, in(10s)), p.output());
    const auto before = ready_by_pool(p);
    REQUIRE(before.at("cache").size() == 1);
    const int cache = *before.at("cache").begin();

    // jobs grows; cache's new workers would be ready after 4 s, past the upgrade timeout.
    std::string failing = pools_config(control, 3, "cache");
    failing.replace(failing.find("ready-after = 100ms"), 19, "ready-after = 4s");
    write_file(config, failing);
    std::size_t mark = p.lines().size();
    const RunResult reload = run({binary("HERDCTL"), "--control", control, "reload"}, 10000ms);
    REQUIRE_MESSAGE(reload.status, reload.output());
    CHECK(reload.status->code == 1);
    CHECK_MESSAGE(reload.output().find("reload to generation 2 failed") != std::string::npos, reload.output());
    CHECK(p.wait_for_line(std::regex(R"(pool cache: reload to generation 2 failed: .*; generation 1 keeps serving$)"),
                          in(2s), mark));
    CHECK_MESSAGE(pid_alive(cache), p.output());
    CHECK(ready_by_pool(p, mark).at("jobs").size() == 3);

    // What each pool runs now shows at the next HUP: jobs has its new options, cache its old ones.
    write_file(config, pools_config(control, 3, "cache"));
    mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(pools_reload_complete, in(5s), mark), p.output());
    CHECK(line_after(p, R"(pool jobs: unchanged, 3 workers kept$)", mark));
    CHECK(line_after(p, R"(pool cache: unchanged, 1 workers kept$)", mark));
    CHECK(pid_alive(cache));
}

TEST_CASE("HUP with several pools: a new pool that never gets ready fails the reload at the upgrade timeout; the next HUP removes it")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    const std::string config = d.dir() / "app.conf", control = d.dir() / "control.sock";
    write_file(config, pools_config(control, 2, "cache"));
    Process& p = d.start(fast_options({"--config", config, "--upgrade-timeout", "1s"}));
    REQUIRE_MESSAGE(p.wait_for_line(pools_ready, in(10s)), p.output());
    const auto before = ready_by_pool(p);

    // broken's workers never send the heartbeat they must send: it never gets ready.
    write_file(config, pools_config(control, 2, "cache") +
                           "[pool.broken]\ncommand = /bin/sh -c \"exec sleep 300\"\nworkers = 1\n"
                           "heartbeat = required\nboot-timeout = 20s\n");
    std::size_t mark = p.lines().size();
    const RunResult first = run({binary("HERDCTL"), "--control", control, "reload"}, 10000ms);
    REQUIRE_MESSAGE(first.status, first.output());
    CHECK(first.status->code == 1);
    CHECK_MESSAGE(first.output().find("pool broken not ready within 1 s") != std::string::npos, first.output());
    CHECK(p.count(std::regex(R"(reload failed: pool broken not ready within 1 s \(--upgrade-timeout\))"), mark) == 1);

    write_file(config, pools_config(control, 2, "cache"));
    mark = p.lines().size();
    const RunResult second = run({binary("HERDCTL"), "--control", control, "reload"}, 10000ms);
    REQUIRE_MESSAGE(second.status, second.output() << p.output());
    CHECK_MESSAGE(second.status->code == 0, second.output());
    CHECK(line_after(p, R"(pool broken: removed, stopping)", mark));
    CHECK(p.wait_for_line(std::regex("pool broken: removed, its last worker is gone"), in(5s), mark));
    for (const auto& [pool, pids] : before)
        for (int pid : pids) CHECK_MESSAGE(pid_alive(pid), "pool " << pool << " lost worker " << pid);
}

TEST_CASE("HUP with several pools: a new command or worker type alone replaces that pool's workers rolling")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    Started s = start_pools(d);
    Process& p = *s.process;

    // jobs runs the web type now, on an address of its own; cache runs another command.
    std::string next = pools_config(s.control, 2, "cache");
    next.replace(next.find("worker = jobs"), 13, "worker = web\nlisten = 127.0.0.1:0");
    next.replace(next.find("exec sleep 300"), 14, "echo cache runs v2; exec sleep 299");
    write_file(s.config, next);
    const std::size_t mark = p.lines().size();
    const RunResult reload = run({binary("HERDCTL"), "--control", s.control, "reload"}, 10000ms);
    REQUIRE_MESSAGE(reload.status, reload.output());
    CHECK_MESSAGE(reload.status->code == 0, reload.output() << p.output());
    CHECK(line_after(p, R"(pool jobs: its workers run 'worker web' from now on, instead of 'worker jobs'$)", mark));
    CHECK(line_after(p, R"(pool cache: its workers run '/bin/sh -c 'echo cache runs v2; exec sleep 299'' from now on)",
                     mark));
    CHECK(line_after(p, R"(pool web: unchanged, 2 workers kept$)", mark));

    const auto after = ready_by_pool(p, mark);
    CHECK(after.count("web") == 0);
    for (int pid : s.pids["web"]) CHECK(pid_alive(pid));
    REQUIRE(after.count("jobs") == 1);
    REQUIRE(after.count("cache") == 1);
    CHECK(reaped_in(p, "jobs", mark) == s.pids["jobs"]);
    CHECK(reaped_in(p, "cache", mark) == s.pids["cache"]);
    CHECK(p.wait_for_line(std::regex(R"(cache runs v2)"), in(2s), mark));
    const int cache = *after.at("cache").begin();
    CHECK_MESSAGE(cmdline_of(std::to_string(cache)).find("sleep 299") != std::string::npos,
                  cmdline_of(std::to_string(cache)));

    // jobs serves HTTP now, from the web type's code
    const auto jobs_port = p.wait_for_line(std::regex(R"(pool jobs: listening on 127\.0\.0\.1:(\d+)$)"), in(1s), mark);
    REQUIRE_MESSAGE(jobs_port, p.output());
    const HttpResult r = http_get("127.0.0.1", std::stoi((*jobs_port)[1]), "/", 2000ms);
    CHECK_MESSAGE(r.status == 200, r.error);

    // The same file again: every pool unchanged
    const std::size_t again = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(pools_reload_complete, in(5s), again), p.output());
    CHECK(line_after(p, R"(pool jobs: unchanged, 2 workers kept$)", again));
    CHECK(line_after(p, R"(pool cache: unchanged, 1 workers kept$)", again));
}

TEST_CASE("HUP with several pools: a new command whose workers fail goes back to the old one, whose worker kept serving")
{
    HardDeadline guard(30s);
    Deployment d(binary("HELLO_HTTP"));
    const std::string config = d.dir() / "app.conf", control = d.dir() / "control.sock";
    write_file(config, pools_config(control, 2, "cache"));
    Process& p = d.start(fast_options({"--config", config, "--upgrade-timeout", "2s"}));
    REQUIRE_MESSAGE(p.wait_for_line(pools_ready, in(10s)), p.output());
    const int cache = *ready_by_pool(p).at("cache").begin();

    // The new command exits at once, again and again: the reload fails, cache goes back.
    std::string failing = pools_config(control, 2, "cache");
    failing.replace(failing.find("exec sleep 300"), 14, "exit 7");
    write_file(config, failing);
    std::size_t mark = p.lines().size();
    const RunResult reload = run({binary("HERDCTL"), "--control", control, "reload"}, 10000ms);
    REQUIRE_MESSAGE(reload.status, reload.output());
    CHECK(reload.status->code == 1);
    CHECK(p.wait_for_line(std::regex(R"(pool cache: reload to generation 2 failed: .*; generation 1 keeps serving$)"),
                          in(2s), mark));
    CHECK_MESSAGE(pid_alive(cache), p.output());
    CHECK_MESSAGE(p.count(std::regex(R"(pool cache: worker \d+ reaped: crashed \(exit code 7\))"), mark) >= 1, p.output());

    // The old command runs again: the old file is unchanged, and a worker that exits now is replaced by it.
    write_file(config, pools_config(control, 2, "cache"));
    mark = p.lines().size();
    REQUIRE(p.signal(SIGHUP));
    REQUIRE_MESSAGE(p.wait_for_line(pools_reload_complete, in(5s), mark), p.output());
    CHECK(line_after(p, R"(pool cache: unchanged, 1 workers kept$)", mark));
    CHECK(pid_alive(cache));
    mark = p.lines().size();
    REQUIRE(::kill(cache, SIGKILL) == 0);
    const auto replaced = p.wait_for_line(pool_ready, in(5s), mark);
    REQUIRE_MESSAGE(replaced, p.output());
    const std::string cmdline = cmdline_of((*replaced)[2]);
    CHECK_MESSAGE(cmdline.find("sleep 300") != std::string::npos, cmdline);
}
