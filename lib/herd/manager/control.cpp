#include <herd/manager/control.hpp>

#include <herd/core/text.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <limits>

namespace herd::control {

namespace json = boost::json;

namespace {

constexpr std::pair<Op, std::string_view> op_names[] = {
    {Op::status, "status"}, {Op::scale, "scale"}, {Op::reload, "reload"}, {Op::upgrade, "upgrade"}, {Op::stop, "stop"},
};

double seconds(Duration d)
{
    return double(d.count()) / 1000.0;
}

double seconds(TimePoint::duration d)
{
    return std::chrono::duration<double>(d).count();
}

// A JSON integer that fits an int, or nothing (1.5, "8", 1e100 are not integers).
std::optional<std::int64_t> integer(const json::value& v)
{
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        return std::int64_t(v.as_uint64());
    return std::nullopt;
}

std::string restart_limit_text(const Options& o)
{
    return std::to_string(o.restart_limit.count) + "/" + format_duration(o.restart_limit.window);
}

json::value rollout_now(const PoolState& state, const ManagerFacts& facts, TimePoint now)
{
    if (facts.checking)
        return {{"kind", "upgrade"}, {"state", "checking"}, {"generation", state.last_generation + 1},
                {"from_generation", state.generation}, {"elapsed_s", seconds(now - *facts.checking)}};
    if (!state.rollout) return nullptr;
    const Rollout& r = *state.rollout;
    return {{"kind", herd::to_string(r.kind)}, {"state", "rolling"}, {"generation", state.generation},
            {"from_generation", r.from_generation}, {"elapsed_s", seconds(now - r.started)}};
}

json::value last_rollout(const History& history, TimePoint now)
{
    if (!history.last_rollout) return nullptr;
    const RolloutRecord& r = *history.last_rollout;
    return {{"kind", herd::to_string(r.kind)}, {"generation", r.generation}, {"result", r.failed ? "failed" : "complete"},
            {"why", r.why}, {"ago_s", seconds(now - r.at)}};
}

json::object rollout_counts(const History& history)
{
    json::object out;
    for (std::string_view kind : {"upgrade", "reload"}) {
        json::object counts;
        for (std::string_view result : {"complete", "failed"}) {
            const auto it = history.rollouts.find(std::string(kind) + " " + std::string(result));
            counts[result] = it == history.rollouts.end() ? 0 : it->second;
        }
        out[kind] = std::move(counts);
    }
    return out;
}

json::object manager_status(const PoolState& state, const Options& options, const ManagerFacts& facts,
                            const History& history, TimePoint now)
{
    json::object exits;
    for (const auto& [kind, count] : state.exits) exits[kind] = count;
    json::value backoff = nullptr;
    if (state.backoff_until && *state.backoff_until > now) backoff = seconds(*state.backoff_until - now);
    return {
        {"pid", facts.pid},
        {"name", facts.name},
        {"binary", facts.binary},
        {"version", HERD_VERSION},
        {"generation", state.generation},
        {"target", state.target},
        {"ready", ready_count(state)},
        {"at_target", at_target(state) && !state.rollout},
        {"phase", state.phase == Phase::running ? "running" : "stopping"},
        {"uptime_s", seconds(now - facts.started)},
        {"rollout", rollout_now(state, facts, now)},
        {"last_rollout", last_rollout(history, now)},
        {"rollouts", rollout_counts(history)},
        {"exits", std::move(exits)},
        {"failures", failures_within(state, options, now)},
        {"restart_limit", restart_limit_text(options)},
        {"backoff_s", std::move(backoff)},
    };
}

json::array slot_exits(const History& history, int slot, TimePoint now)
{
    json::array out;
    const auto it = history.exits.find(slot);
    if (it == history.exits.end()) return out;
    for (const ExitRecord& e : it->second)
        out.push_back({{"pid", e.pid}, {"outcome", e.outcome}, {"ran_s", seconds(e.ran)}, {"ago_s", seconds(now - e.at)}});
    return out;
}

json::array worker_status(const PoolState& state, const History& history, TimePoint now)
{
    std::vector<const WorkerRecord*> workers;
    for (const auto& w : state.workers) workers.push_back(&w);
    std::sort(workers.begin(), workers.end(), [](const auto* a, const auto* b) {
        return std::pair(a->slot, a->generation) < std::pair(b->slot, b->generation);
    });
    json::array out;
    for (const WorkerRecord* w : workers) {
        json::value beat = nullptr;
        if (w->ready()) beat = seconds(now - w->last_heartbeat);
        out.push_back({{"pid", w->pid},
                       {"slot", w->slot},
                       {"generation", w->generation},
                       {"state", state_name(*w)},
                       {"age_s", seconds(now - w->spawned_at)},
                       {"heartbeat_age_s", std::move(beat)},
                       {"requests", w->requests},
                       {"exits", slot_exits(history, w->slot, now)}});
    }
    return out;
}

// Like json::serialize, but seconds print as 0.639, not 6.39E-1: people read --json output too.
void write_json(std::string& out, const json::value& v)
{
    switch (v.kind()) {
    case json::kind::double_: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", v.get_double());
        out += buf;
        break;
    }
    case json::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& [key, value] : v.get_object()) {
            if (!std::exchange(first, false)) out += ',';
            out += json::serialize(json::string_view(key));
            out += ':';
            write_json(out, value);
        }
        out += '}';
        break;
    }
    case json::kind::array: {
        out += '[';
        bool first = true;
        for (const auto& value : v.get_array()) {
            if (!std::exchange(first, false)) out += ',';
            write_json(out, value);
        }
        out += ']';
        break;
    }
    default: out += json::serialize(v);
    }
}

