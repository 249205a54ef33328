// herdctl's request side: the command line as a control request, and why a connect failed.
#include "herdctl_core.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <cerrno>
#include <string>
#include <vector>

using namespace herdctl;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

Request parse(const std::vector<std::string>& args, std::string_view env = "")
{
    return std::get<Request>(parse_command_line(args, env));
}

std::string usage_error(const std::vector<std::string>& args, std::string_view env = "/run/herd.sock")
{
    try {
        parse_command_line(args, env);
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "no usage error";
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(text.substr(start, end - start));
    return lines;
}

}  // namespace

// Command line
TEST_CASE("herdctl takes its options before or after the command")
{
    const Request r = parse({"status", "--json", "-c", "/tmp/a.sock"});
    CHECK(r.command == Command::status);
    CHECK(r.control == "/tmp/a.sock");
    CHECK(r.json);
    CHECK(r.line == "{\"command\":\"status\"}\n");

    CHECK(parse({"--control=/tmp/b.sock", "ready"}).control == "/tmp/b.sock");
    CHECK(parse({"--control", "/tmp/c.sock", "--timeout=2s", "metrics"}).timeout == 2s);
    CHECK_FALSE(parse({"-c", "/x", "status"}).json);
}

TEST_CASE("herdctl takes the control socket from HERD_CONTROL unless --control is given")
{
    CHECK(parse({"status"}, "/run/env.sock").control == "/run/env.sock");
    CHECK(parse({"-c", "/run/flag.sock", "status"}, "/run/env.sock").control == "/run/flag.sock");
    CHECK(usage_error({"status"}, "") == "no control socket: give --control PATH or set HERD_CONTROL");
    CHECK(usage_error({"--control=", "status"}, "") == "no control socket: give --control PATH or set HERD_CONTROL");
}

TEST_CASE("herdctl status, ready and metrics all send a status request")
{
    for (const char* command : {"status", "ready", "metrics"})
        CHECK(parse({command}, "/s").line == "{\"command\":\"status\"}\n");
    CHECK(parse({"ready"}, "/s").command == Command::ready);
    CHECK(parse({"metrics"}, "/s").command == Command::metrics);
    CHECK(parse({"reload"}, "/s").line == "{\"command\":\"reload\"}\n");
    CHECK(parse({"upgrade"}, "/s").line == "{\"command\":\"upgrade\"}\n");
}

TEST_CASE("herdctl waits 5s for queries and 10m for operations, unless --timeout says otherwise")
{
    for (const char* query : {"status", "ready", "metrics"}) CHECK(parse({query}, "/s").timeout == 5s);
    for (const char* operation : {"reload", "upgrade", "stop"}) CHECK(parse({operation}, "/s").timeout == 10min);
    CHECK(parse({"scale", "8"}, "/s").timeout == 10min);
    CHECK(parse({"--timeout", "250ms", "upgrade"}, "/s").timeout == 250ms);
    CHECK(parse({"--timeout", "0", "status"}, "/s").timeout == 0ms);
}

TEST_CASE("herdctl rejects a malformed --timeout, naming the value")
{
    CHECK(usage_error({"--timeout", "5x", "status"}) ==
          "invalid value '5x' for --timeout: expected a duration such as 250ms, 2s, 1.5s, 3m or 1h");
    CHECK(usage_error({"--timeout", "-5", "status"}) == "invalid value '-5' for --timeout: a duration cannot be negative");
    CHECK(usage_error({"status", "--timeout"}) == "option --timeout needs a value");
}

TEST_CASE("herdctl scale takes an exact target or a change of it")
{
    CHECK(json::serialize(parse_scale("8")) == R"({"workers":8})");
    CHECK(json::serialize(parse_scale("0")) == R"({"workers":0})");
    CHECK(json::serialize(parse_scale("+2")) == R"({"delta":2})");
    CHECK(json::serialize(parse_scale("-1")) == R"({"delta":-1})");
    CHECK(parse({"scale", "-1"}, "/s").line == "{\"command\":\"scale\",\"delta\":-1}\n");
    CHECK(parse({"-c", "/s", "scale", "8"}).line == "{\"command\":\"scale\",\"workers\":8}\n");
    CHECK(parse({"scale", "--", "-3"}, "/s").line == "{\"command\":\"scale\",\"delta\":-3}\n");
}

TEST_CASE("herdctl scale rejects anything but N, +K or -K, naming the value")
{
    for (const char* bad : {"abc", "", "+", "-", "1.5", "--1", "+-1", "8x", " 8", "99999999999999999999"})
        CHECK_THROWS_WITH_AS(parse_scale(bad), ("invalid value '" + std::string(bad) + "' for scale: expected N, +K or -K").c_str(),
                             herd::UsageError);
    CHECK(usage_error({"scale", "many"}) == "invalid value 'many' for scale: expected N, +K or -K");
    CHECK(usage_error({"scale"}) == "scale needs a value: N, +K or -K");
    CHECK(usage_error({"scale", "-x"}) == "unknown option -x");
}

