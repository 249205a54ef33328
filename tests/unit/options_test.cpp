// Options: defaults, conversions, config file, application options, validation (DESIGN.md §2).
#include <herd/config/options.hpp>
#include <herd/option_types.hpp>

#include <boost/program_options.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace po = boost::program_options;

namespace {

/// A scratch directory under /tmp, removed with everything in it.
struct TempDir {
    std::string path;
    TempDir()
    {
        char name[] = "/tmp/herd-options-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string write(const std::string& name, const std::string& text) const
    {
        const std::string file = path + "/" + name;
        std::ofstream(file) << text;
        return file;
    }
};

herd::CommandLine parse(std::initializer_list<std::string> args, const herd::OptionsExtension& ext = {})
{
    std::vector<const char*> argv{"hello-http"};
    for (const auto& arg : args) argv.push_back(arg.c_str());
    return herd::parse_command_line(static_cast<int>(argv.size()), argv.data(), ext);
}

/// The UsageError text parsing `args` gives, or "" if it succeeds.
std::string usage_error(std::initializer_list<std::string> args, const herd::OptionsExtension& ext = {})
{
    try {
        parse(args, ext);
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "";
}

std::string validation_error(const herd::Options& options)
{
    try {
        herd::validate(options);
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "";
}

/// An application adding --port (default 8080) and a --verbose switch.
herd::OptionsExtension app_with_port()
{
    herd::OptionsExtension ext;
    ext.program = "hello-http";
    ext.version = "1.2.3";
    ext.add_options = [](po::options_description& d) {
        d.add_options()("port", po::value<int>()->default_value(8080), "port to serve")(
            "verbose", po::bool_switch(), "log every request");
    };
    return ext;
}

}  // namespace

// Defaults and plain values
TEST_CASE("no arguments give the defaults of DESIGN.md")
{
    const herd::Options o = parse({}).options;
    CHECK(o == herd::Options{});
    CHECK(o.workers == 4);
    CHECK(o.listen.empty());
    CHECK(o.heartbeat_interval == 1s);
    CHECK(o.heartbeat_timeout == 10s);
    CHECK(o.boot_timeout == 30s);
    CHECK(o.graceful_timeout == 30s);
    CHECK(o.kill_timeout == 5s);
    CHECK(o.max_worker_age == 0s);
    CHECK(o.max_worker_age_jitter == doctest::Approx(0.1));
    CHECK(o.max_requests == 0);
    CHECK(o.spare == 1);
    CHECK(o.restart_limit == herd::RestartLimit{10, 10s});
    CHECK(o.upgrade_timeout == 60s);
    CHECK(o.log_level == "info");
    CHECK_FALSE(o.daemon);
    CHECK_FALSE(o.check);
}

TEST_CASE("short and long forms set the same option")
{
    CHECK(parse({"-w", "3"}).options.workers == 3);
    CHECK(parse({"-w3"}).options.workers == 3);
    CHECK(parse({"--workers", "0"}).options.workers == 0);
    CHECK(parse({"--workers=7"}).options.workers == 7);
}

TEST_CASE("listen may be given several times and keeps the order")
{
    const auto o = parse({"-l", "127.0.0.1:8080", "--listen", "unix:/tmp/x.sock", "--listen=[::1]:9"}).options;
    CHECK(o.listen == std::vector<std::string>{"127.0.0.1:8080", "unix:/tmp/x.sock", "[::1]:9"});
}

TEST_CASE("every standard option reaches its field")
{
    const auto o = parse({"--heartbeat-interval", "250ms", "--heartbeat-timeout", "3s", "--boot-timeout", "1m",
                          "--graceful-timeout", "2", "--kill-timeout", "0.5", "--max-worker-age", "1h",
                          "--max-worker-age-jitter", "25%", "--max-requests", "1000", "--max-requests-jitter", "50",
                          "--spare", "2", "--restart-limit", "5/30s", "--upgrade-timeout", "90s", "--pid-file", "/run/x.pid", "--control", "/run/x.sock", "--log-level", "debug",
                          "--log-file", "/var/log/x.log", "--user", "www", "--group", "web", "--name", "x",
                          "--daemon", "--check"})
                       .options;
    CHECK(o.heartbeat_interval == 250ms);
    CHECK(o.heartbeat_timeout == 3s);
    CHECK(o.boot_timeout == 1min);
    CHECK(o.graceful_timeout == 2s);
    CHECK(o.kill_timeout == 500ms);
    CHECK(o.max_worker_age == 1h);
    CHECK(o.max_worker_age_jitter == doctest::Approx(0.25));
    CHECK(o.max_requests == 1000);
    CHECK(o.max_requests_jitter == 50);
    CHECK(o.spare == 2);
    CHECK(o.restart_limit == herd::RestartLimit{5, 30s});
    CHECK(o.upgrade_timeout == 90s);
    CHECK(o.pid_file == "/run/x.pid");
    CHECK(o.control == "/run/x.sock");
    CHECK(o.log_level == "debug");
    CHECK(o.log_file == "/var/log/x.log");
    CHECK(o.user == "www");
    CHECK(o.group == "web");
    CHECK(o.name == "x");
    CHECK(o.daemon);
    CHECK(o.check);
}

// Durations
TEST_CASE("off, the default --help shows for a limit, is accepted as its value")
{
    const herd::Options o = parse({"--max-worker-age", "off", "--max-requests", "off", "--max-worker-memory", "off",
                                   "--heartbeat-timeout", "off"}).options;
    CHECK(o.max_worker_age == 0s);
    CHECK(o.max_requests == 0);
    CHECK(o.max_worker_memory == 0);
    CHECK(o.heartbeat_timeout == 0s);
    CHECK(parse({"--max-requests", "5"}).options.max_requests == 5);
}

TEST_CASE("a bad duration names the option, the value and the expected form")
{
    CHECK(usage_error({"--boot-timeout", "2x"}) ==
          "invalid value '2x' for --boot-timeout: expected a duration such as 250ms, 2s, 1.5s, 3m or 1h");
    CHECK(usage_error({"--kill-timeout=-1s"}) == "invalid value '-1s' for --kill-timeout: a duration cannot be negative");
}

// Numbers, fractions, limits
TEST_CASE("a bad whole number names the option and the value")
{
    CHECK(usage_error({"--workers", "abc"}) == "invalid value 'abc' for --workers: expected a whole number");
    CHECK(usage_error({"-w", "-1"}) == "invalid value '-1' for --workers: expected a whole number");
    CHECK(usage_error({"--spare", "1.5"}) == "invalid value '1.5' for --spare: expected a whole number");
    CHECK(usage_error({"--max-requests", "99999999999999999999"}) ==
          "invalid value '99999999999999999999' for --max-requests: number too large");
}

TEST_CASE("max worker age jitter accepts a percentage or a fraction")
{
    CHECK(parse({"--max-worker-age-jitter", "10%"}).options.max_worker_age_jitter == doctest::Approx(0.1));
    CHECK(parse({"--max-worker-age-jitter", "0.1"}).options.max_worker_age_jitter == doctest::Approx(0.1));
    CHECK(parse({"--max-worker-age-jitter", "0"}).options.max_worker_age_jitter == 0.0);
    CHECK(usage_error({"--max-worker-age-jitter", "150%"}) ==
          "invalid value '150%' for --max-worker-age-jitter: must be between 0 and 1 (0% and 100%)");
    CHECK(usage_error({"--max-worker-age-jitter", "lots"}) ==
          "invalid value 'lots' for --max-worker-age-jitter: expected a fraction such as 0.1 or a percentage such as 10%");
}

TEST_CASE("the restart limit is a count and a window")
{
    CHECK(herd::parse_restart_limit("10/10s") == herd::RestartLimit{10, 10s});
    CHECK(herd::parse_restart_limit("3/1m") == herd::RestartLimit{3, 1min});
    CHECK(herd::parse_restart_limit("5/30") == herd::RestartLimit{5, 30s});
    CHECK_THROWS_AS(herd::parse_restart_limit("10"), std::invalid_argument);
    CHECK_THROWS_AS(herd::parse_restart_limit("x/10s"), std::invalid_argument);
    CHECK_THROWS_AS(herd::parse_restart_limit("10/"), std::invalid_argument);
    CHECK(usage_error({"--restart-limit", "10"}) ==
          "invalid value '10' for --restart-limit: expected COUNT/WINDOW such as 10/10s");
}

// Command-line mistakes
TEST_CASE("an unknown option is named")
{
    CHECK(usage_error({"--wrokers", "3"}) == "unknown option --wrokers");
    CHECK(usage_error({"-x"}) == "unknown option -x");
}

TEST_CASE("an abbreviated option is not guessed")
{
    CHECK(usage_error({"--work", "3"}) == "unknown option --work");
}

TEST_CASE("a missing value, an extra value and a repeated option are named")
{
    CHECK(usage_error({"--workers"}) == "option --workers needs a value");
    CHECK(usage_error({"--daemon=yes"}) == "option --daemon takes no value");
    CHECK(usage_error({"-w", "1", "--workers", "2"}) == "option --workers given more than once");
}

TEST_CASE("a stray argument is rejected")
{
    CHECK(usage_error({"serve"}) == "unexpected argument 'serve'");
    CHECK(usage_error({"--", "ls"}) == "unexpected argument 'ls'");
    CHECK_NOTHROW(parse({"--"}));
}

// Exec mode command
TEST_CASE("the command after -- is captured when the application accepts one")
{
    herd::OptionsExtension ext;
    ext.accepts_command = true;
    const auto cl = parse({"-w", "2", "--", "python3", "-m", "http.server", "--bind", "::1"}, ext);
    CHECK(cl.options.workers == 2);
    CHECK(cl.command == std::vector<std::string>{"python3", "-m", "http.server", "--bind", "::1"});
    CHECK(parse({"-w", "2"}, ext).command.empty());
    CHECK(usage_error({"python3"}, ext) == "unexpected argument 'python3' (the command goes after --)");
}

// Help and version
TEST_CASE("help and version are reported without starting")
{
    const auto ext = app_with_port();
    CHECK(parse({"--help"}, ext).help);
    CHECK(parse({"-h"}, ext).help);
    CHECK(parse({"--version"}, ext).version);
    CHECK_FALSE(parse({}, ext).help);
    CHECK_FALSE(parse({}, ext).version);
}

TEST_CASE("help wins over bad values of other options")
{
    CHECK(parse({"--workers", "abc", "--help"}).help);
    CHECK(parse({"--config", "/nonexistent/herd.conf", "--help"}).help);
}

TEST_CASE("the help text has the usage line, the groups, the defaults and the application's options")
{
    const std::string help = parse({}, app_with_port()).help_text;
    CHECK(help.rfind("Usage: hello-http [options]\n", 0) == 0);
    for (const char* part : {"Pool:", "Heartbeats and timeouts:", "Process:", "Logging:", "General:",
                             "hello-http options:", "-w, --workers N", "(default 4)", "--heartbeat-interval D",
                             "(default 1s)", "(default 10/10s)", "(default 10%)", "--port arg", "(default 8080)",
                             "--verbose", "-h, --help", "--version", "--config FILE"}) {
        const std::string wanted = part;
        CAPTURE(wanted);
        CHECK(help.find(wanted) != std::string::npos);
    }
}

TEST_CASE("the usage line names the command in exec mode")
{
    herd::OptionsExtension ext;
    ext.program = "herd";
    ext.accepts_command = true;
    CHECK(parse({}, ext).help_text.rfind("Usage: herd [options] -- COMMAND [ARGS...]\n", 0) == 0);
    ext.usage = "herd [options] -- PROGRAM";
    CHECK(parse({}, ext).help_text.rfind("Usage: herd [options] -- PROGRAM\n", 0) == 0);
}

// Application options
TEST_CASE("application options are parsed beside the standard ones")
{
    const auto cl = parse({"--port", "9090", "--verbose", "-w", "2"}, app_with_port());
    CHECK(cl.options.workers == 2);
    REQUIRE(cl.app_args != nullptr);
    CHECK((*cl.app_args)["port"].as<int>() == 9090);
    CHECK((*cl.app_args)["verbose"].as<bool>());
    CHECK((*cl.app_args)["workers"].as<std::string>() == "2");
}

TEST_CASE("application options keep their defaults")
{
    const auto cl = parse({}, app_with_port());
    CHECK((*cl.app_args)["port"].as<int>() == 8080);
    CHECK_FALSE((*cl.app_args)["verbose"].as<bool>());
}

TEST_CASE("a bad application value names the option and the value")
{
    CHECK(usage_error({"--port", "http"}, app_with_port()) == "invalid value 'http' for --port");
}

TEST_CASE("typed application options: a duration, a text and a count, with placeholders and defaults in --help")
{
    herd::OptionsExtension ext;
    ext.program = "app";
    ext.add_options = [](po::options_description& d) {
        d.add_options()("idle-timeout", herd::duration_option("60s"), "close a silent connection")(
            "settle", herd::duration_option("0s", herd::Duration{0}), "wait before serving")(
            "greeting", herd::text_option("Hi", "WORDS"), "body of /")("jobs", herd::count_option(4), "jobs at once");
    };
    const auto defaults = parse({}, ext);
    CHECK((*defaults.app_args)["idle-timeout"].as<herd::Duration>() == 60s);
    CHECK((*defaults.app_args)["settle"].as<herd::Duration>() == 0s);
    CHECK((*defaults.app_args)["greeting"].as<std::string>() == "Hi");
    CHECK((*defaults.app_args)["jobs"].as<unsigned>() == 4);
    const auto given = parse({"--idle-timeout", "1.5s", "--jobs", "7"}, ext);
    CHECK((*given.app_args)["idle-timeout"].as<herd::Duration>() == 1500ms);
    CHECK((*given.app_args)["jobs"].as<unsigned>() == 7);

    const std::string help = parse({"--help"}, ext).help_text;
    CHECK_MESSAGE(help.find("--idle-timeout D") != std::string::npos, help);
    CHECK_MESSAGE(help.find("(default 60s)") != std::string::npos, help);
    CHECK_MESSAGE(help.find("--greeting WORDS") != std::string::npos, help);
    CHECK_MESSAGE(help.find("--jobs N") != std::string::npos, help);

    CHECK(usage_error({"--idle-timeout", "5x"}, ext) ==
          "invalid value '5x' for --idle-timeout: expected a duration above 0 (250ms, 2s, 1.5s, 3m)");
    CHECK(usage_error({"--idle-timeout", "0"}, ext) ==
          "invalid value '0' for --idle-timeout: expected a duration above 0 (250ms, 2s, 1.5s, 3m)");
    CHECK(usage_error({"--settle", "-1"}, ext).find("invalid value '-1' for --settle") == 0);
    TempDir dir;
    CHECK(usage_error({"--config", dir.write("t.conf", "idle-timeout = soon\n")}, ext) ==
          "config file " + dir.path + "/t.conf, line 1: invalid value 'soon' for idle-timeout: expected a duration "
          "above 0 (250ms, 2s, 1.5s, 3m)");
}

// Config file
TEST_CASE("config file values are used")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf",
                                       "# a comment\n"
                                       "; another\n"
                                       "\n"
                                       "workers = 7   # inline comment\n"
                                       "heartbeat-timeout=3s\n"
                                       "listen = 127.0.0.1:8080\n"
                                       "listen = unix:/tmp/a#b.sock\n"
                                       "pid-file = /run/herd.pid\n"
                                       "daemon = true\n");
    const auto o = parse({"--config", file}).options;
    CHECK(o.workers == 7);
    CHECK(o.heartbeat_timeout == 3s);
    CHECK(o.listen == std::vector<std::string>{"127.0.0.1:8080", "unix:/tmp/a#b.sock"});
    CHECK(o.pid_file == "/run/herd.pid");
    CHECK(o.daemon);
    CHECK(o.config == file);
}

TEST_CASE("the command line wins over the config file")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers = 7\nlisten = a:1\nlisten = b:2\nspare = 3\n");
    const auto o = parse({"-w", "2", "--config", file, "-l", "c:3"}).options;
    CHECK(o.workers == 2);
    CHECK(o.listen == std::vector<std::string>{"c:3"});
    CHECK(o.spare == 3);
}

