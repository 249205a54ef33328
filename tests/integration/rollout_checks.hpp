// Checks shared by the reload (HUP) and upgrade (USR2) tests.
#pragma once

#include "harness.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

namespace herd::testing {

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
