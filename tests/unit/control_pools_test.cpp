// The control protocol of several pools, pure: requests that name a pool, status grouped by pool,
// the answers about one pool.
#include <herd/manager/control_status.hpp>

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace herd;
using namespace herd::control;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

std::string error_of(std::string_view line)
{
    auto parsed = parse_request(line);
    return std::holds_alternative<std::string>(parsed) ? std::get<std::string>(parsed) : "no error";
}

Request request_of(std::string_view line)
{
    auto parsed = parse_request(line);
    REQUIRE_MESSAGE(std::holds_alternative<Request>(parsed), std::get<std::string>(parsed));
    return std::get<Request>(parsed);
}

boost::json::object parse(const std::string& line)
{
    REQUIRE(line.ends_with("\n"));
    REQUIRE(line.find('\n') == line.size() - 1);   // one line
    return boost::json::parse(line).as_object();
}

WorkerRecord worker(int pid, int slot, unsigned generation, bool ready)
{
    WorkerRecord w;
    w.pid = pid;
    w.slot = slot;
    w.generation = generation;
    w.spawned_at = t0;
    if (ready) w.ready_at = t0 + 10ms;
    w.last_heartbeat = t0 + 9s;
    w.requests = 7;
    return w;
}

PoolState pool_of(unsigned target, std::vector<WorkerRecord> workers)
{
    PoolState s;
    s.target = target;
    s.workers = std::move(workers);
    s.ever_ready = true;
    return s;
}

/// cache (1 of 1 ready) and web (2 of 3 ready, a transient pool with a plan, one slot held)
struct TwoPools {
    PoolState cache = pool_of(1, {worker(100, 0, 1, true)});
    PoolState web = pool_of(3, {worker(201, 1, 2, true), worker(200, 0, 2, true)});
    Options cache_options;
    Options web_options;
    History cache_history;
    History web_history;
    History manager_history;
    ManagerFacts facts{77, "app", "/srv/app", t0 - 50s, std::nullopt};

    TwoPools()
    {
        web.generation = 2;
        web.last_generation = 2;
        cache.exits = {{"crashed", 1}};
        web.exits = {{"crashed", 2}, {"retired", 1}};
        web.failures = {t0 + 1s, t0 + 2s};
        web.backoff_until = t0 + 13s;
        cache.backoff_until = t0 + 11s;
        web_options.restart_limit = {3, 1min};
        cache_history.add(0, ExitRecord{90, "crashed (signal 9)", 1s, t0 + 5s});
        web_history.add(0, ExitRecord{190, "retired (HUP)", 2s, t0 + 6s});
        manager_history.add(RolloutRecord{Reason::reload, 2, false, "", t0 + 1s});
    }

    std::vector<PoolView> views() const
    {
        Supervision web_supervision;
        web_supervision.restart = RestartType::transient;
        web_supervision.plan = RestartPlan{{{PlanStep::Kind::restart}, {PlanStep::Kind::restart, 5s}, {PlanStep::Kind::wait}}, 3};
        return {PoolView{.name = "cache", .state = cache, .options = cache_options, .history = cache_history},
                PoolView{.name = "web", .state = web, .options = web_options, .history = web_history,
                         .stage = "running", .supervision = web_supervision, .position = {1, 2}, .held = 1}};
    }
};

}  // namespace