TEST_CASE("herdctl stop is graceful unless --now")
{
    CHECK(parse({"stop"}, "/s").line == "{\"command\":\"stop\",\"graceful\":true}\n");
    CHECK(parse({"stop", "--now"}, "/s").line == "{\"command\":\"stop\",\"graceful\":false}\n");
    CHECK(parse({"--now", "stop"}, "/s").line == "{\"command\":\"stop\",\"graceful\":false}\n");
    CHECK(usage_error({"status", "--now"}) == "option --now only applies to stop");
}

TEST_CASE("herdctl names an unknown command or option, a missing command and an extra argument")
{
    CHECK(usage_error({"frobnicate"}) == "unknown command 'frobnicate' (status, scale, reload, upgrade, stop, restart, start, plan, ready, metrics)");
    CHECK(usage_error({}) == "no command (status, scale, reload, upgrade, stop, restart, start, plan, ready, metrics); see herdctl --help");
    CHECK(usage_error({"--bogus", "status"}) == "unknown option --bogus");
    CHECK(usage_error({"--bogus=1", "status"}) == "unknown option --bogus");
    CHECK(usage_error({"status", "web", "now"}) == "unexpected argument 'now' after status");
    CHECK(usage_error({"scale", "web", "1", "2"}) == "unexpected argument '2' after scale");
    CHECK(usage_error({"--json=yes", "status"}) == "option --json takes no value");
    CHECK(usage_error({"status", "-c"}) == "option -c needs a value");
}

TEST_CASE("herdctl --help and --version need neither a command nor a control socket")
{
    const auto help = std::get<Info>(parse_command_line({"--help"}, "")).text;
    CHECK(help.starts_with("Usage: herdctl [--control PATH] [--json] [--timeout D] COMMAND [ARGS]\n"));
    for (const char* command : {"status", "scale N|+K|-K", "reload", "upgrade", "stop [--now]", "ready", "metrics"})
        CHECK_MESSAGE(help.find("  " + std::string(command) + " ") != std::string::npos, command);
    CHECK(std::get<Info>(parse_command_line({"status", "-h"}, "")).text == help);
    const auto version = std::get<Info>(parse_command_line({"--version"}, "")).text;
    CHECK(version.starts_with("herdctl "));
    CHECK(lines_of(version).size() == 1);
}

// Connecting
TEST_CASE("herdctl says what is at the control path when it is no socket, and asks about --control")
{
    PathFacts file{FileType::regular, 0, 0, 0644, true};
    CHECK(connect_failure("/tmp/x", ECONNREFUSED, file) ==
          "/tmp/x is not a socket (a regular file): is --control the path the manager was started with?");
    PathFacts dir{FileType::directory, 0, 0, 0755, true};
    CHECK(connect_failure("/run/app", ECONNREFUSED, dir) ==
          "/run/app is not a socket (a directory): is --control the path the manager was started with?");
    PathFacts fifo{FileType::fifo, 0, 0, 0600, true};
    CHECK(connect_failure("/tmp/p", ECONNREFUSED, fifo).starts_with("/tmp/p is not a socket (a FIFO)"));
}

TEST_CASE("herdctl tells a missing path, a permission error and a socket with no manager apart")
{
    const PathFacts missing{FileType::none, ENOENT, 0, 0, true};
    CHECK(connect_failure("/run/app/c.sock", ENOENT, missing) ==
          "no control socket at /run/app/c.sock (no such file): is the manager running, and is --control the path "
          "the manager was started with?");
    const PathFacts no_dir{FileType::none, ENOENT, 0, 0, false};
    CHECK(connect_failure("/run/nope/c.sock", ENOENT, no_dir) ==
          "no control socket at /run/nope/c.sock: its directory does not exist; is --control the path the manager "
          "was started with?");
    const PathFacts theirs{FileType::socket, 0, 1001, 0600, true};
    CHECK(connect_failure("/run/app/c.sock", EACCES, theirs) ==
          "permission denied on /run/app/c.sock (a socket owned by uid 1001, mode 0600): run herdctl as the "
          "manager's user or as root");
    const PathFacts hidden{FileType::none, EACCES, 0, 0, true};
    CHECK(connect_failure("/run/app/c.sock", EACCES, hidden).starts_with(
        "permission denied on /run/app/c.sock (a directory on the way may not be searched)"));
    const PathFacts stale{FileType::socket, 0, 0, 0600, true};
    CHECK(connect_failure("/run/app/c.sock", ECONNREFUSED, stale) ==
          "no manager is listening on /run/app/c.sock (a socket file left behind: the manager has exited or was "
          "killed)");
    CHECK(connect_failure("/run/app/c.sock", ENAMETOOLONG, stale) ==
          "cannot connect to /run/app/c.sock: File name too long");
}