TEST_CASE("a flag can be turned off in the config file")
{
    TempDir dir;
    CHECK_FALSE(parse({"--config", dir.write("a.conf", "daemon = false\n")}).options.daemon);
    CHECK(usage_error({"--config", dir.write("b.conf", "daemon = maybe\n")}) ==
          "config file " + dir.path + "/b.conf, line 1: invalid value 'maybe' for daemon: expected true or false");
}

TEST_CASE("check is the command line's alone: in a file it would turn every start into a check")
{
    TempDir dir;
    CHECK(usage_error({"--config", dir.write("c.conf", "check = true\n")}) ==
          "config file " + dir.path + "/c.conf, line 1: option 'check' is only allowed on the command line");
    CHECK(parse({"--check", "--config", dir.write("d.conf", "workers = 2\n")}).options.check);
}

TEST_CASE("application options work in the config file")
{
    TempDir dir;
    const std::string file = dir.write("app.conf", "port = 9191\nverbose = true\n");
    const auto cl = parse({"--config", file}, app_with_port());
    CHECK((*cl.app_args)["port"].as<int>() == 9191);
    CHECK((*cl.app_args)["verbose"].as<bool>());
    CHECK((*parse({"--config", file, "--port", "1"}, app_with_port()).app_args)["port"].as<int>() == 1);
}

