// What herd-bench's parts share (bench.hpp).
#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

#ifndef HERD_TEST_WORKER
#define HERD_TEST_WORKER ""
#endif

#ifndef HERD_HELLO_HTTP
#define HERD_HELLO_HTTP ""
#endif

std::string test_worker() { return binary("TEST_WORKER", HERD_TEST_WORKER); }
std::string hello_http() { return binary("HELLO_HTTP", HERD_HELLO_HTTP); }

// Percentiles

Stats stats(std::vector<double> v)
{
    Stats s;
    s.n = v.size();
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
        return v[std::min(i, v.size() - 1)];
    };
    s.p50 = at(0.50);
    s.p99 = at(0.99);
    s.max = v.back();
    return s;
}

double ms_between(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Keep reading a server's output for `d` (the manager must never block on a full pipe).
void drain_for(Process& p, Clock::duration d)
{
    const auto until = Clock::now() + d;
    while (Clock::now() < until) p.pump(milliseconds(50));
}

std::vector<std::string> server_args(unsigned workers, std::vector<std::string> extra)
{
    std::vector<std::string> args{test_worker(), "-w", std::to_string(workers), "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace herd::bench
