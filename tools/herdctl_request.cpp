// herdctl's request side: the command line as a control request, and why a connect failed.
#include "herdctl_core.hpp"

#include <herd/manager/control.hpp>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
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
enum class PoolArgument { none, optional, required };

struct CommandSpec {
    std::string_view name;
    Command command;
    std::string_view sends;    // the protocol's "command"
    herd::Duration timeout;    // queries answer at once, operations once they have finished
    PoolArgument pool;         // a POOL after the command
};

constexpr herd::Duration query_timeout = 5s;
constexpr herd::Duration operation_timeout = 10min;

constexpr std::array<CommandSpec, 10> commands{{
    {"status", Command::status, "status", query_timeout, PoolArgument::optional},
    {"scale", Command::scale, "scale", operation_timeout, PoolArgument::optional},
    {"reload", Command::reload, "reload", operation_timeout, PoolArgument::none},
    {"upgrade", Command::upgrade, "upgrade", operation_timeout, PoolArgument::none},
    {"stop", Command::stop, "stop", operation_timeout, PoolArgument::optional},
    {"restart", Command::restart, "restart", operation_timeout, PoolArgument::required},
    {"start", Command::start, "start", operation_timeout, PoolArgument::required},
    {"plan", Command::plan, "plan", query_timeout, PoolArgument::required},
    {"ready", Command::ready, "status", query_timeout, PoolArgument::optional},
    {"metrics", Command::metrics, "status", query_timeout, PoolArgument::optional},
}};

constexpr std::string_view usage = R"(Usage: herdctl [--control PATH] [--json] [--timeout D] COMMAND [ARGS]

Ask a herd manager through its control socket (the server's --control PATH).

Commands:
  status [POOL]        the manager and every worker, as a table by pool
  scale N|+K|-K        set the target number of workers, or change it by K
  scale POOL N|+K|-K   the same for POOL (needed when the manager runs several pools)
  reload               replace the workers in place, as HUP does
  upgrade              start the manager's binary anew, as USR2 does
  stop [--now]         stop the manager: gracefully, or fast with --now
  stop POOL [--now]    stop POOL only; the manager and the other pools run on
  restart POOL         replace POOL's workers, rolling; releases slots a plan's wait holds
  start POOL           start POOL again after a stop
  plan POOL [PLAN]     show POOL's restart plan, or change it: plan web "restart, restart 5s, wait"
  ready [POOL]         exit 0 if every pool (or POOL) is at its target of ready workers, else 1
  metrics [POOL]       OpenMetrics text: workers by state, exits, heartbeats, rollouts
scale, reload, upgrade, stop, restart and start answer once the operation has finished or failed.

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

/// The arguments after the command, sorted out: a pool, a scale value, a plan.
struct Operands {
    std::optional<std::string> pool;
    std::optional<std::string> value;   // scale: N, +K or -K; plan: the new plan
};

std::string check_pool(const CommandSpec& spec, const std::string& name)
{
    if (!herd::control::is_pool_name(name))
        throw UsageError(fmt::format("invalid pool name '{}' for {}: 1 to {} letters, digits, '-' or '_'", name,
                                     spec.name, herd::control::max_pool_name));
    return name;
}

Operands check_arguments(const CommandSpec& spec, const Arguments& a)
{
    const std::vector<std::string> args(a.positional.begin() + 1, a.positional.end());
    if (a.now && spec.command != Command::stop) throw UsageError("option --now only applies to stop");
    const auto extra = [&](std::size_t i) {
        return UsageError(fmt::format("unexpected argument '{}' after {}", args[i], spec.name));
    };
    Operands o;
    switch (spec.command) {
    case Command::scale:
        // scale N, or scale POOL N
        if (args.empty()) throw UsageError("scale needs a value: N, +K or -K");
        if (args.size() > 2) throw extra(2);
        if (args.size() == 2) o.pool = check_pool(spec, args[0]);
        o.value = args.back();
        return o;
    case Command::plan:
        // plan POOL, or plan POOL PLAN (the words of a plan given unquoted are one plan)
        if (args.empty()) throw UsageError("plan needs a pool: plan POOL, or plan POOL \"restart, wait\" to change it");
        o.pool = check_pool(spec, args[0]);
        if (args.size() > 1) {
            o.value = fmt::format("{}", fmt::join(args.begin() + 1, args.end(), " "));
            if (o.value->find_first_not_of(' ') == std::string::npos)
                throw UsageError("invalid plan '" + *o.value + "': no step (such as \"restart, restart 5s, wait\")");
        }
        return o;
    default: break;
    }
    if (spec.pool == PoolArgument::required && args.empty())
        throw UsageError(fmt::format("{} needs a pool: {} POOL", spec.name, spec.name));
    const std::size_t most = spec.pool == PoolArgument::none ? 0 : 1;
    if (args.size() > most) throw extra(most);
    if (!args.empty()) o.pool = check_pool(spec, args[0]);
    return o;
}

herd::Duration parse_timeout(const std::string& text)
{
    try {
        return herd::parse_duration(text);
    } catch (const std::invalid_argument& e) {
        throw UsageError(fmt::format("invalid value '{}' for --timeout: {}", text, e.what()));
    }
}

json::object request_object(const CommandSpec& spec, const Arguments& a, const Operands& o)
{
    json::object request;
    request["command"] = json::string_view(spec.sends.data(), spec.sends.size());
    if (o.pool) request["pool"] = *o.pool;
    if (spec.command == Command::scale) {
        const json::object fields = parse_scale(*o.value);
        request.insert(fields.begin(), fields.end());
    }
    if (spec.command == Command::plan && o.value) request["plan"] = *o.value;
    if (spec.command == Command::stop) request["graceful"] = !a.now;
    return request;
}

}  // namespace

std::variant<Request, Info> parse_command_line(const std::vector<std::string>& args, std::string_view env_control)
{
    const Arguments a = read_arguments(args);
    if (a.help) return Info{std::string(usage)};
    if (a.version) return Info{"herdctl " HERD_VERSION "\n"};
    if (a.positional.empty()) throw UsageError(fmt::format("no command ({}); see herdctl --help", command_list()));
    const CommandSpec& spec = find_command(a.positional.front());
    const Operands operands = check_arguments(spec, a);

    Request r;
    r.command = spec.command;
    r.control = a.control.value_or(std::string(env_control));
    if (r.control.empty()) throw UsageError("no control socket: give --control PATH or set HERD_CONTROL");
    r.json = a.json;
    r.timeout = a.timeout ? parse_timeout(*a.timeout) : spec.timeout;
    r.line = json::serialize(request_object(spec, a, operands)) + "\n";
    r.pool = operands.pool.value_or("");
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

std::string_view command_name(Command command)
{
    return spec_of(command).name;
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

}  // namespace herdctl