TEST_CASE("an unknown key in the config file names the file, the line and the key")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers = 2\n\nwrokers = 3\n");
    CHECK(usage_error({"--config", file}) == "config file " + file + ", line 3: unknown option 'wrokers'");
}

TEST_CASE("a bad value in the config file names the file, the line, the option and the value")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "spare = 1\nworkers = abc\n");
    CHECK(usage_error({"--config", file}) ==
          "config file " + file + ", line 2: invalid value 'abc' for workers: expected a whole number");
    const std::string app_file = dir.write("app.conf", "port = http\n");
    CHECK(usage_error({"--config", app_file}, app_with_port()) ==
          "config file " + app_file + ", line 1: invalid value 'http' for port");
}

TEST_CASE("a malformed config file line is named")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers 4\n");
    CHECK(usage_error({"--config", file}) == "config file " + file + ", line 1: expected key = value, got 'workers 4'");
    const std::string twice = dir.write("twice.conf", "workers = 1\nworkers = 2\n");
    CHECK(usage_error({"--config", twice}) == "config file " + twice + ", line 2: option workers given more than once");
}

TEST_CASE("a usage error shows the file's and the command line's bytes printable, on one line")
{
    TempDir dir;
    // A terminal escape sequence or a line break in a config file reaches stderr, or the log on
    // HUP, as \xNN, never as the raw byte
    const std::string section = dir.write("section.conf", "[pool\x1b[2J\n");
    CHECK(usage_error({"--config", section}) ==
          "config file " + section + ", line 1: expected [section], got '[pool\\x1b[2J'");
    const std::string value = dir.write("value.conf", "workers = 4\x07\r\n");
    CHECK(usage_error({"--config", value}) ==
          "config file " + value + ", line 1: invalid value '4\\x07' for workers: expected a whole number");
    CHECK(usage_error({"--workers", "2\n3"}) == "invalid value '2\\x0a3' for --workers: expected a whole number");
}

