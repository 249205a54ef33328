// The control protocol, pure: requests parsed from a line, answers rendered to a line.
#include <herd/manager/control.hpp>
#include <herd/manager/control_limits.hpp>

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

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
    w.requests = 42;
    return w;
}

}  // namespace

TEST_CASE("every command parses, with its arguments")
{
    CHECK(request_of(R"({"command":"status"})").command == Command::status);
    CHECK(request_of(R"({"command":"scale","workers":8})") == Request{Command::scale, 8u, 0, true});
    CHECK(request_of(R"({"command":"scale","delta":-2})") == Request{Command::scale, std::nullopt, -2, true});
    CHECK(request_of(R"({"command":"reload"})").command == Command::reload);
    CHECK(request_of(R"({"command":"upgrade"})").command == Command::upgrade);
    CHECK(request_of(R"({"command":"stop"})") == Request{Command::stop, std::nullopt, 0, true});
    CHECK(request_of(R"({"command":"stop","graceful":false})").graceful == false);
    CHECK(request_of(" {\"command\" : \"status\"} \r\n").command == Command::status);   // spaces and CRLF
}

TEST_CASE("a bad request is answered with one sentence that names what is wrong")
{
    CHECK(error_of("status") == "malformed request (not JSON: syntax error)");
    CHECK(error_of(R"({"command":"status")").starts_with("malformed request (not JSON"));
    CHECK(error_of("[1,2]") == "malformed request: expected a JSON object");
    CHECK(error_of("{}") == "malformed request: no \"command\"");
    CHECK(error_of(R"({"command":7})") == "malformed request: \"command\" must be a string");
    CHECK(error_of(R"({"command":"scael"})") == "unknown command 'scael' (status, scale, reload, upgrade, stop, restart, start or plan)");
    CHECK(error_of(R"({"command":"scale"})") == "scale needs either \"workers\" (exact) or \"delta\" (relative)");
    CHECK(error_of(R"({"command":"scale","workers":2,"delta":1})") ==
          "scale needs either \"workers\" (exact) or \"delta\" (relative)");
    CHECK(error_of(R"({"command":"scale","workers":-1})") == "invalid value -1 for \"workers\": must be 0 to 4096");
    CHECK(error_of(R"({"command":"scale","workers":5000})") == "invalid value 5000 for \"workers\": must be 0 to 4096");
    CHECK(error_of(R"({"command":"scale","workers":1.5})") == "invalid value 1.500 for \"workers\": not an integer");
    CHECK(error_of(R"({"command":"scale","workers":"8"})") == "invalid value \"8\" for \"workers\": not an integer");
    CHECK(error_of(R"({"command":"scale","worker":8})") == "unknown key \"worker\" for scale");
    CHECK(error_of(R"({"command":"stop","graceful":"yes"})") ==
          "invalid value \"yes\" for \"graceful\": not true or false");
    CHECK(error_of(R"({"command":"status","verbose":true})") == "unknown key \"verbose\" for status");
}

TEST_CASE("error answers are one JSON line")
{
    const auto o = parse(error_answer("the manager is \"stopping\"\nnow"));
    CHECK(o.at("ok") == false);
    CHECK(o.at("error") == "the manager is \"stopping\"\nnow");
}

TEST_CASE("status reports the manager and each worker, sorted by slot, with the slot's exit history")
{
    PoolState s;
    s.target = 2;
    s.generation = 3;
    s.last_generation = 3;
    s.workers = {worker(300, 1, 3, true), worker(200, 0, 3, false)};
    s.exits = {{"crashed", 2}};
    s.failures = {t0 - 60s, t0 + 5s};   // one within the 10 s window
    History h;
    h.add(0, ExitRecord{150, "crashed (signal 9)", 2500ms, t0 + 8s});
    h.add(RolloutRecord{Reason::upgrade, 3, false, "", t0 + 1s});
    Options o;
    const ManagerFacts facts{77, "app", "/srv/app", t0 - 50s, std::nullopt};
    const auto status = parse(status_answer(s, o, facts, h, t0 + 10s));

    CHECK(status.at("ok") == true);
    const auto& m = status.at("manager").as_object();
    CHECK(m.at("pid") == 77);
    CHECK(m.at("name") == "app");
    CHECK(m.at("generation") == 3);
    CHECK(m.at("target") == 2);
    CHECK(m.at("ready") == 1);
    CHECK(m.at("at_target") == false);
    CHECK(m.at("phase") == "running");
    CHECK(m.at("uptime_s").as_double() == doctest::Approx(60.0));
    CHECK(m.at("rollout").is_null());
    CHECK(m.at("last_rollout").at("result") == "complete");
    CHECK(m.at("last_rollout").at("ago_s").as_double() == doctest::Approx(9.0));
    CHECK(m.at("rollouts").at("upgrade").at("complete") == 1);
    CHECK(m.at("rollouts").at("reload").at("failed") == 0);
    CHECK(m.at("exits").at("crashed") == 2);
    CHECK(m.at("failures") == 1);
    CHECK(m.at("backoff_s").is_null());

    const auto& w = status.at("workers").as_array();
    REQUIRE(w.size() == 2);
    CHECK(w[0].at("slot") == 0);
    CHECK(w[0].at("state") == "booting");
    CHECK(w[0].at("heartbeat_age_s").is_null());
    REQUIRE(w[0].at("exits").as_array().size() == 1);
    CHECK(w[0].at("exits").at(0).at("outcome") == "crashed (signal 9)");
    CHECK(w[0].at("exits").at(0).at("ran_s").as_double() == doctest::Approx(2.5));
    CHECK(w[1].at("pid") == 300);
    CHECK(w[1].at("state") == "ready");
    CHECK(w[1].at("heartbeat_age_s").as_double() == doctest::Approx(1.0));
    CHECK(w[1].at("requests") == 42);
    CHECK(w[1].at("exits").as_array().empty());
}

