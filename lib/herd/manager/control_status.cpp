#include <herd/manager/control_status.hpp>

#include <herd/manager/control_json.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>
#include <utility>

namespace herd::control {

namespace json = boost::json;
using detail::json_line;

namespace {

double seconds(Duration d)
{
    return double(d.count()) / 1000.0;
}

double seconds(TimePoint::duration d)
{
    return std::chrono::duration<double>(d).count();
}

std::string restart_limit_text(const Options& o)
{
    return std::to_string(o.restart_limit.count) + "/" + format_duration(o.restart_limit.window);
}

// Rollouts
json::value rolling(const PoolState& state, TimePoint now)
{
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

// Workers
// Written as text, not built as JSON values: a status of 1024 workers has 10,000 fields
void append_exits(std::string& out, const History& history, int slot, TimePoint now)
{
    out += '[';
    const auto it = history.exits.find(slot);
    if (it == history.exits.end()) {
        out += ']';
        return;
    }
    bool first = true;
    for (const ExitRecord& e : it->second) {
        if (!std::exchange(first, false)) out += ',';
        out += "{\"pid\":";
        detail::append_integer(out, e.pid);
        out += ",\"outcome\":";
        detail::append_string(out, e.outcome);
        out += ",\"ran_s\":";
        detail::append_seconds(out, seconds(e.ran));
        out += ",\"ago_s\":";
        detail::append_seconds(out, seconds(now - e.at));
        out += '}';
    }
    out += ']';
}

// The pool's workers by slot and generation, as the text of a JSON array
std::string worker_status(const PoolView& pool, TimePoint now)
{
    std::vector<const WorkerRecord*> workers;
    workers.reserve(pool.state.workers.size());
    for (const auto& w : pool.state.workers) workers.push_back(&w);
    std::sort(workers.begin(), workers.end(), [](const auto* a, const auto* b) {
        return std::pair(a->slot, a->generation) < std::pair(b->slot, b->generation);
    });
    std::string out = "[";
    out.reserve(workers.size() * 200);
    std::string pool_name;
    detail::append_string(pool_name, pool.name);
    const bool sampling = pool.options.max_worker_memory > 0;
    bool first = true;
    for (const WorkerRecord* w : workers) {
        if (!std::exchange(first, false)) out += ',';
        out += "{\"pid\":";
        detail::append_integer(out, w->pid);
        out += ",\"slot\":";
        detail::append_integer(out, w->slot);
        out += ",\"generation\":";
        detail::append_unsigned(out, w->generation);
        out += ",\"state\":";
        detail::append_string(out, state_name(*w));
        out += ",\"age_s\":";
        detail::append_seconds(out, seconds(now - w->spawned_at));
        out += ",\"heartbeat_age_s\":";
        if (w->ready()) detail::append_seconds(out, seconds(now - w->last_heartbeat));
        else out += "null";
        out += ",\"requests\":";
        detail::append_unsigned(out, w->requests);
        // Its own memory at the latest sample; null while its pool does not sample (no
        // --max-worker-memory) or before the first sample
        out += ",\"memory_bytes\":";
        if (sampling && w->memory > 0) detail::append_unsigned(out, w->memory);
        else out += "null";
        out += ",\"exits\":";
        append_exits(out, pool.history, w->slot, now);
        out += ",\"pool\":";
        out += pool_name;
        out += '}';
    }
    out += ']';
    return out;
}

// One pool
bool pool_at_target(const PoolState& state)
{
    return at_target(state) && !state.rollout;
}

std::optional<TimePoint::duration> backoff_left(const PoolState& state, TimePoint now)
{
    if (!state.backoff_until || *state.backoff_until <= now) return std::nullopt;
    return *state.backoff_until - now;
}

json::value plan_status(const PoolView& pool)
{
    const std::optional<RestartPlan>& plan = pool.supervision.plan;
    if (!plan) return nullptr;
    json::value count = "infinity";
    if (plan->count) count = *plan->count;
    json::value next = nullptr;
    if (!plan->steps.empty()) next = step_text(plan->steps[pool.position.next % plan->steps.size()]);
    return {{"steps", plan_text(*plan)}, {"count", std::move(count)}, {"next", std::move(next)}, {"run", pool.position.run}};
}

json::object pool_status(const PoolView& pool, TimePoint now)
{
    const PoolState& s = pool.state;
    json::object exits;
    for (const auto& [kind, count] : s.exits) exits[kind] = count;
    json::value backoff = nullptr;
    if (const auto left = backoff_left(s, now)) backoff = seconds(*left);
    return {
        {"name", pool.name},
        {"stage", pool.stage},
        {"restart", restart_text(pool.supervision.restart)},
        {"plan", plan_status(pool)},
        {"on_restart_limit", on_restart_limit_text(pool.supervision.on_restart_limit)},
        {"held", pool.held},
        {"generation", s.generation},
        {"target", s.target},
        {"ready", ready_count(s)},
        {"at_target", pool_at_target(s)},
        {"rollout", rolling(s, now)},
        {"exits", std::move(exits)},
        {"failures", failures_within(s, pool.options, now)},
        {"restart_limit", restart_limit_text(pool.options)},
        {"backoff_s", std::move(backoff)},
    };   // and "workers", written as text by status_answer
}

// The whole manager, in the shape of a manager of one pool
json::value rollout_now(const std::vector<PoolView>& pools, const ManagerFacts& facts, TimePoint now)
{
    unsigned generation = 0;
    unsigned last_generation = 0;
    for (const PoolView& p : pools) {
        generation = std::max(generation, p.state.generation);
        last_generation = std::max(last_generation, p.state.last_generation);
    }
    if (facts.checking)
        return {{"kind", "upgrade"}, {"state", "checking"}, {"generation", last_generation + 1},
                {"from_generation", generation}, {"elapsed_s", seconds(now - *facts.checking)}};
    for (const PoolView& p : pools)
        if (p.state.rollout) return rolling(p.state, now);
    return nullptr;
}

json::object manager_status(const std::vector<PoolView>& pools, const ManagerFacts& facts, const History& history,
                            TimePoint now)
{
    unsigned generation = 0;
    std::uint64_t target = 0;
    std::uint64_t ready = 0;
    std::uint64_t failures = 0;
    bool all_at_target = true;
    std::map<std::string, std::uint64_t> exit_counts;
    std::optional<TimePoint::duration> backoff;
    for (const PoolView& p : pools) {
        generation = std::max(generation, p.state.generation);
        target += p.state.target;
        ready += ready_count(p.state);
        failures += failures_within(p.state, p.options, now);
        all_at_target = all_at_target && pool_at_target(p.state);
        for (const auto& [kind, count] : p.state.exits) exit_counts[kind] += count;
        if (const auto left = backoff_left(p.state, now)) backoff = std::max(backoff.value_or(*left), *left);
    }
    json::object exits;
    for (const auto& [kind, count] : exit_counts) exits[kind] = count;
    json::value backoff_s = nullptr;
    if (backoff) backoff_s = seconds(*backoff);
    json::value restart_limit = nullptr;
    if (!pools.empty()) restart_limit = restart_limit_text(pools.front().options);
    return {
        {"pid", facts.pid},
        {"name", facts.name},
        {"binary", facts.binary},
        {"version", HERD_VERSION},
        {"generation", generation},
        {"target", target},
        {"ready", ready},
        {"at_target", all_at_target},
        {"phase", facts.phase == Phase::running ? "running" : "stopping"},
        {"uptime_s", seconds(now - facts.started)},
        {"rollout", rollout_now(pools, facts, now)},
        {"last_rollout", last_rollout(history, now)},
        {"rollouts", rollout_counts(history)},
        {"exits", std::move(exits)},
        {"failures", failures},
        {"restart_limit", std::move(restart_limit)},
        {"backoff_s", std::move(backoff_s)},
    };
}

std::string pool_list(const std::vector<std::string>& names)
{
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

}  // namespace

std::string status_answer(const std::vector<PoolView>& pools, const ManagerFacts& facts, const History& history,
                          TimePoint now)
{
    // Each pool's workers once as text, in `workers` and again in the pool's own "workers"
    std::vector<std::string> workers;
    for (const PoolView& p : pools) workers.push_back(worker_status(p, now));
    std::string out = "{\"ok\":true,\"manager\":" + detail::json_text(manager_status(pools, facts, history, now)) +
                      ",\"workers\":[";
    bool first = true;
    for (const std::string& w : workers) {
        if (w.size() <= 2) continue;   // "[]"
        if (!std::exchange(first, false)) out += ',';
        out.append(w, 1, w.size() - 2);
    }
    out += "],\"pools\":[";
    for (std::size_t i = 0; i < pools.size(); ++i) {
        if (i > 0) out += ',';
        std::string pool = detail::json_text(pool_status(pools[i], now));
        pool.pop_back();   // its closing brace: "workers" comes last
        out += pool;
        out += ",\"workers\":";
        out += workers[i];
        out += '}';
    }
    out += "]}\n";
    return out;
}

std::string status_answer(const PoolState& state, const Options& options, const ManagerFacts& facts,
                          const History& history, TimePoint now)
{
    // The pool's phase is the manager's; it is starting until its first worker is ready
    ManagerFacts manager = facts;
    manager.phase = state.phase;
    const std::string_view stage = state.phase != Phase::running ? "stopping" : state.ever_ready ? "running" : "starting";
    const PoolView main{.name = "main", .state = state, .options = options, .history = history, .stage = stage};
    return status_answer(std::vector<PoolView>{main}, manager, history, now);
}

std::string pool_answer(const PoolView& pool)
{
    return json_line({{"ok", true},
                      {"pool", pool.name},
                      {"stage", pool.stage},
                      {"generation", pool.state.generation},
                      {"target", pool.state.target},
                      {"ready", ready_count(pool.state)}});
}

std::string plan_answer(const PoolView& pool)
{
    return json_line({{"ok", true},
                      {"pool", pool.name},
                      {"restart", restart_text(pool.supervision.restart)},
                      {"plan", plan_status(pool)},
                      {"on_restart_limit", on_restart_limit_text(pool.supervision.on_restart_limit)},
                      {"restart_limit", restart_limit_text(pool.options)},
                      {"held", pool.held}});
}

std::string_view restart_text(RestartType type)
{
    switch (type) {
    case RestartType::permanent: return "permanent";
    case RestartType::transient: return "transient";
    case RestartType::temporary: return "temporary";
    }
    return "permanent";
}

std::string_view on_restart_limit_text(OnRestartLimit what)
{
    switch (what) {
    case OnRestartLimit::backoff: return "backoff";
    case OnRestartLimit::wait: return "wait";
    case OnRestartLimit::stop: return "stop";
    }
    return "backoff";
}

std::string step_text(const PlanStep& step)
{
    switch (step.kind) {
    case PlanStep::Kind::restart: {
        if (step.delay.count() == 0) return "restart";
        // "5s", "250ms", "1.5s": the config file's spelling, without format_duration's space
        std::string delay = format_duration(step.delay);
        std::erase(delay, ' ');
        return "restart " + delay;
    }
    case PlanStep::Kind::wait: return "wait";
    case PlanStep::Kind::stop: return "stop";
    case PlanStep::Kind::close: return "delete";
    }
    return "restart";
}

std::string plan_text(const RestartPlan& plan)
{
    std::string out;
    for (const PlanStep& step : plan.steps) out += (out.empty() ? "" : ", ") + step_text(step);
    return out;
}

std::variant<std::size_t, std::string> pick_pool(const Request& request, const std::vector<std::string>& names)
{
    if (request.pool) {
        const auto it = std::find(names.begin(), names.end(), *request.pool);
        if (it != names.end()) return std::size_t(it - names.begin());
        return "unknown pool '" + *request.pool + "' (this manager runs " + pool_list(names) + ")";
    }
    if (names.size() == 1) return std::size_t{0};
    return std::string(to_string(request.command)) + " needs a pool: this manager runs " + pool_list(names);
}

}  // namespace herd::control