TEST_CASE("command-line-only options are refused in the config file")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "config = other.conf\n");
    CHECK(usage_error({"--config", file}) ==
          "config file " + file + ", line 1: option 'config' is only allowed on the command line");
}

TEST_CASE("a section other than [pool] and [pool.NAME] is refused")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers = 2\n[web]\nworkers = 3\n");
    CHECK(usage_error({"--config", file}) ==
          "config file " + file + ", line 2: unknown section [web]: expected [pool] or [pool.NAME]");
}

TEST_CASE("an unreadable config file is reported with the reason")
{
    TempDir dir;
    CHECK(usage_error({"--config", dir.path + "/missing.conf"}) ==
          "cannot read config file " + dir.path + "/missing.conf: No such file or directory");
    CHECK(usage_error({"--config", dir.path}) == "cannot read config file " + dir.path + ": Is a directory");
}

// Validation
TEST_CASE("the defaults are valid")
{
    CHECK(validation_error(herd::Options{}).empty());
}

TEST_CASE("the heartbeat interval must be above 0 and below the timeout")
{
    herd::Options o;
    o.heartbeat_interval = 0ms;
    CHECK(validation_error(o) == "--heartbeat-interval must be above 0 (got 0 s)");
    o.heartbeat_interval = 10s;
    CHECK(validation_error(o) == "--heartbeat-interval (10 s) must be below --heartbeat-timeout (10 s)");
    o.heartbeat_timeout = 0ms;   // heartbeats not watched
    CHECK(validation_error(o).empty());
}