TEST_CASE("status gives a worker's memory at its latest sample while its pool samples, null otherwise")
{
    PoolState s;
    s.target = 2;
    s.workers = {worker(300, 1, 1, true), worker(200, 0, 1, true)};
    s.workers[0].memory = 50u << 20;   // slot 1 sampled; slot 0 not yet
    const ManagerFacts facts{77, "app", "/srv/app", t0, std::nullopt};
    Options o;
    auto w = parse(status_answer(s, o, facts, {}, t0 + 1s)).at("workers").as_array();
    // No --max-worker-memory: no sample is current, whatever the record holds
    CHECK(w[0].at("memory_bytes").is_null());
    CHECK(w[1].at("memory_bytes").is_null());
    o.max_worker_memory = 1u << 30;
    w = parse(status_answer(s, o, facts, {}, t0 + 1s)).at("workers").as_array();
    CHECK(w[0].at("slot") == 0);
    CHECK(w[0].at("memory_bytes").is_null());   // before its first sample
    CHECK(w[1].at("memory_bytes") == 50u << 20);
}

TEST_CASE("status text: the same answer as JSON values would give, strings escaped")
{
    PoolState s;
    s.target = 1;
    s.workers = {worker(300, 0, 1, true)};
    History h;
    h.add(0, ExitRecord{150, "odd \"outcome\"\n\x01", 2500ms, t0});
    const ManagerFacts facts{77, "a \"name\"", "/srv/app", t0, std::nullopt};
    const std::string text = status_answer(s, Options{}, facts, h, t0 + 1s);
    CHECK(text.ends_with("}\n"));
    const auto status = parse(text);
    CHECK(status.at("manager").at("name") == "a \"name\"");
    CHECK(status.at("workers").at(0).at("exits").at(0).at("outcome") == "odd \"outcome\"\n\x01");
    CHECK(status.at("pools").at(0).at("workers") == status.at("workers"));
    CHECK(status.at("workers").at(0).at("age_s").as_double() == doctest::Approx(1.0));
    CHECK(text.find("\"age_s\":1.000,") != std::string::npos);
}

TEST_CASE("status shows a rollout in progress, a pre-flight check, and a backoff")
{
    PoolState s;
    s.target = 1;
    s.generation = 5;
    s.last_generation = 5;
    s.rollout = Rollout{Reason::reload, 4, t0, false};
    s.backoff_until = t0 + 3s;
    Options o;
    ManagerFacts facts{1, "app", "/srv/app", t0, std::nullopt};
    auto m = parse(status_answer(s, o, facts, {}, t0 + 1s)).at("manager").as_object();
    CHECK(m.at("rollout").at("kind") == "reload");
    CHECK(m.at("rollout").at("state") == "rolling");
    CHECK(m.at("rollout").at("from_generation") == 4);
    CHECK(m.at("rollout").at("elapsed_s").as_double() == doctest::Approx(1.0));
    CHECK(m.at("backoff_s").as_double() == doctest::Approx(2.0));

    s.rollout.reset();
    facts.checking = t0 + 500ms;
    m = parse(status_answer(s, o, facts, {}, t0 + 1s)).at("manager").as_object();
    CHECK(m.at("rollout").at("kind") == "upgrade");
    CHECK(m.at("rollout").at("state") == "checking");
    CHECK(m.at("rollout").at("generation") == 6);
    CHECK(m.at("rollout").at("elapsed_s").as_double() == doctest::Approx(0.5));
}

