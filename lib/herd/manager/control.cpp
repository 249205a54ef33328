#include <herd/manager/control.hpp>

#include <herd/core/text.hpp>
#include <herd/manager/control_json.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <utility>
#include <limits>

namespace herd::control {

namespace json = boost::json;

namespace {

// A JSON integer that fits an int, or nothing (1.5, "8", 1e100 are not integers).
std::optional<std::int64_t> integer(const json::value& v)
{
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        return std::int64_t(v.as_uint64());
    return std::nullopt;
}

// A string as JSON: quoted as it is when nothing in it needs an escape (every key and nearly every
// value of an answer), else as json::serialize writes it.
void write_string(std::string& out, std::string_view text)
{
    const bool plain = std::none_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
    });
    if (!plain) {
        out += json::serialize(json::string_view(text.data(), text.size()));
        return;
    }
    out += '"';
    out.append(text.data(), text.size());
    out += '"';
}

template <typename Number>
void write_number(std::string& out, Number n)
{
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr);
}

// Like json::serialize, but seconds print as 0.639, not 6.39E-1: people read --json output too.
// Written in place, without a string per key or value (a status of 1024 workers has 20,000).
void write_json(std::string& out, const json::value& v)
{
    switch (v.kind()) {
    case json::kind::double_: detail::append_seconds(out, v.get_double()); break;
    case json::kind::int64: write_number(out, v.get_int64()); break;
    case json::kind::uint64: write_number(out, v.get_uint64()); break;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case json::kind::null: out += "null"; break;
    case json::kind::string: write_string(out, v.get_string()); break;
    case json::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& [key, value] : v.get_object()) {
            if (!std::exchange(first, false)) out += ',';
            write_string(out, key);
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
    return detail::json_text(v);
}

std::string line(const json::value& v)
{
    return detail::json_line(v);
}

// Request keys
std::string invalid(const json::value& value, std::string_view key, std::string_view why)
{
    return "invalid value " + quoted(text_of(value)) + " for \"" + std::string(key) + "\": " + std::string(why);
}

std::optional<std::string> take_count(Request& r, std::string_view key, const json::value& value)
{
    const auto n = integer(value);
    if (!n) return invalid(value, key, "not an integer");
    const auto limit = std::int64_t(max_workers);
    if (key == "workers") {
        if (*n < 0 || *n > limit)
            return "invalid value " + std::to_string(*n) + " for \"workers\": must be 0 to " + std::to_string(limit);
        r.workers = unsigned(*n);
    } else {
        if (*n < -limit || *n > limit)
            return "invalid value " + std::to_string(*n) + " for \"delta\": must be within ±" + std::to_string(limit);
        r.delta = int(*n);
    }
    return std::nullopt;
}

// The plan's words are checked by the config file's parser, where the manager changes it; here only
// what would make it unfit for a log line.
std::optional<std::string> take_plan(Request& r, const json::value& value)
{
    constexpr std::string_view example = "such as \"restart, restart 5s, wait\"";
    if (!value.is_string()) return invalid(value, "plan", "not a string (" + std::string(example) + ")");
    const std::string_view text = value.as_string();
    if (text.size() > max_plan_text)
        return invalid(value, "plan", "longer than " + std::to_string(max_plan_text) + " bytes");
    if (std::any_of(text.begin(), text.end(), [](char c) { return (unsigned char)c < 0x20 || c == 0x7f; }))
        return invalid(value, "plan", "not one line of printable text");
    if (text.find_first_not_of(' ') == std::string_view::npos)
        return invalid(value, "plan", "no step (" + std::string(example) + ")");
    r.plan = std::string(text);
    return std::nullopt;
}

/// One key of a request, checked and stored; or the sentence that says what is wrong with it.
std::optional<std::string> take(Request& r, std::string_view key, const json::value& value)
{
    // Every request but reload and upgrade (the whole manager's) may be about one pool
    const bool pool_op = r.command != Command::reload && r.command != Command::upgrade;
    if (r.command == Command::scale && (key == "workers" || key == "delta")) return take_count(r, key, value);
    if (r.command == Command::stop && key == "graceful") {
        if (!value.is_bool()) return invalid(value, key, "not true or false");
        r.graceful = value.as_bool();
        return std::nullopt;
    }
    if (pool_op && key == "pool") {
        if (!value.is_string() || !is_pool_name(value.as_string()))
            return invalid(value, key, "a pool name is 1 to " + std::to_string(max_pool_name) +
                                           " letters, digits, '-' or '_'");
        r.pool = std::string(value.as_string());
        return std::nullopt;
    }
    if (r.command == Command::plan && key == "plan") return take_plan(r, value);
    return "unknown key \"" + quoted(key) + "\" for " + std::string(to_string(r.command));
}

}  // namespace

std::string detail::json_text(const json::value& v)
{
    std::string out;
    write_json(out, v);
    return out;
}

void detail::append_string(std::string& out, std::string_view text)
{
    write_string(out, text);
}

void detail::append_seconds(std::string& out, double seconds)
{
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::fixed, 3);
    out.append(buf, r.ptr);
}

void detail::append_integer(std::string& out, long long n)
{
    write_number(out, n);
}

void detail::append_unsigned(std::string& out, unsigned long long n)
{
    write_number(out, n);
}

std::string detail::json_line(const json::value& v)
{
    return json_text(v) + "\n";
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
    const auto parsed = command_from(name);
    if (!parsed)
        return "unknown command '" + quoted(name) + "' (status, scale, reload, upgrade, stop, restart, start or plan)";

    Request r;
    r.command = *parsed;
    for (const auto& [key, value] : o) {
        if (key == "command") continue;
        if (auto why = take(r, key, value)) return *why;
    }
    if (r.command == Command::scale && r.workers.has_value() == o.contains("delta"))
        return std::string("scale needs either \"workers\" (exact) or \"delta\" (relative)");
    if ((r.command == Command::restart || r.command == Command::start || r.command == Command::plan) && !r.pool)
        return std::string(name) + " needs \"pool\": the name of a pool";
    return r;
}

bool is_pool_name(std::string_view name)
{
    const auto allowed = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    };
    return !name.empty() && name.size() <= max_pool_name && std::all_of(name.begin(), name.end(), allowed);
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

}  // namespace herd::control