TEST_CASE("at most 4096 workers")
{
    herd::Options o;
    o.workers = 4096;
    CHECK(validation_error(o).empty());
    o.workers = 4097;
    CHECK(validation_error(o) == "--workers must be at most 4096 (got 4097)");
}

TEST_CASE("the graceful and kill timeouts must be above 0")
{
    herd::Options o;
    o.graceful_timeout = 0ms;
    CHECK(validation_error(o) == "--graceful-timeout must be above 0 (got 0 s)");
    o = {};
    o.kill_timeout = 0ms;
    CHECK(validation_error(o) == "--kill-timeout must be above 0 (got 0 s)");
}

TEST_CASE("the restart limit needs a count and a window")
{
    herd::Options o;
    o.restart_limit = {0, 10s};
    CHECK(validation_error(o) == "--restart-limit needs a count of at least 1 (got 0/10 s)");
    o.restart_limit = {3, 0s};
    CHECK(validation_error(o) == "--restart-limit needs a window above 0 (got 3/0 s)");
}

TEST_CASE("the log level must be known")
{
    herd::Options o;
    o.log_level = "verbose";
    CHECK(validation_error(o) ==
          "invalid value 'verbose' for --log-level: expected one of trace, debug, info, warn, error, critical, off");
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        o.log_level = level;
        CHECK(validation_error(o).empty());
    }
}

