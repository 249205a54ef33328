// The pools of a command line and its config file: `main`, or one per [pool.NAME] section, with
// [pool] and the top of the file as their defaults (pools.hpp, DESIGN.md §7a).
#include <herd/config/options.hpp>
#include <herd/option_types.hpp>
#include <herd/config/pools.hpp>
#include <herd/config/option_values.hpp>

#include <boost/program_options.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using Words = std::vector<std::string>;
using herd::PlanStep;

namespace {

/// A config file in a scratch directory under /tmp, removed with it.
struct ConfigFile {
    std::string dir;
    std::string path;
    explicit ConfigFile(const std::string& text)
    {
        char name[] = "/tmp/herd-pools-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        dir = name;
        path = dir + "/herd.conf";
        std::ofstream(path) << text;
    }
    ~ConfigFile() { std::filesystem::remove_all(dir); }
    ConfigFile(const ConfigFile&) = delete;
    ConfigFile& operator=(const ConfigFile&) = delete;

    /// "config file PATH, line N: "
    std::string at(int line) const { return "config file " + path + ", line " + std::to_string(line) + ": "; }
};

herd::OptionsExtension exec_mode()
{
    herd::OptionsExtension ext;
    ext.program = "herd";
    ext.accepts_command = true;
    ext.defaults = herd::exec_defaults();
    return ext;
}

/// A server binary with the Worker types web and jobs, and an option of its own.
herd::OptionsExtension server()
{
    herd::OptionsExtension ext;
    ext.program = "app";
    ext.worker_types = {"web", "jobs"};
    ext.add_options = [](boost::program_options::options_description& d) {
        d.add_options()("port", boost::program_options::value<int>()->default_value(8080), "port");
    };
    return ext;
}

herd::CommandLine parse(std::initializer_list<std::string> args, const herd::OptionsExtension& ext)
{
    std::vector<const char*> argv{"herd"};
    for (const auto& arg : args) argv.push_back(arg.c_str());
    return herd::parse_command_line(static_cast<int>(argv.size()), argv.data(), ext);
}

/// The UsageError text parsing `args` gives, or "" if it succeeds.
std::string usage_error(std::initializer_list<std::string> args, const herd::OptionsExtension& ext)
{
    try {
        parse(args, ext);
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "";
}

/// The UsageError text of `text` as the config file of `herd --config FILE [args] -- app`.
std::string file_error(const ConfigFile& file, std::initializer_list<std::string> args = {})
{
    std::vector<std::string> all{"--config", file.path};
    all.insert(all.end(), args);
    std::vector<const char*> argv{"herd"};
    for (const auto& arg : all) argv.push_back(arg.c_str());
    try {
        herd::parse_command_line(static_cast<int>(argv.size()), argv.data(), exec_mode());
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// One pool, as ever
TEST_CASE("without [pool.NAME] sections there is one pool, main, made of the command line")
{
    const auto cl = parse({"-w", "3", "-l", "127.0.0.1:0", "--", "app", "--flag"}, exec_mode());
    REQUIRE(cl.pools.size() == 1);
    const herd::PoolSpec& main = cl.pools.front();
    CHECK(main.name == "main");
    CHECK(main.options == cl.options);
    CHECK(main.command == Words{"app", "--flag"});
    CHECK(main.worker.empty());
    CHECK(main.supervision == herd::Supervision{});
    CHECK(main.line == 0);
    CHECK(cl.strategy == herd::Strategy::one);
    CHECK(parse({}, server()).pools.front().command.empty());
}

TEST_CASE("[pool] alone applies to main, over the command line, and is the command line's options too")
{
    const ConfigFile file("workers = 2\nspare = 2\n[pool]\nworkers = 5\nlisten = :0\nrestart = transient\n");
    const auto cl = parse({"--config", file.path, "-w", "3", "-l", "unix:/tmp/x.sock", "--", "app"}, exec_mode());
    REQUIRE(cl.pools.size() == 1);
    CHECK(cl.pools[0].name == "main");
    CHECK(cl.options.workers == 5);
    CHECK(cl.options.spare == 2);
    CHECK(cl.options.listen == Words{":0"});
    CHECK(cl.pools[0].options == cl.options);
    CHECK(cl.pools[0].supervision.restart == herd::RestartType::transient);
}

// Several pools
TEST_CASE("each [pool.NAME] is a pool, in file order, with its line, command or worker")
{
    const ConfigFile file("restart-strategy = rest\n"
                          "[pool.cache]\n"
                          "command = redis-server --unixsocket '/run/app/cache dir/c.sock'\n"
                          "workers = 1\n"
                          "[pool.web]\n"
                          "worker = web\n"
                          "listen = :8080\n");
    const auto cl = parse({"--config", file.path}, server());
    CHECK(cl.strategy == herd::Strategy::rest);
    REQUIRE(cl.pools.size() == 2);
    CHECK(cl.pools[0].name == "cache");
    CHECK(cl.pools[0].line == 2);
    CHECK(cl.pools[0].command == Words{"redis-server", "--unixsocket", "/run/app/cache dir/c.sock"});
    CHECK(cl.pools[0].worker.empty());
    CHECK(cl.pools[0].options.workers == 1);
    CHECK(cl.pools[1].name == "web");
    CHECK(cl.pools[1].line == 5);
    CHECK(cl.pools[1].worker == "web");
    CHECK(cl.pools[1].command.empty());
    CHECK(cl.pools[1].options.workers == 4);
    CHECK(cl.pools[1].options.listen == Words{":8080"});
}

TEST_CASE("the command line beats the file's top, [pool] beats both, [pool.NAME] beats all")
{
    const ConfigFile file("workers = 2\nspare = 3\nkill-timeout = 7s\n"
                          "[pool]\nspare = 4\ngraceful-timeout = 9s\n"
                          "[pool.a]\ncommand = a\n"
                          "[pool.b]\ncommand = b\nworkers = 6\nspare = 5\n");
    const auto cl = parse({"--config", file.path, "-w", "8", "--graceful-timeout", "1s", "--kill-timeout", "2s"},
                          exec_mode());
    CHECK(cl.options.workers == 8);   // the defaults of every pool: the command line and the top
    CHECK(cl.options.spare == 3);
    REQUIRE(cl.pools.size() == 2);
    const herd::Options& a = cl.pools[0].options;
    const herd::Options& b = cl.pools[1].options;
    CHECK(a.workers == 8);
    CHECK(a.spare == 4);
    CHECK(a.graceful_timeout == 9s);   // [pool] over the command line
    CHECK(a.kill_timeout == 2s);       // the command line over the top
    CHECK(b.workers == 6);
    CHECK(b.spare == 5);
    CHECK(b.graceful_timeout == 9s);
}

TEST_CASE("listen in a section replaces the addresses a pool inherits")
{
    const ConfigFile file("listen = unix:/tmp/top.sock\n"
                          "[pool]\nlisten = 127.0.0.1:0\nlisten = [::1]:0\n"
                          "[pool.a]\ncommand = a\n"
                          "[pool.b]\ncommand = b\nlisten = unix:/tmp/b.sock\nlisten = unix:/tmp/b2.sock\n");
    const auto cl = parse({"--config", file.path}, exec_mode());
    CHECK(cl.options.listen == Words{"unix:/tmp/top.sock"});
    CHECK(cl.pools[0].options.listen == Words{"127.0.0.1:0", "[::1]:0"});
    CHECK(cl.pools[1].options.listen == Words{"unix:/tmp/b.sock", "unix:/tmp/b2.sock"});
}

TEST_CASE("restart, plan, plan-count and on-restart-limit are defaults at the top and on the command line")
{
    const ConfigFile file("plan = restart, restart 5s, wait\n"
                          "[pool]\nplan-count = 3\n"
                          "[pool.a]\ncommand = a\n"
                          "[pool.b]\ncommand = b\nrestart = never\nplan = restart, stop\n"
                          "[pool.c]\ncommand = c\non-restart-limit = wait\nplan-count = infinity\n");
    const auto cl = parse({"--config", file.path, "--restart", "on-failure"}, exec_mode());
    REQUIRE(cl.pools.size() == 3);
    const herd::Supervision& a = cl.pools[0].supervision;
    CHECK(a.restart == herd::RestartType::transient);
    REQUIRE(a.plan.has_value());
    CHECK(a.plan->steps == std::vector<PlanStep>{{PlanStep::Kind::restart, {}}, {PlanStep::Kind::restart, 5s},
                                                  {PlanStep::Kind::wait, {}}});
    CHECK(a.plan->count == 3u);
    CHECK(a.on_restart_limit == herd::OnRestartLimit::backoff);
    const herd::Supervision& b = cl.pools[1].supervision;
    CHECK(b.restart == herd::RestartType::temporary);
    CHECK(b.plan == herd::RestartPlan{{{PlanStep::Kind::restart, {}}, {PlanStep::Kind::stop, {}}}, 3u});
    const herd::Supervision& c = cl.pools[2].supervision;
    CHECK(c.on_restart_limit == herd::OnRestartLimit::wait);
    REQUIRE(c.plan.has_value());
    CHECK_FALSE(c.plan->count.has_value());
    CHECK(c.plan->steps.size() == 3);

    const auto one = parse({"--plan", "restart 1s", "--plan-count", "2", "--", "app"}, exec_mode());
    CHECK(one.pools[0].supervision.plan == herd::RestartPlan{{{PlanStep::Kind::restart, 1s}}, 2u});
}

TEST_CASE("restart-strategy is the manager's: on the command line or at the top only")
{
    CHECK(parse({"--restart-strategy", "all", "--", "app"}, exec_mode()).strategy == herd::Strategy::all);
    CHECK(usage_error({"--restart-strategy", "one_for_all", "--", "app"}, exec_mode()) ==
          "invalid value 'one_for_all' for --restart-strategy: expected one, rest or all");
    const ConfigFile bad("restart-strategy = some\n");
    CHECK(file_error(bad) == bad.at(1) + "invalid value 'some' for restart-strategy: expected one, rest or all");
    const ConfigFile in_section("[pool.a]\ncommand = a\nrestart-strategy = rest\n");
    CHECK(file_error(in_section) ==
          in_section.at(3) + "option 'restart-strategy' applies to the whole manager; put it before the first [section]");
}

// What a section may hold
TEST_CASE("manager-wide options, application options and command-line-only options are refused in a section")
{
    for (const char* key : {"control", "pid-file", "log-level", "log-file", "name", "upgrade-timeout", "daemon"}) {
        CAPTURE(key);
        const ConfigFile file(std::string("[pool]\n") + key + " = x\n");
        CHECK(file_error(file) ==
              file.at(2) + "option '" + key + "' applies to the whole manager; put it before the first [section]");
    }
    const ConfigFile app("[pool.web]\nworker = web\nport = 9090\n");
    CHECK(usage_error({"--config", app.path}, server()) ==
          app.at(3) + "option 'port' applies to the whole manager; put it before the first [section]");
    const ConfigFile config("[pool.a]\nconfig = other.conf\n");
    CHECK(file_error(config) == config.at(2) + "option 'config' is only allowed on the command line");
}

TEST_CASE("unknown keys, repeated keys and misplaced command or worker are refused with their line")
{
    const ConfigFile unknown("[pool.a]\ncommand = a\nwrokers = 2\n");
    CHECK(file_error(unknown) == unknown.at(3) + "unknown option 'wrokers'");
    const ConfigFile twice("[pool.a]\ncommand = a\nworkers = 2\nworkers = 3\n");
    CHECK(file_error(twice) == twice.at(4) + "option workers given more than once");
    const ConfigFile twice_command("[pool.a]\ncommand = a\ncommand = b\n");
    CHECK(file_error(twice_command) == twice_command.at(3) + "option command given more than once");
    const ConfigFile top("command = app\n[pool.a]\n");
    CHECK(file_error(top, {"--", "x"}) == top.at(1) + "option 'command' names one pool's program; put it in a [pool.NAME] section");
    const ConfigFile defaults("[pool]\nworker = web\n");
    CHECK(usage_error({"--config", defaults.path}, server()) ==
          defaults.at(2) + "option 'worker' names one pool's Worker type; put it in a [pool.NAME] section");
}

TEST_CASE("sections: unknown ones, a pool twice, [pool] twice and bad pool names are refused")
{
    const ConfigFile unknown("[pools.web]\n");
    CHECK(file_error(unknown) == unknown.at(1) + "unknown section [pools.web]: expected [pool] or [pool.NAME]");
    const ConfigFile twice("[pool.web]\ncommand = a\n[pool.api]\ncommand = b\n[pool.web]\nworkers = 1\n");
    CHECK(file_error(twice) == twice.at(5) + "pool 'web' given twice (first at line 1)");
    const ConfigFile defaults("[pool]\nworkers = 1\n[pool]\nspare = 1\n");
    CHECK(file_error(defaults) == defaults.at(3) + "section [pool] given twice (first at line 1)");
    for (const char* name : {"Web", "web.1", "web pool", "wéb", "a/b"}) {
        CAPTURE(name);
        const ConfigFile bad(std::string("[pool.") + name + "]\ncommand = a\n");
        CHECK(file_error(bad) == bad.at(1) + "invalid pool name '" + name + "': use a-z, 0-9, _ and - only");
    }
    const ConfigFile empty("[pool.]\ncommand = a\n");
    CHECK(file_error(empty) == empty.at(1) + "invalid pool name '': use a-z, 0-9, _ and - only");
    const ConfigFile good("[pool.web_2-b]\ncommand = a\n");
    CHECK(parse({"--config", good.path}, exec_mode()).pools.front().name == "web_2-b");
}

// What a pool runs
TEST_CASE("exec mode: a pool without a command runs the one after --, and needs one")
{
    const ConfigFile file("[pool.a]\n[pool.b]\ncommand = b --x\n[pool.c]\nworkers = 1\n");
    const auto cl = parse({"--config", file.path, "--", "app", "1"}, exec_mode());
    REQUIRE(cl.pools.size() == 3);
    CHECK(cl.pools[0].command == Words{"app", "1"});
    CHECK(cl.pools[1].command == Words{"b", "--x"});
    CHECK(cl.pools[2].command == Words{"app", "1"});
    CHECK(file_error(file) == file.at(1) + "pool 'a' has no command: give it `command = PROGRAM ARGS`, or give every "
                                           "pool without one a command after --");
    const ConfigFile all("[pool.a]\ncommand = a\n[pool.b]\ncommand = b\n");
    CHECK(parse({"--config", all.path}, exec_mode()).pools.size() == 2);
    CHECK(parse({"--config", all.path}, exec_mode()).command.empty());
}

TEST_CASE("a command that does not split is refused naming it")
{
    const ConfigFile file("[pool.a]\ncommand = sh -c 'echo\n");
    CHECK(file_error(file) == file.at(2) + "invalid value 'sh -c 'echo' for command: unterminated ' quote");
    const ConfigFile empty("[pool.a]\ncommand =\n");
    CHECK(file_error(empty) == empty.at(2) + "invalid value '' for command: the command is empty");
}

TEST_CASE("a server binary's pool names a known worker type or a command, not neither and not both")
{
    const ConfigFile neither("[pool.web]\nworkers = 2\n");
    CHECK(usage_error({"--config", neither.path}, server()) ==
          neither.at(1) + "pool 'web' names neither a worker type (worker = NAME; this binary has: web, jobs) nor a "
                          "program (command = PROGRAM ARGS)");
    const ConfigFile both("[pool.web]\nworker = web\ncommand = app\n");
    CHECK(usage_error({"--config", both.path}, server()) ==
          both.at(3) + "pool 'web' names both command (line 3) and worker (line 2); a pool runs one or the other");
    const ConfigFile unknown("[pool.web]\nworker = wbe\n");
    CHECK(usage_error({"--config", unknown.path}, server()) ==
          unknown.at(2) + "unknown worker type 'wbe' for pool 'web' (this binary has: web, jobs)");
    const ConfigFile empty("[pool.web]\nworker =\n");
    CHECK(usage_error({"--config", empty.path}, server()) ==
          empty.at(2) + "invalid value '' for worker: expected the name of a Worker type (this binary has: web, jobs)");
    // No types listed yet: any name is taken here and checked by the application
    herd::OptionsExtension any = server();
    any.worker_types.clear();
    CHECK(parse({"--config", unknown.path}, any).pools.front().worker == "wbe");
    // herd itself runs commands only
    CHECK(file_error(unknown, {"--", "app"}) ==
          unknown.at(2) + "unknown worker type 'wbe' for pool 'web' (this binary has none)");
    const ConfigFile none("[pool.web]\nworkers = 2\n");
    CHECK(usage_error({"--config", none.path}, any) ==
          none.at(1) + "pool 'web' names neither a worker type (worker = NAME) nor a program (command = PROGRAM ARGS)");
}

TEST_CASE("a server binary's command pools get exec mode's options and defaults; its Worker pools refuse them")
{
    const ConfigFile file("[pool]\nstop-signal = INT\n"
                          "[pool.cache]\ncommand = redis-server\nready-after = 2s\nstderr-level = error\n"
                          "[pool.web]\nworker = web\n");
    const auto cl = parse({"--config", file.path}, server());
    const herd::Options& cache = cl.pools[0].options;
    CHECK(cache.ready_after == 2s);
    CHECK(cache.stop_signal == SIGINT);
    CHECK(cache.heartbeat == herd::HeartbeatMode::automatic);
    CHECK(cache.stderr_level == "error");
    CHECK(cache.stdout_level == "info");
    const herd::Options& web = cl.pools[1].options;
    CHECK_FALSE(web.ready_after.has_value());
    CHECK(web.stop_signal == SIGQUIT);
    CHECK(web.heartbeat == herd::HeartbeatMode::required);

    const ConfigFile in_worker_pool("[pool.web]\nworker = web\nready-after = 2s\n");
    CHECK(usage_error({"--config", in_worker_pool.path}, server()) ==
          in_worker_pool.at(3) + "option 'ready-after' applies to pools that run a command only; pool 'web' runs "
                                 "Worker type 'web'");
    const ConfigFile unused("[pool]\nstop-signal = INT\n[pool.web]\nworker = web\n");
    CHECK(usage_error({"--config", unused.path}, server()) ==
          unused.at(2) + "option 'stop-signal' applies to pools that run a command only, and no pool does");
    const ConfigFile main("[pool]\nheartbeat = off\n");
    CHECK(usage_error({"--config", main.path}, server()) ==
          main.at(2) + "option 'heartbeat' applies to pools that run a command only, and pool 'main' runs this "
                       "binary's workers");
    const ConfigFile top("ready-after = 1s\n[pool.cache]\ncommand = c\n");
    CHECK(usage_error({"--config", top.path}, server()) ==
          top.at(1) + "option 'ready-after' applies to pools that run a command only; put it in [pool] or [pool.NAME]");
}

TEST_CASE("exec mode's command pools take its options from the command line; a Worker pool does not")
{
    herd::OptionsExtension ext = exec_mode();
    ext.worker_types = {"web"};
    const ConfigFile file("[pool.a]\ncommand = a\n[pool.web]\nworker = web\n");
    const auto cl = parse({"--config", file.path, "--stop-signal", "INT", "--stdout-level", "debug"}, ext);
    CHECK(cl.pools[0].options.stop_signal == SIGINT);
    CHECK(cl.pools[0].options.stdout_level == "debug");
    CHECK(cl.pools[1].options.stop_signal == SIGQUIT);
    CHECK(cl.pools[1].options.ready_after == std::nullopt);
}

// Values
TEST_CASE("a worker's stdout is logged at info and its stderr at warn (a program's at info), unless set otherwise")
{
    const auto cl = parse({"--", "app"}, exec_mode());
    CHECK(cl.options.stdout_level == "info");
    CHECK(cl.options.stderr_level == "info");   // one pipe: the program's lines keep their order
    CHECK(parse({}, server()).options.stderr_level == "warn");
    const auto set = parse({"--stdout-level", "debug", "--stderr-level", "off", "--", "app"}, exec_mode());
    CHECK(set.pools[0].options.stdout_level == "debug");
    CHECK(set.pools[0].options.stderr_level == "off");
    CHECK(usage_error({"--stderr-level", "loud", "--", "app"}, exec_mode()) ==
          "invalid value 'loud' for --stderr-level: expected one of trace, debug, info, warn, error, critical, off");
    CHECK(parse({"--stdout-level", "debug"}, server()).options.stdout_level == "debug");
}

TEST_CASE("bad values in a section are refused with their line and key")
{
    const ConfigFile plan("[pool.a]\ncommand = a\nplan = restart, retsart\n");
    CHECK(file_error(plan) == plan.at(3) + "invalid value 'restart, retsart' for plan: unknown step 'retsart'; expected "
                                           "restart, restart D (a delay such as 5s), wait, stop or delete");
    const ConfigFile restart("[pool]\nrestart = sometimes\n[pool.a]\ncommand = a\n");
    CHECK(file_error(restart) == restart.at(2) + "invalid value 'sometimes' for restart: expected permanent, transient "
                                                 "or temporary (or always, on-failure, never)");
    const ConfigFile workers("[pool.a]\ncommand = a\nworkers = many\n");
    CHECK(file_error(workers) == workers.at(3) + "invalid value 'many' for workers: expected a whole number");
    const ConfigFile limit("[pool.a]\ncommand = a\non-restart-limit = panic\n");
    CHECK(file_error(limit) == limit.at(3) + "invalid value 'panic' for on-restart-limit: expected backoff, wait or stop");
    const ConfigFile listen("[pool.a]\ncommand = a\nlisten = 999.1.1.1:80\n");
    CHECK(file_error(listen).starts_with(listen.at(3) + "invalid value '999.1.1.1:80' for listen: "));
}

TEST_CASE("a plan-count needs a plan")
{
    const ConfigFile file("[pool]\nplan-count = 3\n[pool.a]\ncommand = a\nplan = wait\n[pool.b]\ncommand = b\n");
    CHECK(file_error(file) == file.at(2) + "plan-count needs a plan, and pool 'b' has none");
    const ConfigFile top("plan-count = 3\n");
    CHECK(file_error(top, {"--", "a"}) == top.at(1) + "plan-count needs a plan, and pool 'main' has none");
    CHECK(usage_error({"--plan-count", "3", "--", "a"}, exec_mode()) == "--plan-count needs a --plan");
}

TEST_CASE("each pool's options are validated, the message naming the pool")
{
    const ConfigFile file("[pool.a]\ncommand = a\n[pool.web]\ncommand = b\nheartbeat-interval = 20s\n");
    CHECK(file_error(file) == "pool web: --heartbeat-interval (20 s) must be below --heartbeat-timeout (10 s)");
    // The top's values need only be valid where a pool keeps them
    const ConfigFile fixed("heartbeat-interval = 20s\n[pool]\nheartbeat-timeout = 30s\n[pool.a]\ncommand = a\n");
    CHECK(file_error(fixed).empty());
}

// Addresses
TEST_CASE("two pools cannot listen on one address, however it is written")
{
    const auto clash = [](const std::string& first, const std::string& second) {
        const ConfigFile file("[pool.a]\ncommand = a\nlisten = " + first + "\n[pool.b]\ncommand = b\nlisten = " +
                              second + "\n");
        return file_error(file) == file.at(6) + "pool 'b' cannot listen on " + second + ": pool 'a' listens on " + first +
                                       " (two pools cannot share an address)";
    };
    CHECK(clash(":8080", ":8080"));
    CHECK(clash(":8080", "0.0.0.0:8080"));
    CHECK(clash("0.0.0.0:8080", "127.0.0.1:8080"));
    CHECK(clash("[::]:8080", "[::1]:8080"));
    CHECK(clash("[::1]:8080", "[0:0:0:0:0:0:0:1]:8080"));
    CHECK(clash("localhost:8080", "localhost:8080"));
    CHECK(clash("unix:/run/app.sock", "unix:/run/app.sock"));
    // Different ports, families or addresses, and port 0 (the kernel picks a free one each time) do not clash
    for (const auto& [first, second] : std::vector<std::pair<std::string, std::string>>{
             {":8080", ":8081"}, {":8080", "[::]:8080"}, {"127.0.0.1:8080", "127.0.0.2:8080"},
             {":0", ":0"}, {"127.0.0.1:0", "127.0.0.1:0"}, {"unix:/run/a.sock", "unix:/run/b.sock"},
             {"localhost:8080", "127.0.0.1:8080"}}) {
        CAPTURE(first);
        CAPTURE(second);
        const ConfigFile file("[pool.a]\ncommand = a\nlisten = " + first + "\n[pool.b]\ncommand = b\nlisten = " + second +
                              "\n");
        CHECK(file_error(file).empty());
    }
}

TEST_CASE("an address inherited by two pools is one address for both")
{
    const ConfigFile file("listen = :8080\n[pool.a]\ncommand = a\n[pool.b]\ncommand = b\n");
    CHECK(file_error(file) ==
          file.at(4) + "pool 'b' cannot listen on :8080: pool 'a' listens on :8080 (two pools cannot share an address)");
    const ConfigFile own("listen = :8080\n[pool.a]\ncommand = a\n[pool.b]\ncommand = b\nlisten = :8081\n");
    CHECK(file_error(own).empty());
}

TEST_CASE("a pool's program in one line reads back as the same words, so a change is seen")
{
    herd::PoolSpec spec;
    spec.command = {"python3", "job.py", "--name", "a b", "it's", ""};
    const std::string line = herd::program_of(spec);
    CHECK(line == "python3 job.py --name 'a b' 'it'\\''s' ''");
    CHECK(herd::split_command(line) == spec.command);
    herd::PoolSpec split = spec;
    split.command = {"python3", "job.py", "--name", "a", "b", "it's", ""};
    CHECK(herd::program_of(split) != line);
    herd::PoolSpec typed;
    typed.worker = "JobWorker";
    CHECK(herd::program_of(typed) == "worker JobWorker");
}