// Requests
TEST_CASE("status, scale and stop may name a pool; restart, start and plan must")
{
    CHECK(request_of(R"({"command":"status","pool":"web"})").pool == "web");
    CHECK(request_of(R"({"command":"status"})").pool == std::nullopt);
    const Request scale = request_of(R"({"command":"scale","pool":"web","workers":8})");
    CHECK(scale == Request{.command = Command::scale, .workers = 8u, .pool = "web"});
    CHECK(request_of(R"({"command":"scale","delta":-1,"pool":"cache_2"})").delta == -1);
    CHECK(request_of(R"({"command":"stop","pool":"web"})") == Request{.command = Command::stop, .pool = "web"});
    CHECK(request_of(R"({"command":"stop","pool":"web","graceful":false})").graceful == false);
    CHECK(request_of(R"({"command":"restart","pool":"web"})") == Request{.command = Command::restart, .pool = "web"});
    CHECK(request_of(R"({"command":"start","pool":"Web-1"})") == Request{.command = Command::start, .pool = "Web-1"});
    CHECK(request_of(R"({"command":"plan","pool":"web"})") == Request{.command = Command::plan, .pool = "web"});
    CHECK(request_of(R"({"command":"plan","pool":"web","plan":"restart, restart 5s, wait"})").plan ==
          "restart, restart 5s, wait");
}

TEST_CASE("today's requests parse as they did: no pool, no plan")
{
    CHECK(request_of(R"({"command":"scale","workers":8})") == Request{Command::scale, 8u, 0, true});
    CHECK(request_of(R"({"command":"stop","graceful":true})") == Request{Command::stop, std::nullopt, 0, true});
    for (const char* op : {"status", "reload", "upgrade", "stop"}) {
        const Request r = request_of(R"({"command":")" + std::string(op) + "\"}");
        CHECK(r.pool == std::nullopt);
        CHECK(r.plan == std::nullopt);
    }
}

TEST_CASE("a request about a pool without one, or with a malformed name, is answered with one sentence")
{
    for (const char* op : {"restart", "start", "plan"})
        CHECK(error_of(R"({"command":")" + std::string(op) + "\"}") ==
              std::string(op) + " needs \"pool\": the name of a pool");
    const std::string rule = "a pool name is 1 to 64 letters, digits, '-' or '_'";
    CHECK(error_of(R"({"command":"restart","pool":7})") == "invalid value 7 for \"pool\": " + rule);
    CHECK(error_of(R"({"command":"restart","pool":null})") == "invalid value null for \"pool\": " + rule);
    CHECK(error_of(R"({"command":"status","pool":"we b"})") == "invalid value \"we b\" for \"pool\": " + rule);
    CHECK(error_of(R"({"command":"scale","pool":"","workers":1})") == "invalid value \"\" for \"pool\": " + rule);
    CHECK(error_of(R"({"command":"stop","pool":"a.b"})") == "invalid value \"a.b\" for \"pool\": " + rule);
    CHECK(error_of(R"({"command":"start","pool":"web\n"})") == "invalid value \"web\\\\n\" for \"pool\": " + rule);   // JSON's escape, then the log's
    // The whole manager's operations take no pool
    CHECK(error_of(R"({"command":"reload","pool":"web"})") == "unknown key \"pool\" for reload");
    CHECK(error_of(R"({"command":"upgrade","pool":"web"})") == "unknown key \"pool\" for upgrade");
    CHECK(error_of(R"({"command":"restart","pool":"web","graceful":true})") == "unknown key \"graceful\" for restart");
}

TEST_CASE("a pool name is 1 to 64 letters, digits, '-' or '_'")
{
    CHECK(is_pool_name("main"));
    CHECK(is_pool_name("web-2_EU"));
    CHECK(is_pool_name("9"));
    CHECK(is_pool_name(std::string(64, 'p')));
    CHECK_FALSE(is_pool_name(std::string(65, 'p')));
    CHECK_FALSE(is_pool_name(""));
    for (const char* bad : {"a b", "a.b", "a/b", "a:b", "ä", "web\n", "[web]", "web\"x"})
        CHECK_MESSAGE(!is_pool_name(bad), bad);
}