// Exec mode (herd -- COMMAND)
namespace {

herd::OptionsExtension exec_mode()
{
    herd::OptionsExtension ext;
    ext.program = "herd";
    ext.accepts_command = true;
    ext.defaults = herd::exec_defaults();
    return ext;
}

}  // namespace

TEST_CASE("exec mode adds --ready-after and --stop-signal, with its own defaults")
{
    const auto cl = parse({"--", "python3", "app.py"}, exec_mode());
    CHECK(cl.options.ready_after == 1s);
    CHECK(cl.options.stop_signal == SIGTERM);
    const auto set = parse({"--ready-after", "250ms", "--stop-signal", "INT", "--", "app"}, exec_mode()).options;
    CHECK(set.ready_after == 250ms);
    CHECK(set.stop_signal == SIGINT);
    CHECK(parse({"--", "app"}, exec_mode()).help_text.find("Exec mode:") != std::string::npos);
}

TEST_CASE("a server binary knows neither --ready-after nor --stop-signal, and retires with QUIT")
{
    CHECK(usage_error({"--ready-after", "2s"}) == "unknown option --ready-after");
    CHECK(usage_error({"--stop-signal", "TERM"}) == "unknown option --stop-signal");
    const auto o = parse({}).options;
    CHECK_FALSE(o.ready_after.has_value());
    CHECK(o.stop_signal == SIGQUIT);
    CHECK(parse({}).help_text.find("Exec mode:") == std::string::npos);
}

