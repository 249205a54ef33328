// A worker's own memory in herdctl status (table and --json) and in herdctl metrics, while its
// pool samples memory (--max-worker-memory); null, no column and no sample while it does not.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <regex>
#include <string>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

constexpr long long MiB = 1024 * 1024;

struct Sampled {
    TempDir dir;
    std::string socket = dir / "control.sock";
    std::optional<Process> p;

    explicit Sampled(std::vector<std::string> extra)
    {
        // The worker in slot 0 writes 40 MiB of its own memory once it runs
        p.emplace(concat({binary("TEST_WORKER"), "-w", "2", "--mode", "grow=40", "--control", socket}, fast_options(extra)));
        REQUIRE_MESSAGE(p->wait_for_line(std::regex("test worker \\d+ grew by 40 MiB"), in(5s)), p->output());
    }

    RunResult ctl(const std::vector<std::string>& args) { return run(concat({binary("HERDCTL"), "--control", socket}, args), 10s); }

    /// memory_bytes of the worker in `slot` (the top-level workers), "" when it is not in the answer
    std::string memory_of(int slot)
    {
        const std::string json = ctl({"--json", "status"}).output();
        std::smatch m;
        const std::regex re("\\{\"pid\":\\d+,\"slot\":" + std::to_string(slot) + ",[^{}]*\"memory_bytes\":(null|\\d+)");
        return std::regex_search(json, m, re) ? m[1].str() : "";
    }
};

}  // namespace

TEST_CASE("a worker's own memory shows in status --json, the status table and metrics while its pool samples it")
{
    HardDeadline guard(30s);
    Sampled s({"--max-worker-memory", "1G", "--max-worker-memory-window", "400ms"});
    // Sampled every 100 ms (a quarter of the window), each worker in turn
    REQUIRE(poll_until([&] { const std::string m = s.memory_of(0); return !m.empty() && m != "null" && std::stoll(m) >= 40 * MiB; },
                       in(5s), 50ms));
    const long long grower = std::stoll(s.memory_of(0));
    CHECK(grower < 60 * MiB);
    REQUIRE(poll_until([&] { const std::string m = s.memory_of(1); return !m.empty() && m != "null"; }, in(5s), 50ms));
    const long long other = std::stoll(s.memory_of(1));
    CHECK(other > 0);
    CHECK(other < 40 * MiB);   // the other worker did not grow

    const auto table = s.ctl({"status"});
    REQUIRE_MESSAGE(table.output().find("MEMORY") != std::string::npos, table.output());
    CHECK_MESSAGE(std::regex_search(table.output(), std::regex("\\n0 +\\d+ +1 +ready .* (4\\d(\\.\\d)?) MiB ")), table.output());

    const auto metrics = s.ctl({"metrics"});
    CHECK(metrics.output().find("# TYPE herd_worker_memory_bytes gauge") != std::string::npos);
    std::smatch m;
    const std::string text = metrics.output();
    REQUIRE_MESSAGE(std::regex_search(text, m, std::regex("herd_worker_memory_bytes\\{pool=\"main\",slot=\"0\",pid=\"\\d+\",generation=\"1\"\\} (\\d+)")),
                    text);
    CHECK(std::stoll(m[1].str()) >= 40 * MiB);
    CHECK(std::regex_search(text, std::regex("herd_worker_memory_bytes\\{pool=\"main\",slot=\"1\",")));
    CHECK(s.p->count(std::regex("retiring")) == 0);
}

TEST_CASE("without --max-worker-memory a worker's memory is null in status --json, and neither table nor metrics show it")
{
    HardDeadline guard(30s);
    Sampled s({});
    REQUIRE(poll_until([&] { return s.memory_of(0) == "null"; }, in(5s), 50ms));
    CHECK(s.memory_of(1) == "null");
    CHECK(s.ctl({"status"}).output().find("MEMORY") == std::string::npos);
    const std::string text = s.ctl({"metrics"}).output();
    CHECK(text.find("# TYPE herd_worker_memory_bytes gauge") != std::string::npos);   // every family, as always
    CHECK(text.find("herd_worker_memory_bytes{") == std::string::npos);
}
