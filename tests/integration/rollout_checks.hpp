// Load and checks shared by the reload (HUP) and upgrade (USR2) tests.
#pragma once

#include "harness.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

namespace herd::testing {

/// Load on a started deployment from keep-alive connections, and a watch on its pid file, until check().
struct WatchedLoad {
    Deployment& d;
    LoadClient client;
    PidFileWatch watch;

    explicit WatchedLoad(Deployment& d, unsigned connections = 32)
        : d(d), client(LoadOptions{.port = d.port(), .connections = connections, .duration = std::chrono::seconds(40)}),
          watch(d.pid_file(), d.pid())
    {
        REQUIRE_MESSAGE(client.wait_answered(200, in(std::chrono::seconds(5))), "no load: " << client.stats().describe());
    }

    /// Keep the load running a little longer, stop it and check that not one request failed, that
    /// the requests sent from `since` on were answered by `pids` only, and that the pid file named
    /// the manager, still running, at every sample.
    void check(const std::set<int>& pids, Clock::time_point since)
    {
        CHECK_MESSAGE(client.wait_answered(300, in(std::chrono::seconds(5))), "the load stalled: " << client.stats().describe());
        client.stop();
        watch.stop();
        const LoadStats stats = client.stats();
        MESSAGE("load: " << stats.describe());
        CHECK_MESSAGE(stats.failed() == 0, stats.describe());
        CHECK(stats.ok > 0);
        const std::set<int> served = stats.pids_sent_since(since);
        CHECK(!served.empty());
        for (int pid : served) CHECK_MESSAGE(pids.count(pid) == 1, "worker " << pid << " answered, not one of the expected workers");
        CHECK_MESSAGE(watch.samples() > 0, "the pid file was sampled " << watch.samples() << " times");
        CHECK_MESSAGE(watch.mismatches() == 0, watch.mismatches() << " of " << watch.samples()
                                                   << " samples of the pid file did not name manager " << d.pid()
                                                   << ", first: " << watch.first_mismatch());
        CHECK(pid_alive(d.pid()));
        CHECK_FALSE(d.process().status());
    }
};

/// The `complete` line (lines::upgrade_complete, lines::reload_complete) at index >= mark: the
/// rollout to `generation` finished with `workers` ready.
inline Match wait_complete(Process& p, const std::regex& complete, std::size_t mark, int generation, unsigned workers)
{
    const auto done = p.wait_for_line(complete, in(std::chrono::seconds(10)), mark);
    REQUIRE_MESSAGE(done, p.output());
    CHECK(done->number(1) == generation);
    CHECK(done->number(3) == int(workers));
    return *done;
}

/// The lines at index >= from that name worker `pid`, for failure messages.
inline std::string lines_naming(Process& p, int pid, std::size_t from)
{
    std::string text;
    for (const auto& m : p.matches(std::regex("\\b" + std::to_string(pid) + "\\b"), from)) text += m.line + "\n";
    return text;
}

/// A completed reload or upgrade (`kind`: "reload", "upgrade") to `generation` since `mark`:
/// every worker of `old` retired for it and is gone, `workers` of the new generation are ready,
/// and nobody was killed or crashed.
inline void check_replaced(Process& p, std::size_t mark, const std::set<int>& old, int generation,
                           unsigned workers, const std::string& kind)
{
    const auto reaped = reaped_pids(p, mark);
    for (int pid : old) {
        CHECK_MESSAGE(reaped.count(pid) == 1, "worker " << pid << " of the old generation was not reaped");
        if (reaped.count(pid))
            CHECK_MESSAGE(reaped.at(pid) == "retired (" + kind + ")",
                          "worker " << pid << ":\n" << lines_naming(p, pid, mark));
        CHECK_FALSE(pid_alive(pid));
    }
    const std::set<int> fresh = generation_pids(p, generation);
    CHECK(fresh.size() == workers);
    CHECK(ready_pids(p) == fresh);
    CHECK(p.count(std::regex(R"(\), killing$|reaped: crashed|reaped: killed)"), mark) == 0);
}

}  // namespace herd::testing