TEST_CASE("--stop-signal refuses what is not a signal, and a signal that does not end a process")
{
    CHECK(usage_error({"--stop-signal", "TERMINATE", "--", "app"}, exec_mode()) ==
          "invalid value 'TERMINATE' for --stop-signal: expected a signal name such as TERM or INT, or its number");
    CHECK(usage_error({"--stop-signal", "0", "--", "app"}, exec_mode()).find("expected a signal name") != std::string::npos);
    CHECK(usage_error({"--stop-signal", "999", "--", "app"}, exec_mode()).find("expected a signal name") != std::string::npos);
    for (const char* stops : {"STOP", "TSTP", "TTIN", "TTOU", "CONT", "CHLD", "WINCH", "URG"}) {
        CAPTURE(stops);
        CHECK(usage_error({"--stop-signal", stops, "--", "app"}, exec_mode()).find("does not end a process") !=
              std::string::npos);
    }
}

TEST_CASE("without heartbeats, --ready-after must come before --boot-timeout")
{
    herd::Options o = herd::exec_defaults();
    o.heartbeat_timeout = 0s;
    o.boot_timeout = 1s;
    o.ready_after = 1s;
    CHECK(validation_error(o) == "--ready-after (1 s) must be below --boot-timeout (1 s)");
    o.ready_after = 500ms;
    CHECK(validation_error(o) == "");
    o.boot_timeout = 0s;   // off
    o.ready_after = 1h;
    CHECK(validation_error(o) == "");
    o.boot_timeout = 1s;
    o.heartbeat_timeout = 10s;   // --heartbeat auto: a program that never beats is ready by time
    CHECK(validation_error(o) == "--ready-after (3600 s) must be below --boot-timeout (1 s)");
    o.heartbeat = herd::HeartbeatMode::required;   // only heartbeats make it ready: --ready-after does not apply
    CHECK(validation_error(o) == "");
}

TEST_CASE("a config file with named pools gives exec mode one pool per section")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers = 2\n[pool.web]\ncommand = app\n");
    const auto cl = parse({"--config", file}, exec_mode());
    REQUIRE(cl.pools.size() == 1);
    CHECK(cl.pools[0].name == "web");
    CHECK(cl.pools[0].command == std::vector<std::string>{"app"});
    CHECK(cl.pools[0].options.workers == 2);
    const std::string other = dir.write("other.conf", "[web]\nworkers = 2\n");
    CHECK(usage_error({"--config", other, "--", "app"}, exec_mode()) ==
          "config file " + other + ", line 1: unknown section [web]: expected [pool] or [pool.NAME]");
}

TEST_CASE("exec mode's options work in the config file too")
{
    TempDir dir;
    const std::string file = dir.write("herd.conf", "stop-signal = INT\nready-after = 3s\n");
    const auto o = parse({"--config", file, "--", "app"}, exec_mode()).options;
    CHECK(o.stop_signal == SIGINT);
    CHECK(o.ready_after == 3s);
}

TEST_CASE("--heartbeat is auto in exec mode, takes required or off, and is unknown to a server binary")
{
    CHECK(parse({"--", "app"}, exec_mode()).options.heartbeat == herd::HeartbeatMode::automatic);
    CHECK(parse({"--heartbeat", "required", "--", "app"}, exec_mode()).options.heartbeat == herd::HeartbeatMode::required);
    CHECK(parse({"--heartbeat", "off", "--", "app"}, exec_mode()).options.heartbeat == herd::HeartbeatMode::off);
    CHECK(parse({"--heartbeat", "auto", "--", "app"}, exec_mode()).options.heartbeat == herd::HeartbeatMode::automatic);
    CHECK(usage_error({"--heartbeat", "sometimes", "--", "app"}, exec_mode()) ==
          "invalid value 'sometimes' for --heartbeat: expected auto, required or off");
    CHECK(usage_error({"--heartbeat", "off"}) == "unknown option --heartbeat");
    CHECK(parse({}).options.heartbeat == herd::HeartbeatMode::required);   // herd::Workers always beat
    CHECK(parse({"--", "app"}, exec_mode()).help_text.find("--heartbeat MODE") != std::string::npos);
}