TEST_CASE("a new plan must be one printable line of text; its words are the config parser's to judge")
{
    const std::string example = "such as \"restart, restart 5s, wait\"";
    CHECK(error_of(R"({"command":"plan","pool":"web","plan":3})") == "invalid value 3 for \"plan\": not a string (" + example + ")");
    CHECK(error_of(R"({"command":"plan","pool":"web","plan":["restart"]})") ==
          "invalid value [\"restart\"] for \"plan\": not a string (" + example + ")");
    CHECK(error_of(R"({"command":"plan","pool":"web","plan":""})") == "invalid value \"\" for \"plan\": no step (" + example + ")");
    CHECK(error_of(R"({"command":"plan","pool":"web","plan":"   "})") == "invalid value \"   \" for \"plan\": no step (" + example + ")");
    CHECK(error_of(R"({"command":"plan","pool":"web","plan":"restart,\nwait"})") ==
          "invalid value \"restart,\\\\nwait\" for \"plan\": not one line of printable text");
    const std::string longer = error_of(R"({"command":"plan","pool":"web","plan":")" + std::string(2000, 'r') + "\"}");
    CHECK(longer.ends_with("for \"plan\": longer than 1024 bytes"));
    CHECK(longer.size() < 200);
    CHECK(request_of(R"({"command":"plan","pool":"web","plan":"bogus"})").plan == "bogus");
    // Only plan carries a plan
    CHECK(error_of(R"({"command":"restart","pool":"web","plan":"wait"})") == "unknown key \"plan\" for restart");
    CHECK(error_of(R"({"command":"status","plan":"wait"})") == "unknown key \"plan\" for status");
}

TEST_CASE("the pool a request is about: the one it names, or the only one; else a sentence listing the pools")
{
    const std::vector<std::string> two{"cache", "web"};
    CHECK(pick_pool(Request{.command = Command::scale, .workers = 2u, .pool = "web"}, two) == std::variant<std::size_t, std::string>(1u));
    CHECK(std::get<std::string>(pick_pool(Request{.command = Command::restart, .pool = "db"}, two)) ==
          "unknown pool 'db' (this manager runs cache, web)");
    CHECK(std::get<std::string>(pick_pool(Request{.command = Command::scale, .workers = 2u}, two)) ==
          "scale needs a pool: this manager runs cache, web");
    CHECK(std::get<std::size_t>(pick_pool(Request{.command = Command::scale, .workers = 2u}, {"main"})) == 0);
    CHECK(std::get<std::size_t>(pick_pool(Request{.command = Command::status, .pool = "main"}, {"main"})) == 0);
}

// Status
TEST_CASE("status groups workers by pool, each pool with its stage, supervision, counters and exits")
{
    const TwoPools t;
    const auto status = parse(status_answer(t.views(), t.facts, t.manager_history, t0 + 10s));
    const auto& pools = status.at("pools").as_array();
    REQUIRE(pools.size() == 2);

    const auto& cache = pools[0].as_object();
    CHECK(cache.at("name") == "cache");
    CHECK(cache.at("stage") == "running");
    CHECK(cache.at("restart") == "permanent");
    CHECK(cache.at("plan").is_null());
    CHECK(cache.at("on_restart_limit") == "backoff");
    CHECK(cache.at("held") == 0);
    CHECK(cache.at("target") == 1);
    CHECK(cache.at("ready") == 1);
    CHECK(cache.at("at_target") == true);
    CHECK(cache.at("exits") == boost::json::object{{"crashed", 1}});
    CHECK(cache.at("restart_limit") == "10/10 s");
    CHECK(cache.at("backoff_s").as_double() == doctest::Approx(1.0));
    REQUIRE(cache.at("workers").as_array().size() == 1);
    CHECK(cache.at("workers").at(0).at("pid") == 100);
    CHECK(cache.at("workers").at(0).at("exits").at(0).at("outcome") == "crashed (signal 9)");

    const auto& web = pools[1].as_object();
    CHECK(web.at("name") == "web");
    CHECK(web.at("restart") == "transient");
    CHECK(web.at("plan") == boost::json::value{{"steps", "restart, restart 5s, wait"}, {"count", 3}, {"next", "restart 5s"}, {"run", 2}});
    CHECK(web.at("held") == 1);
    CHECK(web.at("generation") == 2);
    CHECK(web.at("target") == 3);
    CHECK(web.at("ready") == 2);
    CHECK(web.at("at_target") == false);
    CHECK(web.at("failures") == 2);
    CHECK(web.at("restart_limit") == "3/60 s");
    const auto& workers = web.at("workers").as_array();
    REQUIRE(workers.size() == 2);
    CHECK(workers[0].at("slot") == 0);   // by slot
    CHECK(workers[0].at("pool") == "web");
    // Slot 0 of each pool has its own history
    CHECK(workers[0].at("exits").at(0).at("outcome") == "retired (HUP)");
}

