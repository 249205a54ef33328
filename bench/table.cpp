// herd-bench's table of figures, floors and targets (table.hpp).
#include "table.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

namespace {

std::string fmt(double v, int decimals)
{
    if (std::isnan(v)) return "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

}  // namespace

Verdict judge(const Row& row, const FloorValues& f)
{
    Verdict v;
    const double floor = f.value(row.floor, row.p99) * row.scale;
    if (row.floor != Floor::none && floor > 0) v.ratio = row.value / floor;
    const bool have = !std::isnan(row.value);
    if (!std::isnan(row.max_ratio)) {
        char ratio[16];
        std::snprintf(ratio, sizeof ratio, "%g", row.max_ratio);   // 40, 1.5
        v.target = "<= " + std::string(ratio) + "x " + f.name(row.floor);
        if (row.floor != Floor::interval) v.target += row.p99 ? " p99" : " p50";
        if (row.scale != 1) v.target += " x" + std::to_string(int(row.scale));
        if (have && !std::isnan(v.ratio)) v.met = v.ratio <= row.max_ratio;
    } else if (!std::isnan(row.max_value)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "<= %g%s%s", row.max_value, row.unit.empty() ? "" : " ", row.unit.c_str());
        v.target = buf;
        if (have) v.met = row.value <= row.max_value;
    }
    return v;
}

// The table; returns how many targets were missed.
int print_table(const FloorValues& f, const std::vector<Row>& rows)
{
    std::printf("\nfloors (this run): fork + pipe round trip p50 %s ms, p99 %s ms (%zu samples); "
                "reap + pipe round trip p50 %s ms, p99 %s ms; pipe round trip p50 %s ms, p99 %s ms (%zu samples)\n\n",
                fmt(f.fork_pipe.p50, 3).c_str(), fmt(f.fork_pipe.p99, 3).c_str(), f.fork_pipe.n,
                fmt(f.floors.reap_pipe.p50, 3).c_str(), fmt(f.floors.reap_pipe.p99, 3).c_str(),
                fmt(f.floors.pipe.p50, 3).c_str(), fmt(f.floors.pipe.p99, 3).c_str(), f.floors.pipe.n);
    std::printf("%-46s %11s %10s %21s %8s   %-26s %s\n", "figure", "value", "fork+pipe", "floor", "ratio", "target", "");
    std::printf("%s\n", std::string(136, '-').c_str());
    int missed = 0;
    for (const auto& row : rows) {
        const int decimals = row.unit == "ms" || row.unit == "%" || row.unit == "x" ? 2 : row.unit.empty() ? 0 : 1;
        const std::string value = fmt(row.value, decimals) + (row.unit.empty() ? "" : " " + row.unit);
        const bool timed = row.unit == "ms";
        const std::string raw = timed ? fmt(f.fork_pipe.p50, 3) + " ms" : "-";
        std::string floor = "-";
        if (row.floor != Floor::none)
            floor = std::string(f.name(row.floor)) + (row.p99 ? " p99 " : " ") + fmt(f.value(row.floor, row.p99) * row.scale, 3) + " ms";
        const Verdict v = judge(row, f);
        const std::string ratio = std::isnan(v.ratio) ? "-" : fmt(v.ratio, 1) + "x";
        const char* verdict = !v.met ? "" : (*v.met ? "ok" : "MISSED");
        if (v.met && !*v.met) ++missed;
        std::printf("%-46s %11s %10s %21s %8s   %-26s %s\n", row.figure.c_str(), value.c_str(), raw.c_str(), floor.c_str(),
                    ratio.c_str(), v.target.c_str(), verdict);
    }
    return missed;
}

}  // namespace herd::bench