TEST_CASE("--heartbeat required needs a heartbeat timeout to watch")
{
    herd::Options o = herd::exec_defaults();
    o.heartbeat = herd::HeartbeatMode::required;
    o.heartbeat_timeout = 0s;
    CHECK(validation_error(o) == "--heartbeat required needs a --heartbeat-timeout above 0 (got 0 s)");
    o.heartbeat = herd::HeartbeatMode::off;
    CHECK(validation_error(o) == "");
}

TEST_CASE("a bad --listen address is a usage error naming the option, the value and what is wrong")
{
    CHECK(usage_error({"-l", "999.1.1.1:80"}) ==
          "invalid value '999.1.1.1:80' for --listen: '999.1.1.1' is not an IPv4 address (four numbers from 0 to 255)");
    CHECK(usage_error({"--listen", "127.0.0.1:8080", "--listen", "[::1]:0x50"}) ==
          "invalid value '[::1]:0x50' for --listen: port '0x50' is not a number from 0 to 65535");
    TempDir dir;
    const std::string file = dir.write("herd.conf", "workers = 2\nlisten = unix:" + std::string(120, 'x') + "\n");
    CHECK(usage_error({"--config", file}) == "config file " + file + ", line 2: invalid value 'unix:" + std::string(120, 'x') +
                                                 "' for listen: the unix socket path is 120 bytes long, at most 107 fit "
                                                 "in a socket address");
}

// --max-worker-memory
TEST_CASE("--max-worker-memory is off by default and takes a size and a window, from the file too")
{
    const herd::Options d = parse({}).options;
    CHECK(d.max_worker_memory == 0);
    CHECK(d.max_worker_memory_window == 10s);
    const auto o = parse({"--max-worker-memory", "512M", "--max-worker-memory-window", "500ms"}).options;
    CHECK(o.max_worker_memory == 512ull << 20);
    CHECK(o.max_worker_memory_window == 500ms);
    TempDir dir;
    const auto file = dir.write("herd.conf", "max-worker-memory = 1.5G\nmax-worker-memory-window = 3s\n");
    const auto f = parse({"--config", file}).options;
    CHECK(f.max_worker_memory == 1536ull << 20);
    CHECK(f.max_worker_memory_window == 3s);
    CHECK(parse({"--config", file, "--max-worker-memory", "0"}).options.max_worker_memory == 0);
}

TEST_CASE("a bad --max-worker-memory or window names the option and the value")
{
    CHECK(usage_error({"--max-worker-memory", "lots"}) ==
          "invalid value 'lots' for --max-worker-memory: expected a size such as 512M, 2G, 1.5G, 100K or a number of bytes");
    CHECK(usage_error({"--max-worker-memory", "-1G"}) ==
          "invalid value '-1G' for --max-worker-memory: expected a size such as 512M, 2G, 1.5G, 100K or a number of bytes");
    CHECK(usage_error({"--max-worker-memory-window", "soon"}) ==
          "invalid value 'soon' for --max-worker-memory-window: expected a duration such as 250ms, 2s, 1.5s, 3m or 1h");
    CHECK(validation_error(parse({"--max-worker-memory", "1G", "--max-worker-memory-window", "0"}).options) ==
          "--max-worker-memory-window must be above 0 while --max-worker-memory is on (got 0 s)");
    // Off: the window is not used
    CHECK(validation_error(parse({"--max-worker-memory-window", "0"}).options).empty());
}
