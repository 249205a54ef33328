// herdctl's answer side: what to print for the manager's answer, and how to exit.
#include "herdctl_core.hpp"
#include "herdctl_fields.hpp"

#include <herd/config/options.hpp>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>

namespace herdctl {

namespace json = boost::json;

namespace {

// Text pieces shared by status, ready and the done lines
std::string workers_ready(const json::object& o)
{
    const auto target = number<std::int64_t>(o, "target");
    return fmt::format("{} of {} worker{} ready", number<std::int64_t>(o, "ready"), target, target == 1 ? "" : "s");
}

std::string ago(const json::object& o, std::string_view key)
{
    return human_duration(number<double>(o, key)) + " ago";
}

/// "upgrade to generation 3 (from 2), rolling for 1.2s"; a check not yet timed has no "for".
std::string rollout_text(const json::object& r)
{
    const std::optional<double> elapsed = optional_number(r, "elapsed_s");
    return fmt::format("{} to generation {} (from {}), {}{}", text_field(r, "kind"), integer_text(r, "generation"),
                       integer_text(r, "from_generation"), text_field(r, "state"),
                       elapsed ? " for " + human_duration(*elapsed) : "");
}

/// "upgrade to generation 3 failed 2m ago: why"
std::string last_rollout_text(const json::object& r)
{
    const std::string why = text_field(r, "why");
    return fmt::format("{} to generation {} {} {}{}", text_field(r, "kind"), integer_text(r, "generation"),
                       text_field(r, "result"), ago(r, "ago_s"), why.empty() ? "" : ": " + why);
}

// Status: the manager's lines, each only when it has something to say
std::string manager_line(const json::object& m)
{
    return fmt::format("manager {} ({}): {}, generation {}, {}, up {}\n", integer_text(m, "pid"), text_field(m, "name"),
                       text_field(m, "phase"), integer_text(m, "generation"), workers_ready(m),
                       human_duration(number<double>(m, "uptime_s")));
}

std::string rollout_lines(const json::object& m)
{
    std::string out;
    if (const json::object* r = optional_object(m, "rollout")) out += "rollout: " + rollout_text(*r) + "\n";
    if (const json::object* r = optional_object(m, "last_rollout")) out += "last rollout: " + last_rollout_text(*r) + "\n";
    return out;
}

std::string exits_line(const json::object& m)
{
    const json::object& exits = object_field(m, "exits");
    std::vector<std::string> parts;
    for (const auto& kv : exits) parts.push_back(fmt::format("{} {}", std::string_view(kv.key()), integer_text(exits, kv.key())));
    return parts.empty() ? "" : fmt::format("exits: {}\n", fmt::join(parts, ", "));
}

std::string restarts_line(const json::object& m)
{
    const auto failures = number<std::int64_t>(m, "failures");
    const std::optional<double> backoff = optional_number(m, "backoff_s");
    if (failures == 0 && !backoff) return "";
    std::string line = fmt::format("restarts: {} failure{} in the window (limit {})", failures, failures == 1 ? "" : "s",
                                   text_field(m, "restart_limit"));
    if (backoff) line += ", spawning resumes in " + human_duration(*backoff);
    return line + "\n";
}

// Status: the workers table
using Row = std::vector<std::string>;

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
std::string align(const std::vector<Row>& rows)
{
    std::vector<std::size_t> widths;
    for (const Row& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string out;
    for (const Row& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            out += row[i];
            if (i + 1 < row.size()) out.append(widths[i] - row[i].size() + 2, ' ');
        }
        out += '\n';
    }
    return out;
}

/// The newest exit in the worker's slot: "crashed (signal 9), 5m ago".
std::string last_exit(const json::object& w)
{
    const json::array& exits = array_field(w, "exits");
    if (exits.empty()) return "-";
    const json::object& newest = element(exits.front(), "exits");
    return text_field(newest, "outcome") + ", " + ago(newest, "ago_s");
}

/// A worker's own memory at the latest sample: none while its pool does not sample (null), or
/// from a manager that does not say (no field).
std::optional<std::uint64_t> worker_memory(const json::object& w)
{
    const json::value* v = w.if_contains("memory_bytes");
    if (!v || v->is_null()) return std::nullopt;
    return number<std::uint64_t>(w, "memory_bytes");
}

Row worker_row(const json::object& w, bool memory)
{
    const std::optional<double> heartbeat = optional_number(w, "heartbeat_age_s");
    Row row{integer_text(w, "slot"),
            integer_text(w, "pid"),
            integer_text(w, "generation"),
            text_field(w, "state"),
            human_duration(number<double>(w, "age_s")),
            heartbeat ? human_duration(*heartbeat) + " ago" : "-",
            integer_text(w, "requests")};
    if (memory) {
        const auto bytes = worker_memory(w);
        row.push_back(bytes ? herd::format_size(*bytes) : "-");
    }
    row.push_back(last_exit(w));
    return row;
}

std::string workers_table(const json::array& workers)
{
    if (workers.empty()) return "no workers\n";
    // MEMORY when a worker has a sample (its pool runs with --max-worker-memory)
    const bool memory = std::any_of(workers.begin(), workers.end(),
                                    [](const json::value& w) { return worker_memory(element(w, "workers")).has_value(); });
    Row head{"SLOT", "PID", "GEN", "STATE", "AGE", "HEARTBEAT", "REQUESTS"};
    if (memory) head.push_back("MEMORY");
    head.push_back("LAST EXIT");
    std::vector<Row> rows{head};
    for (const json::value& w : workers) rows.push_back(worker_row(element(w, "workers"), memory));
    return align(rows);
}

// Status of several pools: the manager, then a section per pool
/// "\"restart, restart 5s, wait\" (run 2 of 3, next: restart 5s)"
std::string plan_summary(const json::object& plan)
{
    const json::value& count = field(plan, "count");
    const std::string runs = count.is_string() ? text_field(plan, "count") : integer_text(plan, "count");
    std::string text = fmt::format("\"{}\" (run {} of {}", text_field(plan, "steps"), integer_text(plan, "run"), runs);
    if (!field(plan, "next").is_null()) text += ", next: " + text_field(plan, "next");
    return text + ")";
}

/// "1 slot held until herdctl restart web", or nothing.
std::string held_text(const json::object& o, const std::string& pool)
{
    const auto held = number<std::int64_t>(o, "held");
    if (held == 0) return "";
    return fmt::format("{} slot{} held until herdctl restart {}", held, held == 1 ? "" : "s", pool);
}

std::string pool_section(const json::object& p)
{
    const std::string name = text_field(p, "name");
    std::string out = fmt::format("pool {}: {}, {}, {}", name, text_field(p, "stage"), workers_ready(p), text_field(p, "restart"));
    if (const json::object* plan = optional_object(p, "plan")) out += ", plan " + plan_summary(*plan);
    out += "\n";
    if (const std::string held = held_text(p, name); !held.empty()) out += held + "\n";
    if (const json::object* r = optional_object(p, "rollout")) out += "rollout: " + rollout_text(*r) + "\n";
    return out + exits_line(p) + restarts_line(p) + workers_table(array_field(p, "workers"));
}

std::string render_pools(const json::object& answer, const json::array& pools)
{
    const json::object& m = object_field(answer, "manager");
    std::string out = manager_line(m);
    // A pool's rollout is in its section; the pre-flight check of an upgrade is the manager's
    if (const json::object* r = optional_object(m, "rollout"); r && text_field(*r, "state") == "checking")
        out += "rollout: " + rollout_text(*r) + "\n";
    if (const json::object* r = optional_object(m, "last_rollout")) out += "last rollout: " + last_rollout_text(*r) + "\n";
    for (const json::value& p : pools) out += "\n" + pool_section(element(p, "pools"));
    return out;
}

/// plan POOL: "web: transient, plan \"restart, wait\" (run 1 of 3, next: restart)"
std::string plan_line(const json::object& answer)
{
    const std::string pool = text_field(answer, "pool");
    std::string line = pool + ": " + text_field(answer, "restart");
    if (const json::object* plan = optional_object(answer, "plan"))
        line += ", plan " + plan_summary(*plan);
    else
        line += fmt::format(", no plan: past the restart limit ({}), {}", text_field(answer, "restart_limit"),
                            text_field(answer, "on_restart_limit"));
    if (const std::string held = held_text(answer, pool); !held.empty()) line += "; " + held;
    return line;
}

// Answers
Outcome failure(std::string_view message)
{
    return {exit_failure, "", error_line(message)};
}

std::string render(Command command, const json::object& answer)
{
    if (command == Command::status) return render_status(answer);
    if (command == Command::metrics) return render_metrics(answer);
    return render_done(command, answer) + "\n";
}

Outcome show(const Request& request, const json::object& answer, std::string_view line)
{
    // --json prints the answer line as it came: the way out when the text does not say enough
    const std::string as_json = std::string(line) + "\n";
    if (request.command == Command::ready) {
        const Readiness r = readiness(answer);
        if (!r.ready) return {exit_failure, request.json ? as_json : "", error_line(r.line)};
        return {exit_ok, request.json ? as_json : r.line + "\n", ""};
    }
    return {exit_ok, request.json ? as_json : render(request.command, answer), ""};
}

}  // namespace

Outcome interpret(const Request& request, std::string_view answer_line)
{
    try {
        const json::object answer = parse_answer(answer_line);
        if (!bool_field(answer, "ok")) return failure(text_field(answer, "error"));
        return show(request, answer, answer_line);
    } catch (const std::exception& e) {
        return failure(fmt::format("malformed answer from the manager: {}", e.what()));
    }
}

std::string render_status(const json::object& answer)
{
    // A manager of this version groups by pool; one before it sent no "pools"
    if (answer.contains("pools")) return render_pools(answer, array_field(answer, "pools"));
    const json::object& m = object_field(answer, "manager");
    return manager_line(m) + rollout_lines(m) + exits_line(m) + restarts_line(m) + "\n" +
           workers_table(array_field(answer, "workers"));
}

std::string render_done(Command command, const json::object& answer)
{
    // The answers about one pool name it
    const std::string pool = answer.contains("pool") ? text_field(answer, "pool") : "";
    switch (command) {
    case Command::scale:
        return (pool.empty() ? "scaled: " : "scaled " + pool + ": ") + workers_ready(answer);
    case Command::reload:
    case Command::upgrade:
        return fmt::format("{} complete: generation {} in {}", command_name(command), integer_text(answer, "generation"),
                           human_duration(number<double>(answer, "took_ms") / 1000));
    case Command::stop:
        if (!pool.empty()) return "stopped " + pool;
        return "manager stopped (exit code " + integer_text(answer, "exit_code") + ")";
    case Command::restart: {
        // In order, so that a malformed answer names its first missing field
        std::string line = "restarted " + text_field(answer, "pool");
        line += ": generation " + integer_text(answer, "generation");
        return line + ", " + workers_ready(answer);
    }
    case Command::start: {
        std::string line = "started " + text_field(answer, "pool");
        return line + ": " + workers_ready(answer);
    }
    case Command::plan:
        return plan_line(answer);
    default:
        return "";   // status, ready and metrics have renderings of their own
    }
}

Readiness readiness(const json::object& answer)
{
    const json::object& m = object_field(answer, "manager");
    const std::string counts = workers_ready(m);
    if (bool_field(m, "at_target")) return {true, "ready: " + counts};
    if (const std::string phase = text_field(m, "phase"); phase != "running") return {false, "not ready: the manager is " + phase};
    if (const json::object* r = optional_object(m, "rollout")) return {false, "not ready: " + rollout_text(*r) + "; " + counts};
    return {false, "not ready: " + counts};
}

std::string human_duration(double seconds)
{
    // NaN and a clock that stepped back read as now; the cap keeps the conversion defined
    seconds = std::isnan(seconds) ? 0.0 : std::clamp(seconds, 0.0, 1e12);
    if (seconds < 0.1) return fmt::format("{}ms", std::lround(seconds * 1000));
    if (seconds < 10) {
        const long tenths = std::lround(seconds * 10);
        return tenths % 10 == 0 ? fmt::format("{}s", tenths / 10) : fmt::format("{}.{}s", tenths / 10, tenths % 10);
    }

    // Longer: the two largest units, truncated like an age
    struct Unit {
        std::int64_t seconds;
        std::string_view name;
    };
    static constexpr Unit units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    const auto whole = static_cast<std::int64_t>(seconds);
    for (std::size_t i = 0; i + 1 < std::size(units); ++i) {
        if (whole < units[i].seconds) continue;
        const std::int64_t big = whole / units[i].seconds;
        const std::int64_t small = whole % units[i].seconds / units[i + 1].seconds;
        if (small == 0) return fmt::format("{}{}", big, units[i].name);
        return fmt::format("{}{} {}{}", big, units[i].name, small, units[i + 1].name);
    }
    return fmt::format("{}s", whole);
}

std::string error_line(std::string_view message)
{
    // One line, whatever the message holds
    std::string line = "herdctl: " + std::string(message);
    std::replace(line.begin(), line.end(), '\n', ' ');
    return line + "\n";
}

}  // namespace herdctl
