// herdctl and several pools: the commands about one pool, status by pool, metrics labelled by pool.
// The answers are the manager's own (control_status.hpp), so that both ends of the protocol agree.
#include "herdctl_core.hpp"

#include <herd/manager/control_status.hpp>

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace herdctl;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace control = herd::control;

namespace {

const herd::TimePoint t0 = herd::TimePoint{} + 1000h;

std::string line_of(const std::vector<std::string>& args)
{
    return std::get<Request>(parse_command_line(args, "/run/herd.sock")).line;
}

std::string usage_error(const std::vector<std::string>& args)
{
    try {
        parse_command_line(args, "/run/herd.sock");
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "no usage error";
}

Request request(Command command, bool json = false)
{
    Request r;
    r.command = command;
    r.control = "/run/herd.sock";
    r.json = json;
    return r;
}

herd::WorkerRecord worker(int pid, int slot, unsigned generation, bool ready)
{
    herd::WorkerRecord w;
    w.pid = pid;
    w.slot = slot;
    w.generation = generation;
    w.spawned_at = t0;
    if (ready) w.ready_at = t0 + 10ms;
    w.last_heartbeat = t0 + 59s;
    w.requests = 12;
    return w;
}

/// A manager of two pools: cache (1 of 1 ready) and web (transient, with a plan, rolling, a slot held).
struct TwoPools {
    herd::PoolState cache;
    herd::PoolState web;
    herd::Options options;
    control::History cache_history;
    control::History web_history;
    control::History manager_history;

    TwoPools()
    {
        cache.target = 1;
        cache.workers = {worker(100, 0, 1, true)};
        web.target = 2;
        web.generation = 3;
        web.last_generation = 3;
        web.workers = {worker(201, 1, 3, false), worker(200, 0, 3, true)};
        web.rollout = herd::Rollout{herd::Reason::reload, 2, t0 + 58s, true};
        web.exits = {{"crashed", 2}};
        web.failures = {t0 + 55s};
        web_history.add(1, control::ExitRecord{190, "crashed (exit code 1)", 2s, t0 + 30s});
        manager_history.add(control::RolloutRecord{herd::Reason::upgrade, 2, false, "", t0 + 10s});
    }

    std::string answer() const
    {
        herd::Supervision transient;
        transient.restart = herd::RestartType::transient;
        transient.plan = herd::RestartPlan{{{herd::PlanStep::Kind::restart}, {herd::PlanStep::Kind::restart, 5s},
                                            {herd::PlanStep::Kind::wait}}, 3};
        const std::vector<control::PoolView> pools{
            {.name = "cache", .state = cache, .options = options, .history = cache_history},
            {.name = "web", .state = web, .options = options, .history = web_history, .stage = "running",
             .supervision = transient, .position = {2, 1}, .held = 1}};
        const control::ManagerFacts facts{1234, "app", "/srv/app", t0 - 3600s, std::nullopt};
        std::string line = control::status_answer(pools, facts, manager_history, t0 + 60s);
        line.pop_back();   // herdctl reads the line without its '\n'
        return line;
    }
};

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(text.substr(start, end - start));
    return lines;
}

bool has_line(const std::string& text, const std::string& line)
{
    const auto lines = lines_of(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

// Command line
TEST_CASE("herdctl scale POOL N names the pool; scale N sends what it did")
{
    CHECK(line_of({"scale", "web", "8"}) == "{\"command\":\"scale\",\"pool\":\"web\",\"workers\":8}\n");
    CHECK(line_of({"scale", "web", "-1"}) == "{\"command\":\"scale\",\"pool\":\"web\",\"delta\":-1}\n");
    CHECK(line_of({"scale", "web", "+2"}) == "{\"command\":\"scale\",\"pool\":\"web\",\"delta\":2}\n");
    CHECK(line_of({"scale", "8"}) == "{\"command\":\"scale\",\"workers\":8}\n");
    CHECK(usage_error({"scale", "web", "many"}) == "invalid value 'many' for scale: expected N, +K or -K");
    CHECK(usage_error({"scale", "web"}) == "invalid value 'web' for scale: expected N, +K or -K");
}

TEST_CASE("herdctl status, ready, metrics and stop take a pool; without one they are about the whole manager")
{
    for (const char* command : {"status", "ready", "metrics"})
        CHECK(line_of({command, "web"}) == "{\"command\":\"status\",\"pool\":\"web\"}\n");
    CHECK(line_of({"stop", "web"}) == "{\"command\":\"stop\",\"pool\":\"web\",\"graceful\":true}\n");
    CHECK(line_of({"stop", "web", "--now"}) == "{\"command\":\"stop\",\"pool\":\"web\",\"graceful\":false}\n");
    CHECK(line_of({"stop"}) == "{\"command\":\"stop\",\"graceful\":true}\n");
    CHECK(line_of({"status"}) == "{\"command\":\"status\"}\n");
    // stop POOL is done at its answer; a stop of the manager waits for the socket to close
    CHECK(std::get<Request>(parse_command_line({"stop", "web"}, "/run/herd.sock")).pool == "web");
    CHECK(std::get<Request>(parse_command_line({"stop"}, "/run/herd.sock")).pool.empty());
}

TEST_CASE("herdctl restart, start and plan are about one pool")
{
    CHECK(line_of({"restart", "web"}) == "{\"command\":\"restart\",\"pool\":\"web\"}\n");
    CHECK(line_of({"start", "web"}) == "{\"command\":\"start\",\"pool\":\"web\"}\n");
    CHECK(line_of({"plan", "web"}) == "{\"command\":\"plan\",\"pool\":\"web\"}\n");
    CHECK(line_of({"plan", "web", "restart, restart 5s, wait"}) ==
          "{\"command\":\"plan\",\"pool\":\"web\",\"plan\":\"restart, restart 5s, wait\"}\n");
    // Unquoted, the words are one plan
    CHECK(line_of({"plan", "web", "restart,", "wait"}) == "{\"command\":\"plan\",\"pool\":\"web\",\"plan\":\"restart, wait\"}\n");
    // Operations wait for the outcome; a plan is changed at once
    const auto timeout = [](const std::vector<std::string>& args) {
        return std::get<Request>(parse_command_line(args, "/s")).timeout;
    };
    CHECK(timeout({"restart", "web"}) == 10min);
    CHECK(timeout({"start", "web"}) == 10min);
    CHECK(timeout({"stop", "web"}) == 10min);
    CHECK(timeout({"plan", "web", "wait"}) == 5s);
    CHECK(std::get<Request>(parse_command_line({"plan", "web"}, "/s")).command == Command::plan);
}

TEST_CASE("herdctl names a missing or malformed pool, and an argument too many, in one line")
{
    CHECK(usage_error({"restart"}) == "restart needs a pool: restart POOL");
    CHECK(usage_error({"start"}) == "start needs a pool: start POOL");
    CHECK(usage_error({"plan"}) == "plan needs a pool: plan POOL, or plan POOL \"restart, wait\" to change it");
    CHECK(usage_error({"restart", "we b"}) == "invalid pool name 'we b' for restart: 1 to 64 letters, digits, '-' or '_'");
    CHECK(usage_error({"status", ""}) == "invalid pool name '' for status: 1 to 64 letters, digits, '-' or '_'");
    CHECK(usage_error({"scale", "a.b", "3"}) == "invalid pool name 'a.b' for scale: 1 to 64 letters, digits, '-' or '_'");
    CHECK(usage_error({"restart", "web", "now"}) == "unexpected argument 'now' after restart");
    CHECK(usage_error({"reload", "web"}) == "unexpected argument 'web' after reload");
    CHECK(usage_error({"restart", "web", "--now"}) == "option --now only applies to stop");
    CHECK(usage_error({"plan", "web", " "}) == "invalid plan ' ': no step (such as \"restart, restart 5s, wait\")");
}

TEST_CASE("herdctl --help lists the commands about pools")
{
    const auto help = std::get<Info>(parse_command_line({"--help"}, "")).text;
    for (const char* command : {"status [POOL]", "scale POOL N|+K|-K", "stop POOL [--now]", "restart POOL", "start POOL",
                                "plan POOL [PLAN]", "ready [POOL]", "metrics [POOL]"})
        CHECK_MESSAGE(help.find("  " + std::string(command) + " ") != std::string::npos, command);
}

// Status
TEST_CASE("herdctl status shows the manager, then each pool: a header line, its rollout, exits and workers")
{
    const TwoPools t;
    CHECK(render_status(json::parse(t.answer()).as_object()) ==
          "manager 1234 (app): running, generation 3, 2 of 3 workers ready, up 1h 1m\n"
          "last rollout: upgrade to generation 2 complete 50s ago\n"
          "\n"
          "pool cache: running, 1 of 1 worker ready, permanent\n"
          "SLOT  PID  GEN  STATE  AGE  HEARTBEAT  REQUESTS  LAST EXIT\n"
          "0     100  1    ready  1m   1s ago     12        -\n"
          "\n"
          "pool web: running, 1 of 2 workers ready, transient, plan \"restart, restart 5s, wait\" (run 1 of 3, next: wait)\n"
          "1 slot held until herdctl restart web\n"
          "rollout: reload to generation 3 (from 2), rolling for 2s\n"
          "exits: crashed 2\n"
          "restarts: 1 failure in the window (limit 10/10 s)\n"
          "SLOT  PID  GEN  STATE    AGE  HEARTBEAT  REQUESTS  LAST EXIT\n"
          "0     200  3    ready    1m   1s ago     12        -\n"
          "1     201  3    booting  1m   -          12        crashed (exit code 1), 30s ago\n");
    CHECK(interpret(request(Command::status), t.answer()).out == render_status(json::parse(t.answer()).as_object()));
}

TEST_CASE("herdctl status of pools: a pool with no workers says so, a pre-flight check is the manager's line")
{
    TwoPools t;
    t.cache.workers.clear();
    json::object answer = json::parse(t.answer()).as_object();
    answer["manager"].as_object()["rollout"] = {{"kind", "upgrade"}, {"state", "checking"}, {"generation", 4},
                                                {"from_generation", 3}, {"elapsed_s", 0.5}};
    const std::string text = render_status(answer);
    CHECK(has_line(text, "rollout: upgrade to generation 4 (from 3), checking for 0.5s"));
    CHECK(text.find("pool cache: running, 0 of 1 worker ready, permanent\nno workers\n") != std::string::npos);
}

TEST_CASE("herdctl status --json passes the answer with its pools through; ready reads the whole manager")
{
    const TwoPools t;
    const Outcome json_out = interpret(request(Command::status, true), t.answer());
    CHECK(json_out.exit_code == exit_ok);
    CHECK(json_out.out == t.answer() + "\n");
    const Outcome ready = interpret(request(Command::ready), t.answer());
    CHECK(ready.exit_code == exit_failure);
    CHECK(ready.err == "herdctl: not ready: reload to generation 3 (from 2), rolling for 2s; 2 of 3 workers ready\n");
}

TEST_CASE("herdctl names a malformed pool in the answer")
{
    json::object answer = json::parse(TwoPools().answer()).as_object();
    answer["pools"] = json::object{};
    CHECK(interpret(request(Command::status), json::serialize(answer)).err ==
          "herdctl: malformed answer from the manager: \"pools\" is not an array\n");
    answer["pools"] = json::array{7};
    CHECK(interpret(request(Command::metrics), json::serialize(answer)).err ==
          "herdctl: malformed answer from the manager: \"pools[]\" is not an object\n");
}

// Answers about one pool
TEST_CASE("herdctl reports a finished operation on a pool in one line naming it")
{
    const auto out = [](Command c, std::string_view line) {
        const Outcome o = interpret(request(c), line);
        CHECK(o.exit_code == exit_ok);
        CHECK(o.err.empty());
        return o.out;
    };
    const std::string web = R"({"ok":true,"pool":"web","stage":"running","generation":3,"target":8,"ready":8})";
    CHECK(out(Command::scale, web) == "scaled web: 8 of 8 workers ready\n");
    CHECK(out(Command::restart, web) == "restarted web: generation 3, 8 of 8 workers ready\n");
    CHECK(out(Command::start, web) == "started web: 8 of 8 workers ready\n");
    CHECK(out(Command::stop, R"({"ok":true,"pool":"web","stage":"stopped","generation":3,"target":0,"ready":0})") ==
          "stopped web\n");
    CHECK(interpret(request(Command::restart), R"({"ok":true,"target":8,"ready":8})").err ==
          "herdctl: malformed answer from the manager: no \"pool\"\n");
}

TEST_CASE("herdctl plan shows the plan and where the pool stands in it, or the restart limit without one")
{
    const TwoPools t;
    const herd::PoolState quiet;
    herd::Supervision sup;
    sup.plan = herd::RestartPlan{{{herd::PlanStep::Kind::restart, 5s}, {herd::PlanStep::Kind::stop}}, std::nullopt};
    const control::PoolView with_plan{.name = "web", .state = quiet, .options = t.options, .history = t.web_history,
                                      .supervision = sup, .position = {1, 4}, .held = 2};
    CHECK(interpret(request(Command::plan), control::plan_answer(with_plan)).out ==
          "web: permanent, plan \"restart 5s, stop\" (run 4 of infinity, next: stop); 2 slots held until herdctl restart web\n");
    const control::PoolView without{.name = "cache", .state = quiet, .options = t.options, .history = t.cache_history};
    CHECK(interpret(request(Command::plan), control::plan_answer(without)).out ==
          "cache: permanent, no plan: past the restart limit (10/10 s), backoff\n");
}

// Metrics
TEST_CASE("herdctl metrics labels every per-pool and per-worker sample with its pool")
{
    const std::string text = render_metrics(json::parse(TwoPools().answer()).as_object());
    CHECK(has_line(text, "herd_workers{pool=\"cache\",state=\"ready\"} 1"));
    CHECK(has_line(text, "herd_workers{pool=\"web\",state=\"booting\"} 1"));
    CHECK(has_line(text, "herd_workers{pool=\"web\",state=\"killed\"} 0"));
    CHECK(has_line(text, "herd_target_workers{pool=\"cache\"} 1"));
    CHECK(has_line(text, "herd_target_workers{pool=\"web\"} 2"));
    CHECK(has_line(text, "herd_generation{pool=\"web\"} 3"));
    CHECK(has_line(text, "herd_uptime_seconds 3660"));
    CHECK(has_line(text, "herd_worker_exits_total{pool=\"web\",reason=\"crashed\"} 2"));
    CHECK(has_line(text, "herd_restart_failures{pool=\"cache\"} 0"));
    CHECK(has_line(text, "herd_restart_failures{pool=\"web\"} 1"));
    CHECK(has_line(text, "herd_worker_heartbeat_age_seconds{pool=\"cache\",slot=\"0\",pid=\"100\",generation=\"1\"} 1"));
    CHECK(has_line(text, "herd_worker_requests_total{pool=\"web\",slot=\"1\",pid=\"201\",generation=\"3\"} 12"));
    CHECK(has_line(text, "herd_rollouts_total{kind=\"upgrade\",result=\"complete\"} 1"));
    // Each family once, whatever the number of pools
    const auto lines = lines_of(text);
    CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with("# TYPE "); }) == 10);
    CHECK(std::count(lines.begin(), lines.end(), "# TYPE herd_workers gauge") == 1);
    CHECK(text.ends_with("\n# EOF\n"));
}