TEST_CASE("status keeps today's top level: the whole manager, and every worker naming its pool")
{
    const TwoPools t;
    const auto status = parse(status_answer(t.views(), t.facts, t.manager_history, t0 + 10s));
    CHECK(status.at("ok") == true);
    const auto& m = status.at("manager").as_object();
    CHECK(m.at("pid") == 77);
    CHECK(m.at("generation") == 2);   // the highest
    CHECK(m.at("target") == 4);       // summed
    CHECK(m.at("ready") == 3);
    CHECK(m.at("at_target") == false);   // web is short
    CHECK(m.at("phase") == "running");
    CHECK(m.at("exits") == boost::json::object{{"crashed", 3}, {"retired", 1}});
    CHECK(m.at("failures") == 2);
    CHECK(m.at("restart_limit") == "10/10 s");   // the first pool's
    CHECK(m.at("backoff_s").as_double() == doctest::Approx(3.0));   // the longest
    CHECK(m.at("last_rollout").at("kind") == "reload");
    CHECK(m.at("rollouts").at("reload").at("complete") == 1);
    CHECK(m.at("rollout").is_null());
    const auto& workers = status.at("workers").as_array();
    REQUIRE(workers.size() == 3);
    CHECK(workers[0].at("pool") == "cache");
    CHECK(workers[1].at("pool") == "web");
    CHECK(workers[1].at("slot") == 0);
    CHECK(workers[2].at("slot") == 1);
}

TEST_CASE("status of the whole manager: at target when every pool is, rolling when one pool rolls")
{
    TwoPools t;
    t.web.workers.push_back(worker(202, 2, 2, true));
    auto m = parse(status_answer(t.views(), t.facts, t.manager_history, t0 + 10s)).at("manager").as_object();
    CHECK(m.at("at_target") == true);

    t.web.rollout = Rollout{Reason::reload, 1, t0 + 8s, false};
    const auto status = parse(status_answer(t.views(), t.facts, t.manager_history, t0 + 10s));
    m = status.at("manager").as_object();
    CHECK(m.at("at_target") == false);
    CHECK(m.at("rollout").at("state") == "rolling");
    CHECK(m.at("rollout").at("from_generation") == 1);
    CHECK(status.at("pools").at(0).at("rollout").is_null());
    CHECK(status.at("pools").at(1).at("rollout").at("elapsed_s").as_double() == doctest::Approx(2.0));

    // An upgrade's pre-flight check is the manager's: the generation after the highest
    t.web.rollout.reset();
    t.facts.checking = t0 + 9s;
    t.facts.phase = Phase::stopping_graceful;
    m = parse(status_answer(t.views(), t.facts, t.manager_history, t0 + 10s)).at("manager").as_object();
    CHECK(m.at("rollout").at("state") == "checking");
    CHECK(m.at("rollout").at("generation") == 3);
    CHECK(m.at("rollout").at("from_generation") == 2);
    CHECK(m.at("phase") == "stopping");
}

