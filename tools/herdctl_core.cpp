// herdctl's pure core: see herdctl_core.hpp for the requests and answers.
#include "herdctl_core.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#ifndef HERD_VERSION
#define HERD_VERSION "0.1.0"
#endif

namespace herdctl {

namespace json = boost::json;
using namespace std::chrono_literals;
using herd::UsageError;

namespace {

// Commands
struct CommandSpec {
    std::string_view name;
    Command command;
    std::string_view sends;    // the protocol's "command"
    herd::Duration timeout;    // queries answer at once, operations once they have finished
};

constexpr herd::Duration query_timeout = 5s;
constexpr herd::Duration operation_timeout = 10min;

constexpr std::array<CommandSpec, 7> commands{{
    {"status", Command::status, "status", query_timeout},
    {"scale", Command::scale, "scale", operation_timeout},
    {"reload", Command::reload, "reload", operation_timeout},
    {"upgrade", Command::upgrade, "upgrade", operation_timeout},
    {"stop", Command::stop, "stop", operation_timeout},
    {"ready", Command::ready, "status", query_timeout},
    {"metrics", Command::metrics, "status", query_timeout},
}};

constexpr std::string_view usage = R"(Usage: herdctl [--control PATH] [--json] [--timeout D] COMMAND [ARGS]

Ask a herd manager through its control socket (the server's --control PATH).

Commands:
  status          the manager and every worker, as a table
  scale N|+K|-K   set the target number of workers, or change it by K
  reload          replace the workers in place, as HUP does
  upgrade         start the manager's binary anew, as USR2 does
  stop [--now]    stop the manager: gracefully, or fast with --now
  ready           exit 0 if the pool is at its target of ready workers, else 1
  metrics         OpenMetrics text: workers by state, exits, heartbeats, rollouts
scale, reload, upgrade and stop answer once the operation has finished or failed.

Options:
  -c, --control PATH  the manager's control socket (default: $HERD_CONTROL)
      --json          print the manager's answer as one line of JSON
      --timeout D     give up after D (250ms, 5s, 2m, 1h; 0 waits forever);
                      default 5s for status, ready and metrics, 10m for the others
  -h, --help          show this help and exit
      --version       show the version and exit

Exit status: 0 success, 1 failure (no manager, an error answer, a timeout, not ready), 2 usage.
)";

std::string command_list()
{
    std::vector<std::string_view> names;
    for (const CommandSpec& c : commands) names.push_back(c.name);
    return fmt::format("{}", fmt::join(names, ", "));
}

const CommandSpec& find_command(std::string_view name)
{
    for (const CommandSpec& c : commands)
        if (c.name == name) return c;
    throw UsageError(fmt::format("unknown command '{}' ({})", name, command_list()));
}

const CommandSpec& spec_of(Command command)
{
    return *std::find_if(commands.begin(), commands.end(), [&](const CommandSpec& c) { return c.command == command; });
}

// The command line, before it is checked
struct Arguments {
    std::vector<std::string> positional;
    std::optional<std::string> control;
    std::optional<std::string> timeout;
    bool json = false;
    bool now = false;
    bool help = false;
    bool version = false;
};

/// No option of ours starts with a digit, so "-1" is a scale argument.
bool is_option(std::string_view arg)
{
    return arg.size() > 1 && arg[0] == '-' && (arg[1] < '0' || arg[1] > '9');
}

bool* flag_of(Arguments& a, std::string_view name)
{
    if (name == "--json") return &a.json;
    if (name == "--now") return &a.now;
    if (name == "-h" || name == "--help") return &a.help;
    if (name == "--version") return &a.version;
    return nullptr;
}

/// The value of "--name=value" or of "--name value" (the next argument, whatever it looks like).
std::string option_value(const std::string& name, const std::optional<std::string>& given,
                         const std::vector<std::string>& args, std::size_t& i)
{
    if (given) return *given;
    if (i + 1 == args.size()) throw UsageError("option " + name + " needs a value");
    return args[++i];
}

/// Options may come before or after the command; "--" ends them.
Arguments read_arguments(const std::vector<std::string>& args)
{
    Arguments a;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            a.positional.insert(a.positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if (!is_option(arg)) {
            a.positional.push_back(arg);
            continue;
        }
        const std::size_t eq = arg.find('=');
        const std::string name = arg.substr(0, eq);
        const auto given = eq == std::string::npos ? std::nullopt : std::optional(arg.substr(eq + 1));
        if (name == "-c" || name == "--control") {
            a.control = option_value(name, given, args, i);
        } else if (name == "--timeout") {
            a.timeout = option_value(name, given, args, i);
        } else if (bool* flag = flag_of(a, name)) {
            if (given) throw UsageError("option " + name + " takes no value");
            *flag = true;
        } else {
            throw UsageError("unknown option " + name);
        }
    }
    return a;
}

void check_arguments(const CommandSpec& spec, const Arguments& a)
{
    const std::size_t wanted = spec.command == Command::scale ? 2 : 1;
    if (a.positional.size() < wanted) throw UsageError("scale needs a value: N, +K or -K");
    if (a.positional.size() > wanted)
        throw UsageError(fmt::format("unexpected argument '{}' after {}", a.positional[wanted], spec.name));
    if (a.now && spec.command != Command::stop) throw UsageError("option --now only applies to stop");
}

herd::Duration parse_timeout(const std::string& text)
{
    try {
        return herd::parse_duration(text);
    } catch (const std::invalid_argument& e) {
        throw UsageError(fmt::format("invalid value '{}' for --timeout: {}", text, e.what()));
    }
}

json::object request_object(const CommandSpec& spec, const Arguments& a)
{
    json::object request;
    request["command"] = json::string_view(spec.sends.data(), spec.sends.size());
    if (spec.command == Command::scale) {
        const json::object fields = parse_scale(a.positional[1]);
        request.insert(fields.begin(), fields.end());
    }
    if (spec.command == Command::stop) request["graceful"] = !a.now;
    return request;
}

// Reading the answer: a missing or mistyped field names itself
std::runtime_error wrong_type(std::string_view key, std::string_view expected)
{
    return std::runtime_error(fmt::format("\"{}\" is not {}", key, expected));
}

const json::value& field(const json::object& o, std::string_view key)
{
    if (const json::value* v = o.if_contains(key)) return *v;
    throw std::runtime_error(fmt::format("no \"{}\"", key));
}

template <class T>
T number(const json::object& o, std::string_view key)
{
    boost::system::error_code ec;
    const T n = field(o, key).to_number<T>(ec);
    if (ec) throw wrong_type(key, std::is_integral_v<T> ? "a whole number" : "a number");
    return n;
}

std::string integer_text(const json::object& o, std::string_view key)
{
    return std::to_string(number<std::int64_t>(o, key));
}

/// A number that may be null.
std::optional<double> optional_number(const json::object& o, std::string_view key)
{
    if (field(o, key).is_null()) return std::nullopt;
    return number<double>(o, key);
}

std::string text_field(const json::object& o, std::string_view key)
{
    if (const json::string* s = field(o, key).if_string()) return std::string(s->data(), s->size());
    throw wrong_type(key, "a string");
}

bool bool_field(const json::object& o, std::string_view key)
{
    if (const bool* b = field(o, key).if_bool()) return *b;
    throw wrong_type(key, "true or false");
}

const json::object& object_field(const json::object& o, std::string_view key)
{
    if (const json::object* v = field(o, key).if_object()) return *v;
    throw wrong_type(key, "an object");
}

/// An object that may be null.
const json::object* optional_object(const json::object& o, std::string_view key)
{
    return field(o, key).is_null() ? nullptr : &object_field(o, key);
}

const json::array& array_field(const json::object& o, std::string_view key)
{
    if (const json::array* v = field(o, key).if_array()) return *v;
    throw wrong_type(key, "an array");
}

const json::object& element(const json::value& v, std::string_view array)
{
    if (const json::object* o = v.if_object()) return *o;
    throw wrong_type(fmt::format("{}[]", array), "an object");
}

json::object parse_answer(std::string_view line)
{
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(line.data(), line.size()), ec);
    if (ec) throw std::runtime_error(ec.message());
    if (json::object* o = v.if_object()) return std::move(*o);
    throw std::runtime_error("not a JSON object");
}

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

Row worker_row(const json::object& w)
{
    const std::optional<double> heartbeat = optional_number(w, "heartbeat_age_s");
    return {integer_text(w, "slot"),
            integer_text(w, "pid"),
            integer_text(w, "generation"),
            text_field(w, "state"),
            human_duration(number<double>(w, "age_s")),
            heartbeat ? human_duration(*heartbeat) + " ago" : "-",
            integer_text(w, "requests"),
            last_exit(w)};
}

std::string workers_table(const json::array& workers)
{
    if (workers.empty()) return "no workers\n";
    std::vector<Row> rows{{"SLOT", "PID", "GEN", "STATE", "AGE", "HEARTBEAT", "REQUESTS", "LAST EXIT"}};
    for (const json::value& w : workers) rows.push_back(worker_row(element(w, "workers")));
    return align(rows);
}

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

Labels worker_labels(const json::object& w)
{
    return {{"slot", integer_text(w, "slot")}, {"pid", integer_text(w, "pid")}, {"generation", integer_text(w, "generation")}};
}

void pool_metrics(Exposition& e, const json::object& m, const json::array& workers)
{
    // Every state, counted or not, so that a dashboard sees zeros
    std::map<std::string, int> by_state{{"booting", 0}, {"ready", 0}, {"retiring", 0}, {"killed", 0}};
    for (const json::value& w : workers) ++by_state[text_field(element(w, "workers"), "state")];
    e.family({"herd_workers", "gauge", "Workers by state."});
    for (const auto& [state, count] : by_state) e.sample({{"state", state}}, count);

    e.family({"herd_target_workers", "gauge", "The number of ready workers the manager keeps."});
    e.sample({}, number<double>(m, "target"));
    e.family({"herd_generation", "gauge", "The generation new workers get."});
    e.sample({}, number<double>(m, "generation"));
    e.family({"herd_uptime_seconds", "gauge", "Time since the manager started."});
    e.sample({}, number<double>(m, "uptime_s"));
}

void exit_metrics(Exposition& e, const json::object& m)
{
    const json::object& exits = object_field(m, "exits");
    e.family({"herd_worker_exits", "counter", "Worker exits by reason."});
    for (const auto& kv : exits) e.sample({{"reason", std::string(kv.key())}}, number<double>(exits, kv.key()));
    e.family({"herd_restart_failures", "gauge", "Unexpected worker exits within the restart window."});
    e.sample({}, number<double>(m, "failures"));
}

void worker_metrics(Exposition& e, const json::array& workers)
{
    e.family({"herd_worker_heartbeat_age_seconds", "gauge", "Time since the worker's last heartbeat."});
    for (const json::value& v : workers) {
        const json::object& w = element(v, "workers");
        if (const std::optional<double> age = optional_number(w, "heartbeat_age_s")) e.sample(worker_labels(w), *age);
    }
    e.family({"herd_worker_requests", "counter", "Requests the worker has served."});
    for (const json::value& v : workers) {
        const json::object& w = element(v, "workers");
        e.sample(worker_labels(w), number<double>(w, "requests"));
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

std::variant<Request, Info> parse_command_line(const std::vector<std::string>& args, std::string_view env_control)
{
    const Arguments a = read_arguments(args);
    if (a.help) return Info{std::string(usage)};
    if (a.version) return Info{"herdctl " HERD_VERSION "\n"};
    if (a.positional.empty()) throw UsageError(fmt::format("no command ({}); see herdctl --help", command_list()));
    const CommandSpec& spec = find_command(a.positional.front());
    check_arguments(spec, a);

    Request r;
    r.command = spec.command;
    r.control = a.control.value_or(std::string(env_control));
    if (r.control.empty()) throw UsageError("no control socket: give --control PATH or set HERD_CONTROL");
    r.json = a.json;
    r.timeout = a.timeout ? parse_timeout(*a.timeout) : spec.timeout;
    r.line = json::serialize(request_object(spec, a)) + "\n";
    return r;
}

json::object parse_scale(std::string_view text)
{
    // "+K" and "-K" change the target by K; a bare N sets it
    const bool relative = !text.empty() && (text.front() == '+' || text.front() == '-');
    const std::string_view digits = relative ? text.substr(1) : text;
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    // from_chars takes a sign of its own; "--1" and "+-1" are not numbers
    if (digits.empty() || digits.front() == '-' || ec != std::errc{} || end != digits.data() + digits.size())
        throw UsageError(fmt::format("invalid value '{}' for scale: expected N, +K or -K", text));
    if (!relative) return {{"workers", n}};
    return {{"delta", text.front() == '-' ? -n : n}};
}

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
    const json::object& m = object_field(answer, "manager");
    return manager_line(m) + rollout_lines(m) + exits_line(m) + restarts_line(m) + "\n" +
           workers_table(array_field(answer, "workers"));
}

std::string render_metrics(const json::object& answer)
{
    const json::object& m = object_field(answer, "manager");
    const json::array& workers = array_field(answer, "workers");
    Exposition e;
    pool_metrics(e, m, workers);
    exit_metrics(e, m);
    worker_metrics(e, workers);
    rollout_metrics(e, m);
    return e.finish();
}

std::string render_done(Command command, const json::object& answer)
{
    switch (command) {
    case Command::scale:
        return "scaled: " + workers_ready(answer);
    case Command::reload:
    case Command::upgrade:
        return fmt::format("{} complete: generation {} in {}", spec_of(command).name, integer_text(answer, "generation"),
                           human_duration(number<double>(answer, "took_ms") / 1000));
    case Command::stop:
        return "manager stopped (exit code " + integer_text(answer, "exit_code") + ")";
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

std::string connect_failure(std::string_view path, int error, const PathFacts& facts)
{
    constexpr std::string_view ask = "is --control the path the manager was started with?";
    const auto what = [](FileType t) -> std::string_view {
        switch (t) {
        case FileType::regular: return "a regular file";
        case FileType::directory: return "a directory";
        case FileType::fifo: return "a FIFO";
        case FileType::device: return "a device";
        default: return "not a socket";
        }
    };
    // A file that is no socket refuses a connect like a socket nobody listens on: say what it is
    if (facts.type != FileType::none && facts.type != FileType::socket)
        return fmt::format("{} is not a socket ({}): {}", path, what(facts.type), ask);
    if (error == ENOENT || error == ENOTDIR) {
        if (!facts.parent_exists)
            return fmt::format("no control socket at {}: its directory does not exist; {}", path, ask);
        return fmt::format("no control socket at {} (no such file): is the manager running, and {}", path, ask);
    }
    if (error == EACCES || error == EPERM) {
        if (facts.type == FileType::none)
            return fmt::format("permission denied on {} (a directory on the way may not be searched): run herdctl as "
                               "the manager's user or as root", path);
        return fmt::format("permission denied on {} (a socket owned by uid {}, mode {:04o}): run herdctl as the "
                           "manager's user or as root", path, facts.uid, facts.mode & 07777);
    }
    if (error == ECONNREFUSED)
        return fmt::format("no manager is listening on {} (a socket file left behind: the manager has exited or was "
                           "killed)", path);
    return fmt::format("cannot connect to {}: {}", path, std::strerror(error));
}

std::string error_line(std::string_view message)
{
    // One line, whatever the message holds
    std::string line = "herdctl: " + std::string(message);
    std::replace(line.begin(), line.end(), '\n', ' ');
    return line + "\n";
}

}  // namespace herdctl