// A piece of the client's request inside an error sentence: one printable line, bounded, since
// the sentence is logged as well as answered.
std::string quoted(std::string_view piece)
{
    return printable(piece, 64);
}

std::string text_of(const json::value& v)
{
    std::string out;
    write_json(out, v);
    return out;
}

std::string line(const json::value& v)
{
    return text_of(v) + "\n";
}

}  // namespace

std::string_view to_string(Op op)
{
    for (const auto& [o, name] : op_names)
        if (o == op) return name;
    return "unknown";
}

std::optional<Op> op_from(std::string_view name)
{
    for (const auto& [o, n] : op_names)
        if (n == name) return o;
    return std::nullopt;
}

std::variant<Request, std::string> parse_request(std::string_view text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    boost::system::error_code ec;
    const json::value v = json::parse(text, ec);
    if (ec) return "malformed request (not JSON: " + ec.message() + ")";
    if (!v.is_object()) return std::string("malformed request: expected a JSON object");
    const json::object& o = v.as_object();
    const auto* command = o.if_contains("command");
    if (!command) return std::string("malformed request: no \"command\"");
    if (!command->is_string()) return std::string("malformed request: \"command\" must be a string");
    const std::string_view name = command->as_string();
    const auto op = op_from(name);
    if (!op)
        return "unknown command '" + quoted(name) + "' (status, scale, reload, upgrade or stop)";

    Request r;
    r.op = *op;
    for (const auto& [key, value] : o) {
        if (key == "command") continue;
        if (r.op == Op::scale && (key == "workers" || key == "delta")) {
            const auto n = integer(value);
            if (!n) return "invalid value " + quoted(text_of(value)) + " for \"" + quoted(key) + "\": not an integer";
            if (key == "workers") {
                if (*n < 0 || *n > max_workers)
                    return "invalid value " + std::to_string(*n) + " for \"workers\": must be 0 to " +
                           std::to_string(max_workers);
                r.workers = unsigned(*n);
            } else {
                if (*n < -std::int64_t(max_workers) || *n > std::int64_t(max_workers))
                    return "invalid value " + std::to_string(*n) + " for \"delta\": must be within ±" +
                           std::to_string(max_workers);
                r.delta = int(*n);
            }
        } else if (r.op == Op::stop && key == "graceful") {
            if (!value.is_bool()) return "invalid value " + quoted(text_of(value)) + " for \"graceful\": not true or false";
            r.graceful = value.as_bool();
        } else {
            return "unknown key \"" + quoted(key) + "\" for " + std::string(name);
        }
    }
    if (r.op == Op::scale && r.workers.has_value() == o.contains("delta"))
        return std::string("scale needs either \"workers\" (exact) or \"delta\" (relative)");
    return r;
}