TEST_CASE("status of a manager of one pool shows it as the pool main, its manager fields as before")
{
    PoolState s = pool_of(2, {worker(300, 1, 3, true), worker(200, 0, 3, false)});
    s.generation = 3;
    s.last_generation = 3;
    s.exits = {{"crashed", 2}};
    History h;
    h.add(0, ExitRecord{150, "crashed (signal 9)", 2500ms, t0 + 8s});
    const Options o;
    const ManagerFacts facts{77, "app", "/srv/app", t0 - 50s, std::nullopt};
    const auto status = parse(status_answer(s, o, facts, h, t0 + 10s));
    REQUIRE(status.at("pools").as_array().size() == 1);
    const auto& main = status.at("pools").at(0).as_object();
    CHECK(main.at("name") == "main");
    CHECK(main.at("stage") == "running");
    CHECK(main.at("restart") == "permanent");
    CHECK(main.at("workers") == status.at("workers"));
    CHECK(main.at("workers").at(0).at("exits").at(0).at("pid") == 150);
    const auto& m = status.at("manager").as_object();
    for (const char* key : {"generation", "target", "ready", "at_target", "rollout", "exits", "failures", "restart_limit",
                            "backoff_s"})
        CHECK_MESSAGE(m.at(key) == main.at(key), key);

    // Its stage follows the pool: starting until a worker was ready, stopping with the manager
    s.ever_ready = false;
    CHECK(parse(status_answer(s, o, facts, h, t0 + 10s)).at("pools").at(0).at("stage") == "starting");
    s.phase = Phase::stopping_fast;
    const auto stopping = parse(status_answer(s, o, facts, h, t0 + 10s));
    CHECK(stopping.at("pools").at(0).at("stage") == "stopping");
    CHECK(stopping.at("manager").at("phase") == "stopping");
}

TEST_CASE("a plan counted to infinity, and a plan position past its last step, read as the config writes them")
{
    PoolState s = pool_of(1, {});
    const Options o;
    const History h;
    Supervision sup;
    sup.plan = RestartPlan{{{PlanStep::Kind::restart, 250ms}, {PlanStep::Kind::close}}, std::nullopt};
    const PoolView view{.name = "jobs", .state = s, .options = o, .history = h, .stage = "waiting", .supervision = sup,
                        .position = {3, 1}};
    const auto status = parse(status_answer({view}, ManagerFacts{}, h, t0));
    CHECK(status.at("pools").at(0).at("plan") ==
          boost::json::value{{"steps", "restart 250ms, delete"}, {"count", "infinity"}, {"next", "delete"}, {"run", 1}});
    CHECK(status.at("pools").at(0).at("stage") == "waiting");
}

TEST_CASE("plan steps are written as the config file writes them")
{
    using K = PlanStep::Kind;
    CHECK(step_text({K::restart}) == "restart");
    CHECK(step_text({K::restart, 5s}) == "restart 5s");
    CHECK(step_text({K::restart, 1500ms}) == "restart 1.5s");
    CHECK(step_text({K::restart, 3min}) == "restart 180s");
    CHECK(step_text({K::wait}) == "wait");
    CHECK(step_text({K::stop}) == "stop");
    CHECK(step_text({K::close}) == "delete");
    CHECK(plan_text(RestartPlan{{{K::restart}, {K::restart, 5s}, {K::wait}}, 3}) == "restart, restart 5s, wait");
    CHECK(plan_text(RestartPlan{}) == "");
    CHECK(restart_text(RestartType::temporary) == "temporary");
    CHECK(on_restart_limit_text(OnRestartLimit::wait) == "wait");
}

// Answers about one pool
TEST_CASE("the answers of the operations on one pool name it")
{
    const TwoPools t;
    const auto views = t.views();
    CHECK(pool_answer(views[1]) == R"({"ok":true,"pool":"web","stage":"running","generation":2,"target":3,"ready":2})"
                                   "\n");
    CHECK(plan_answer(views[1]) ==
          R"({"ok":true,"pool":"web","restart":"transient","plan":{"steps":"restart, restart 5s, wait","count":3,)"
          R"("next":"restart 5s","run":2},"on_restart_limit":"backoff","restart_limit":"3/60 s","held":1})"
          "\n");
    CHECK(plan_answer(views[0]) ==
          R"({"ok":true,"pool":"cache","restart":"permanent","plan":null,"on_restart_limit":"backoff",)"
          R"("restart_limit":"10/10 s","held":0})"
          "\n");
}
