// herdctl metrics: the status answer as OpenMetrics text. Every per-pool and per-worker sample is
// labelled pool="NAME"; the answer of a manager before pools (no "pools") gives no pool label.
#include "herdctl_core.hpp"
#include "herdctl_fields.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace herdctl {

namespace json = boost::json;

namespace {

// OpenMetrics: each family's metadata, then its samples
struct Family {
    std::string_view name;   // a counter's family name has no _total; its samples do
    std::string_view type;   // "gauge" or "counter"
    std::string_view help;
};

using Labels = std::vector<std::pair<std::string_view, std::string>>;

class Exposition {
public:
    void family(const Family& f)
    {
        family_ = f;
        out_ += fmt::format("# TYPE {} {}\n", f.name, f.type);
        if (f.name.ends_with("_seconds")) out_ += fmt::format("# UNIT {} seconds\n", f.name);
        if (f.name.ends_with("_bytes")) out_ += fmt::format("# UNIT {} bytes\n", f.name);
        out_ += fmt::format("# HELP {} {}\n", f.name, escape_label_value(f.help));
    }

    void sample(const Labels& labels, double value)
    {
        out_ += family_.name;
        if (family_.type == "counter") out_ += "_total";
        std::vector<std::string> pairs;
        for (const auto& [name, text] : labels) pairs.push_back(fmt::format("{}=\"{}\"", name, escape_label_value(text)));
        if (!pairs.empty()) out_ += fmt::format("{{{}}}", fmt::join(pairs, ","));
        out_ += fmt::format(" {}\n", value);
    }

    std::string finish() const { return out_ + "# EOF\n"; }

private:
    Family family_;
    std::string out_;
};

/// One pool's part of the status answer: its name (none from a manager before pools), the object
/// with its counters (a pool, or the manager of old) and its workers.
struct Pool {
    std::optional<std::string> name;
    const json::object& fields;
    const json::array& workers;
};

std::vector<Pool> pools_of(const json::object& answer)
{
    if (!answer.contains("pools")) return {{std::nullopt, object_field(answer, "manager"), array_field(answer, "workers")}};
    std::vector<Pool> pools;
    for (const json::value& v : array_field(answer, "pools")) {
        const json::object& p = element(v, "pools");
        pools.push_back({text_field(p, "name"), p, array_field(p, "workers")});
    }
    return pools;
}

/// `labels`, after pool="NAME" when the pool has a name.
Labels with_pool(const Pool& pool, Labels labels)
{
    if (pool.name) labels.insert(labels.begin(), {"pool", *pool.name});
    return labels;
}

Labels worker_labels(const Pool& pool, const json::object& w)
{
    return with_pool(pool, {{"slot", integer_text(w, "slot")}, {"pid", integer_text(w, "pid")},
                            {"generation", integer_text(w, "generation")}});
}

void pool_metrics(Exposition& e, const std::vector<Pool>& pools, const json::object& m)
{
    // Every state, counted or not, so that a dashboard sees zeros
    e.family({"herd_workers", "gauge", "Workers by state."});
    for (const Pool& pool : pools) {
        std::map<std::string, int> by_state{{"booting", 0}, {"ready", 0}, {"retiring", 0}, {"killed", 0}};
        for (const json::value& w : pool.workers) ++by_state[text_field(element(w, "workers"), "state")];
        for (const auto& [state, count] : by_state) e.sample(with_pool(pool, {{"state", state}}), count);
    }
    e.family({"herd_target_workers", "gauge", "The number of ready workers the manager keeps."});
    for (const Pool& pool : pools) e.sample(with_pool(pool, {}), number<double>(pool.fields, "target"));
    e.family({"herd_generation", "gauge", "The generation new workers get."});
    for (const Pool& pool : pools) e.sample(with_pool(pool, {}), number<double>(pool.fields, "generation"));
    e.family({"herd_uptime_seconds", "gauge", "Time since the manager started."});
    e.sample({}, number<double>(m, "uptime_s"));
}

void exit_metrics(Exposition& e, const std::vector<Pool>& pools)
{
    e.family({"herd_worker_exits", "counter", "Worker exits by reason."});
    for (const Pool& pool : pools) {
        const json::object& exits = object_field(pool.fields, "exits");
        for (const auto& kv : exits)
            e.sample(with_pool(pool, {{"reason", std::string(kv.key())}}), number<double>(exits, kv.key()));
    }
    e.family({"herd_restart_failures", "gauge", "Unexpected worker exits within the restart window."});
    for (const Pool& pool : pools) e.sample(with_pool(pool, {}), number<double>(pool.fields, "failures"));
}

void worker_metrics(Exposition& e, const std::vector<Pool>& pools)
{
    e.family({"herd_worker_heartbeat_age_seconds", "gauge", "Time since the worker's last heartbeat."});
    for (const Pool& pool : pools)
        for (const json::value& v : pool.workers) {
            const json::object& w = element(v, "workers");
            if (const std::optional<double> age = optional_number(w, "heartbeat_age_s")) e.sample(worker_labels(pool, w), *age);
        }
    e.family({"herd_worker_requests", "counter", "Requests the worker has served."});
    for (const Pool& pool : pools)
        for (const json::value& v : pool.workers) {
            const json::object& w = element(v, "workers");
            e.sample(worker_labels(pool, w), number<double>(w, "requests"));
        }
    // Only the workers of a pool that samples (--max-worker-memory), once sampled
    e.family({"herd_worker_memory_bytes", "gauge", "The worker's own memory (private) at the latest sample."});
    for (const Pool& pool : pools)
        for (const json::value& v : pool.workers) {
            const json::object& w = element(v, "workers");
            if (!w.contains("memory_bytes")) continue;   // a manager that does not say
            if (const std::optional<double> bytes = optional_number(w, "memory_bytes")) e.sample(worker_labels(pool, w), *bytes);
        }
}

void rollout_metrics(Exposition& e, const json::object& m)
{
    const json::object& rollouts = object_field(m, "rollouts");
    e.family({"herd_rollouts", "counter", "Finished reloads and upgrades by result."});
    for (const auto& kind : rollouts) {
        const json::object& results = object_field(rollouts, kind.key());
        for (const auto& result : results)
            e.sample({{"kind", std::string(kind.key())}, {"result", std::string(result.key())}},
                     number<double>(results, result.key()));
    }
}

}  // namespace

std::string render_metrics(const json::object& answer)
{
    const json::object& m = object_field(answer, "manager");
    const std::vector<Pool> pools = pools_of(answer);
    Exposition e;
    pool_metrics(e, pools, m);
    exit_metrics(e, pools);
    worker_metrics(e, pools);
    rollout_metrics(e, m);
    return e.finish();
}

std::string escape_label_value(std::string_view value)
{
    std::string out;
    for (const char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

}  // namespace herdctl
