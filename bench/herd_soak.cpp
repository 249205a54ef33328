// herd-soak: prove that herd survives chaos (docs/benchmark.md, "Soak: herd-soak").
//
//   herd-soak [--duration S] [--seed N] [--scenario single|pools|both]
//
// Runs the scenario `single` (hello-http, 8 workers in one pool) and `pools` (web, jobs and an
// exec pool), half the duration each by default, each under keep-alive HTTP load, doing seeded
// random actions one at a time (soak.hpp, soak_run.hpp), and prints a summary table per
// scenario. Exit 0 when nothing was breached, 1 on any breach, 2 on a usage error. The seed is
// printed; the same seed replays the same schedule of actions.
#include "soak_run.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace {

int usage(const std::string& why)
{
    std::fprintf(stderr, "herd-soak: %s\nusage: herd-soak [--duration S] [--seed N] [--scenario single|pools|both]\n",
                 why.c_str());
    return 2;
}

std::string binary(const char* define, const char* var)
{
    const char* env = std::getenv(var);
    return env && *env ? env : define;
}

}  // namespace

int main(int argc, char** argv)
{
    double seconds = 60;
    std::uint64_t seed = std::random_device{}() ^ std::uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
    std::string scenario = "both";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--duration" || arg == "--seed" || arg == "--scenario") && i + 1 >= argc)
            return usage(arg + " needs a value");
        try {
            if (arg == "--duration") {
                std::size_t used = 0;
                seconds = std::stod(argv[++i], &used);
                if (used != std::string(argv[i]).size() || !(seconds > 0) || seconds > 86400)
                    return usage("invalid value '" + std::string(argv[i]) + "' for --duration: expected seconds above 0");
            } else if (arg == "--seed") {
                std::size_t used = 0;
                seed = std::stoull(argv[++i], &used);
                if (used != std::string(argv[i]).size()) throw std::invalid_argument("seed");
            } else if (arg == "--scenario") {
                scenario = argv[++i];
                if (scenario != "single" && scenario != "pools" && scenario != "both")
                    return usage("invalid value '" + scenario + "' for --scenario: expected single, pools or both");
            } else if (arg == "-h" || arg == "--help") {
                usage("a bounded, seeded chaos run against hello-http under load");
                return 0;
            } else {
                return usage("unknown argument '" + arg + "'");
            }
        } catch (const std::exception&) {
            return usage("invalid value '" + std::string(argv[i]) + "' for " + arg);
        }
    }

    const herd::soak::Binaries bin{binary(HERD_HELLO_HTTP, "HELLO_HTTP"), binary(HERD_TEST_WORKER_BROKEN, "TEST_WORKER_BROKEN"),
                                   binary(HERD_HERDCTL, "HERDCTL")};
    std::vector<std::string> scenarios = scenario == "both" ? std::vector<std::string>{"single", "pools"}
                                                            : std::vector<std::string>{scenario};
    const auto each = std::chrono::milliseconds(std::llround(seconds * 1000 / double(scenarios.size())));
    std::printf("herd-soak: seed %llu (replay: herd-soak --seed %llu --duration %g --scenario %s)\n",
                (unsigned long long)seed, (unsigned long long)seed, seconds, scenario.c_str());
    bool pass = true;
    std::vector<std::unique_ptr<herd::soak::Run>> runs;
    for (const std::string& s : scenarios) {
        runs.push_back(std::make_unique<herd::soak::Run>(s, each, seed, bin));
        runs.back()->execute();
    }
    std::printf("\nLegend: each action is a phase (act, wait until every pool is back at its target and the load is\n"
                "answered again). Failed requests are charged to their phase: a phase that killed a web worker\n"
                "(kill -9, /crash, /hang, a fork-failure window) explains at most one per client connection;\n"
                "any other failure is unexplained. Slopes: least squares over the samples after each action,\n"
                "within samples of the same pool sizes and standbys (their pipes are fds of the manager).\n");
    for (const auto& run : runs) pass = run->summary() && pass;
    return pass ? 0 : 1;
}