std::string error_answer(std::string_view why)
{
    return line({{"ok", false}, {"error", why}});
}

void History::add(int slot, ExitRecord exit)
{
    auto& list = exits[slot];
    list.push_front(std::move(exit));
    if (list.size() > exits_per_slot) list.pop_back();
}

void History::add(RolloutRecord rollout)
{
    ++rollouts[herd::to_string(rollout.kind) + (rollout.failed ? " failed" : " complete")];
    last_rollout = std::move(rollout);
}

std::string status_answer(const PoolState& state, const Options& options, const ManagerFacts& facts,
                          const History& history, TimePoint now)
{
    return line({{"ok", true},
                 {"manager", manager_status(state, options, facts, history, now)},
                 {"workers", worker_status(state, history, now)}});
}

std::string scale_answer(const PoolState& state)
{
    return line({{"ok", true}, {"target", state.target}, {"ready", ready_count(state)}});
}

std::string rollout_answer(Reason kind, unsigned generation, Duration took)
{
    return line({{"ok", true}, {"kind", herd::to_string(kind)}, {"generation", generation}, {"took_ms", took.count()}});
}

std::string stop_answer(int exit_code)
{
    return line({{"ok", true}, {"exit_code", exit_code}});
}

std::optional<TimePoint> deadline(Stage stage, TimePoint since, const Limits& limits)
{
    switch (stage) {
    case Stage::idle: return since + limits.idle_timeout;
    case Stage::reading:
    case Stage::writing: return since + limits.request_timeout;
    case Stage::waiting: return std::nullopt;
    }
    return std::nullopt;
}

std::string timeout_reason(Stage stage, const Limits& limits)
{
    switch (stage) {
    case Stage::idle: return "idle for " + format_duration(limits.idle_timeout);
    case Stage::reading: return "a request line was not complete within " + format_duration(limits.request_timeout);
    case Stage::writing: return "an answer was not read within " + format_duration(limits.request_timeout);
    case Stage::waiting: break;
    }
    return "waiting";
}

std::optional<std::uint64_t> make_room(const std::vector<Connection>& open)
{
    // Stuck first (a slow or hostile client), then idle (a client that may come back), oldest first
    const auto rank = [](const Connection& c) { return c.stage == Stage::idle ? 1 : 0; };
    const Connection* victim = nullptr;
    for (const Connection& c : open) {
        if (c.stage == Stage::waiting) continue;
        if (!victim || std::pair(rank(c), c.since) < std::pair(rank(*victim), victim->since)) victim = &c;
    }
    if (!victim) return std::nullopt;
    return victim->id;
}

bool LogBudget::allow(TimePoint now)
{
    if (now >= window_ + period_) {
        window_ = now;
        used_ = 0;
    }
    if (used_ < burst_) {
        ++used_;
        return true;
    }
    ++suppressed_;
    return false;
}

std::optional<TimePoint> LogBudget::report_at() const
{
    if (suppressed_ == 0) return std::nullopt;
    return window_ + period_;
}

std::uint64_t LogBudget::take_suppressed(TimePoint now)
{
    if (suppressed_ == 0 || now < window_ + period_) return 0;
    return std::exchange(suppressed_, 0);
}

}  // namespace herd::control
