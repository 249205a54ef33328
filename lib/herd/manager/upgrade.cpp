#include <herd/manager/upgrade.hpp>

#include <herd/core/text.hpp>
#include <herd/manager/upgrade_text.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <unistd.h>

namespace herd {

namespace detail {

std::int64_t ns(TimePoint t)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint at(std::int64_t value)
{
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(value)));
}

std::string opt_ns(const std::optional<TimePoint>& t)
{
    return t ? std::to_string(ns(*t)) : "-";
}

std::optional<TimePoint> opt_at(const std::string& text)
{
    if (text == "-") return std::nullopt;
    return at(number(text));
}

std::int64_t number(std::string_view text)
{
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument("'" + printable(text, 64) + "' is not a number");
    return value;
}

std::string rest_of(std::istringstream& in)
{
    std::string rest;
    std::getline(in >> std::ws, rest);
    return rest;
}

std::string replaced(std::string text, char from, char to)
{
    std::replace(text.begin(), text.end(), from, to);
    return text;
}

constexpr Reason all_reasons[] = {Reason::none,         Reason::scale_down,         Reason::max_age,
                                  Reason::max_requests, Reason::reload,       Reason::upgrade,
                                  Reason::shutdown,     Reason::no_heartbeat, Reason::boot_timeout,
                                  Reason::graceful_timeout, Reason::kill_timeout, Reason::bad_heartbeat,
                                  Reason::max_memory,   Reason::restart};

std::string reason_key(Reason r)
{
    // The record keeps the spelling every released binary reads: a scale-down was "TTOU" there.
    if (r == Reason::scale_down) return "TTOU";
    return replaced(to_string(r), ' ', '_');
}

Reason reason_from(const std::string& key)
{
    for (Reason r : all_reasons)
        if (reason_key(r) == key) return r;
    throw std::invalid_argument("unknown reason '" + printable(key) + "'");
}

const char* phase_key(Phase phase)
{
    switch (phase) {
    case Phase::running: return "running";
    case Phase::stopping_graceful: return "stopping_graceful";
    case Phase::stopping_fast: return "stopping_fast";
    }
    return "running";
}

Phase phase_from(const std::string& key)
{
    for (Phase p : {Phase::running, Phase::stopping_graceful, Phase::stopping_fast})
        if (key == phase_key(p)) return p;
    throw std::invalid_argument("unknown phase '" + printable(key) + "'");
}

PoolStage stage_from(const std::string& key)
{
    for (PoolStage s : {PoolStage::waiting, PoolStage::starting, PoolStage::running, PoolStage::stopping,
                        PoolStage::stopped, PoolStage::failed})
        if (key == to_string(s)) return s;
    throw std::invalid_argument("unknown stage '" + printable(key) + "'");
}

void write_counts(std::ostream& out, const char* key, const std::map<std::string, std::uint64_t>& counts)
{
    for (const auto& [name, n] : counts) out << key << " " << replaced(name, ' ', '_') << " " << n << "\n";
}

void read_count(std::istream& in, std::map<std::string, std::uint64_t>& counts)
{
    std::string name;
    std::uint64_t n = 0;
    in >> name >> n;
    counts[replaced(name, '_', ' ')] = n;
}

}  // namespace detail

bool can_adopt(unsigned version)
{
    return version >= 1 && version <= handover_version;
}

HandoverPool handover_pool(const Pool& pool, std::vector<Listener> listeners)
{
    return HandoverPool{.name = pool.name,
                        .state = pool.state,
                        .stage = pool.stage,
                        .reported = pool.reported,
                        .wanted = pool.wanted,
                        .step = pool.step,
                        .runs = pool.runs,
                        .last_restart = pool.last_restart,
                        .restart_pending = pool.restart_pending,
                        .why = pool.why,
                        .listeners = std::move(listeners)};
}

void adopt_pool(Pool& pool, const HandoverPool& from)
{
    // make_pool set backs_off from this image's supervision; a failed pool asks for nothing more.
    const bool backs_off = pool.state.backs_off && from.stage != PoolStage::failed;
    pool.state = from.state;
    pool.state.rollout.reset();
    pool.state.backs_off = backs_off;
    pool.stage = from.stage;
    pool.reported = from.reported;
    pool.wanted = from.wanted;
    pool.last_restart = from.last_restart;
    pool.restart_pending = from.restart_pending;
    pool.why = from.why;
    // The plan is this configuration's: a position it does not have (a shorter plan, or none) would
    // index past its steps, so the plan starts over.
    const auto& plan = pool.supervision.plan;
    const bool fits = plan && from.step < plan->steps.size();
    pool.step = fits ? from.step : 0;
    pool.runs = fits ? from.runs : 0;
}

std::vector<std::string> preflight_args(const std::vector<std::string>& argv, unsigned version)
{
    std::vector<std::string> args(argv.begin() + (argv.empty() ? 0 : 1), argv.end());
    // The parser splits at the first "--" (options.cpp), and so does this.
    const auto dashes = std::find(args.begin(), args.end(), "--");
    args.insert(dashes, {"--check", "--adopt-check", std::to_string(version)});
    return args;
}

std::string resolve_binary(const std::string& argv0)
{
    namespace fs = std::filesystem;
    if (argv0.find('/') != std::string::npos) return fs::absolute(argv0).lexically_normal().string();
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t pos = 0;
    while (pos <= dirs.size()) {
        const auto colon = std::min(dirs.find(':', pos), dirs.size());
        const std::string dir = dirs.substr(pos, colon - pos);
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / argv0;
        if (::access(candidate.c_str(), X_OK) == 0) return fs::absolute(candidate).lexically_normal().string();
        pos = colon + 1;
    }
    return argv0;
}

}  // namespace herd
