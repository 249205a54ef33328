// A manager of several pools (DESIGN.md §7a) as the pools tests start it: `herd --config FILE`
// with exec pools of small programs (or a server binary with Worker pools), its control socket,
// and what its log tells about each pool.
#pragma once

#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace herd::testing {

inline std::string herdctl_binary() { return binary("HERDCTL"); }

// A program that is ready after `ready-after`, leaves on TERM at once, exits 0 on USR1 and 1 on USR2.
inline const std::string signalled_program =
    R"(/bin/sh -c 'trap "exit 0" USR1; trap "exit 1" USR2; while :; do sleep 0.05; done')";

/// The milliseconds of the day a log line was written ("[2026-12-06 23:10:48.627] ..."), or -1.
inline double logged_ms(const std::string& line)
{
    static const std::regex stamp{R"(^\[\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d)\.(\d{3})\])"};
    std::smatch m;
    if (!std::regex_search(line, m, stamp)) return -1;
    return ((std::stod(m[1]) * 60 + std::stod(m[2])) * 60 + std::stod(m[3])) * 1000 + std::stod(m[4]);
}

/// "pool NAME: worker (\d+) <rest>"
inline std::regex pool_line(const std::string& pool, const std::string& rest)
{
    return std::regex("pool " + pool + R"(: worker (\d+) )" + rest);
}

class Tree {
public:
    /// `herd --config FILE`: the file is the control socket, short timeouts, `top` (manager-wide
    /// lines), exec pools ready after 150 ms without heartbeats, then `pools` ([pool.NAME] sections).
    Tree(const std::string& top, const std::string& pools) : Tree(binary("HERD"), top, pools, true) {}

    /// `program --config FILE` with `text` after the control line, as it is.
    Tree(const std::string& program, const std::string& top, const std::string& pools, bool exec)
    {
        std::string text = "control = " + control() + "\ngraceful-timeout = 1s\nkill-timeout = 1s\n" + top;
        if (exec) text += "[pool]\nheartbeat = off\nready-after = 150ms\n";
        write_file(config(), text + pools);
        process_ = std::make_unique<Process>(std::vector<std::string>{program, "--config", config()});
    }

    Process& log() { return *process_; }
    std::string config() const { return dir_ / "pools.conf"; }
    std::string control() const { return dir_ / "control.sock"; }

    /// Wait for "all N pools ready"; REQUIREs it.
    void wait_ready(int pools, Deadline deadline = in(milliseconds(8000)))
    {
        const auto m = log().wait_for_line(std::regex("all " + std::to_string(pools) + " pools ready"), deadline);
        REQUIRE_MESSAGE(m, "the pools never got ready:\n" << log().output());
    }

    /// herdctl -c CONTROL args...
    RunResult ctl(const std::vector<std::string>& args, milliseconds timeout = milliseconds(10000))
    {
        return run(concat({herdctl_binary(), "-c", control()}, args), timeout);
    }
    /// herdctl status, its output; REQUIREs exit 0.
    std::string status()
    {
        const RunResult r = ctl({"status"});
        REQUIRE_MESSAGE((r.status && r.status->code == 0), r.output());
        return r.output();
    }

    /// The pool's workers spawned and not reaped, as the log tells it.
    std::set<int> pids(const std::string& pool)
    {
        std::set<int> live;
        for (const Match& m : log().matches(pool_line(pool, "spawned in slot"))) live.insert(m.number(1));
        for (const Match& m : log().matches(pool_line(pool, "reaped:"))) live.erase(m.number(1));
        return live;
    }
    /// The pool's workers that logged ready and were not reaped.
    std::set<int> ready(const std::string& pool)
    {
        std::set<int> live;
        for (const Match& m : log().matches(pool_line(pool, "ready in slot"))) live.insert(m.number(1));
        for (const Match& m : log().matches(pool_line(pool, "reaped:"))) live.erase(m.number(1));
        return live;
    }
    /// Wait until the pool has exactly `n` ready workers and no other worker.
    bool settles(const std::string& pool, std::size_t n, Deadline deadline)
    {
        return poll_until([&] { return ready(pool).size() == n && pids(pool).size() == n; }, deadline);
    }
    /// Every "spawned" of the pool at index >= from.
    std::size_t spawns(const std::string& pool, std::size_t from)
    {
        return log().count(pool_line(pool, "spawned in slot"), from);
    }
    /// SIGKILL one worker of the pool and wait until it is reaped; the index of the reaped line.
    Match kill_one(const std::string& pool, int sig = SIGKILL)
    {
        const std::set<int> live = ready(pool);
        REQUIRE_MESSAGE(!live.empty(), "pool " << pool << " has no ready worker:\n" << log().output());
        const int pid = *live.begin();
        const std::size_t mark = log().lines().size();
        REQUIRE(::kill(pid, sig) == 0);
        auto m = log().wait_for_line(worker_line(pid, "reaped: "), in(milliseconds(3000)), mark);
        REQUIRE_MESSAGE(m, "worker " << pid << " of pool " << pool << " was not reaped:\n" << log().output());
        return *m;
    }

private:
    TempDir dir_;
    std::unique_ptr<Process> process_;
};

}  // namespace herd::testing