TEST_CASE("the history keeps the newest exits of each slot, and counts rollouts by kind and result")
{
    History h;
    for (int i = 0; i < 8; ++i) h.add(0, ExitRecord{100 + i, "crashed (exit code 1)", 1s, t0 + std::chrono::seconds(i)});
    REQUIRE(h.exits.at(0).size() == History::exits_per_slot);
    CHECK(h.exits.at(0).front().pid == 107);
    CHECK(h.exits.at(0).back().pid == 103);
    h.add(RolloutRecord{Reason::upgrade, 2, true, "it crashed", t0});
    h.add(RolloutRecord{Reason::upgrade, 3, false, "", t0});
    CHECK(h.rollouts.at("upgrade failed") == 1);
    CHECK(h.rollouts.at("upgrade complete") == 1);
    CHECK(h.last_rollout->generation == 3);
}

TEST_CASE("operation answers")
{
    PoolState s;
    s.target = 2;
    s.workers = {worker(1, 0, 1, true), worker(2, 1, 1, true)};
    CHECK(scale_answer(s) == "{\"ok\":true,\"target\":2,\"ready\":2}\n");
    CHECK(rollout_answer(Reason::upgrade, 4, 850ms) ==
          "{\"ok\":true,\"kind\":\"upgrade\",\"generation\":4,\"took_ms\":850}\n");
    CHECK(stop_answer(0) == "{\"ok\":true,\"exit_code\":0}\n");
}

TEST_CASE("a bad request's error quotes the client's bytes printable and bounded, since it is logged too")
{
    const std::string why = error_of(R"({"command":"st\u001b[2J\u0000x\r"})");
    CHECK(why.starts_with("unknown command 'st\\x1b[2J\\x00x\\x0d'"));
    CHECK(std::none_of(why.begin(), why.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
    const std::string key = error_of(R"({"command":"status",")" + std::string(5000, 'k') + R"(":1})");
    CHECK(key.size() < 200);
    CHECK(key.find("(5000 bytes)") != std::string::npos);
}

TEST_CASE("a connection's deadline: a begun line or an unread answer within 5s, idleness 60s, none while it waits")
{
    const Limits limits;
    CHECK(deadline(Stage::idle, t0, limits) == t0 + 60s);
    CHECK(deadline(Stage::reading, t0, limits) == t0 + 5s);
    CHECK(deadline(Stage::writing, t0, limits) == t0 + 5s);
    CHECK(deadline(Stage::waiting, t0, limits) == std::nullopt);
    CHECK(timeout_reason(Stage::reading, limits) == "a request line was not complete within 5 s");
    CHECK(timeout_reason(Stage::idle, limits) == "idle for 60 s");
    CHECK(timeout_reason(Stage::writing, limits) == "an answer was not read within 5 s");
}

TEST_CASE("room for a new connection is made by closing the one stuck longest, else the one idle longest")
{
    // Stuck mid-line or on an unread answer goes first, even when an idle one is older.
    CHECK(make_room({{1, Stage::idle, t0}, {2, Stage::reading, t0 + 5s}, {3, Stage::writing, t0 + 2s}}) == 3u);
    CHECK(make_room({{1, Stage::idle, t0 + 1s}, {2, Stage::idle, t0}, {3, Stage::waiting, t0 - 1h}}) == 2u);
    // A client waiting for an operation (an upgrade) is never closed: with only those, nothing is.
    CHECK(make_room({{1, Stage::waiting, t0}, {2, Stage::waiting, t0}}) == std::nullopt);
    CHECK(make_room({}) == std::nullopt);
}

TEST_CASE("the log budget lets a burst through in each period and reports the rest once the period is over")
{
    LogBudget budget(3, 1000ms);
    CHECK(budget.allow(t0));
    CHECK(budget.allow(t0 + 10ms));
    CHECK(budget.allow(t0 + 20ms));
    CHECK(budget.report_at() == std::nullopt);
    CHECK_FALSE(budget.allow(t0 + 30ms));
    CHECK_FALSE(budget.allow(t0 + 40ms));
    budget.suppress();   // refused by a connection's own budget
    CHECK(budget.report_at() == t0 + 1s);
    CHECK(budget.take_suppressed(t0 + 999ms) == 0);
    CHECK(budget.take_suppressed(t0 + 1s) == 3);
    CHECK(budget.take_suppressed(t0 + 1s) == 0);
    CHECK(budget.report_at() == std::nullopt);
    // A new period: a new burst.
    CHECK(budget.allow(t0 + 1s));
    CHECK(budget.allow(t0 + 1100ms));
    CHECK(budget.allow(t0 + 1200ms));
    CHECK_FALSE(budget.allow(t0 + 1300ms));
}
