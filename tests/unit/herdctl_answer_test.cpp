// herdctl's answer side: what it prints for the manager's answer, and how it exits; OpenMetrics.
#include "herdctl_core.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace herdctl;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// A status answer as the manager sends it: one ready worker with a crash in its slot, one booting.
constexpr std::string_view status_line =
    R"j({"ok":true,"manager":{"pid":1234,"name":"hello-http","binary":"/usr/bin/hello-http","version":"0.1.0",)j"
    R"j("generation":2,"target":4,"ready":3,"at_target":false,"phase":"running","uptime_s":3723.400,)j"
    R"j("rollout":null,"last_rollout":{"kind":"upgrade","generation":2,"result":"failed",)j"
    R"j("why":"the new manager exited with code 2","ago_s":130.000},)j"
    R"j("rollouts":{"upgrade":{"complete":1,"failed":1},"reload":{"complete":0,"failed":0}},)j"
    R"j("exits":{"crashed":2,"retired":1},"failures":2,"restart_limit":"10/10 s","backoff_s":null},)j"
    R"j("workers":[{"pid":1240,"slot":0,"generation":2,"state":"ready","age_s":3720.200,"heartbeat_age_s":0.310,)j"
    R"j("requests":1234,"exits":[{"pid":1236,"outcome":"crashed (signal 9)","ran_s":10.000,"ago_s":300.500}]},)j"
    R"j({"pid":1241,"slot":1,"generation":2,"state":"booting","age_s":0.500,"heartbeat_age_s":null,)j"
    R"j("requests":0,"exits":[]}]})j";

json::object status()
{
    return json::parse(status_line).as_object();
}

json::object& manager(json::object& answer)
{
    return answer["manager"].as_object();
}

/// A quiet pool: at its target, no rollout ever, no exits, no workers.
json::object quiet_status()
{
    json::object answer = status();
    json::object& m = manager(answer);
    m["ready"] = 4;
    m["at_target"] = true;
    m["last_rollout"] = nullptr;
    m["exits"] = json::object{};
    m["failures"] = 0;
    answer["workers"] = json::array{};
    return answer;
}

Request request(Command command, bool json = false)
{
    Request r;
    r.command = command;
    r.control = "/run/herd.sock";
    r.json = json;
    return r;
}

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

// Answers
TEST_CASE("herdctl reports an error answer in one line and exits 1")
{
    const Outcome o = interpret(request(Command::scale), R"({"ok":false,"error":"invalid value -4 for \"workers\": must be 0 to 4096"})");
    CHECK(o.exit_code == exit_failure);
    CHECK(o.out.empty());
    CHECK(o.err == "herdctl: invalid value -4 for \"workers\": must be 0 to 4096\n");
}

TEST_CASE("herdctl reports a malformed answer in one line and exits 1")
{
    const auto err = [](std::string_view line) {
        const Outcome o = interpret(request(Command::status), line);
        CHECK(o.exit_code == exit_failure);
        CHECK(o.out.empty());
        return o.err;
    };
    CHECK(err("this is not json") == "herdctl: malformed answer from the manager: syntax error\n");
    CHECK(err("[1,2]") == "herdctl: malformed answer from the manager: not a JSON object\n");
    CHECK(err("{}") == "herdctl: malformed answer from the manager: no \"ok\"\n");
    CHECK(err(R"({"ok":"yes"})") == "herdctl: malformed answer from the manager: \"ok\" is not true or false\n");
    CHECK(err(R"({"ok":true,"manager":[],"workers":[]})") ==
          "herdctl: malformed answer from the manager: \"manager\" is not an object\n");
    json::object answer = status();
    answer["workers"].as_array()[0].as_object()["pid"] = "1240";
    CHECK(err(json::serialize(answer)) == "herdctl: malformed answer from the manager: \"pid\" is not a whole number\n");
}

TEST_CASE("herdctl --json prints the answer line as it came")
{
    const Outcome o = interpret(request(Command::status, true), status_line);
    CHECK(o.exit_code == exit_ok);
    CHECK(o.out == std::string(status_line) + "\n");
    CHECK(o.err.empty());
    // Even an answer herdctl could not render: --json is the way to see it
    CHECK(interpret(request(Command::status, true), R"({"ok":true,"manager":{}})").out == "{\"ok\":true,\"manager\":{}}\n");
}

TEST_CASE("herdctl status shows the manager, its history and a table of workers")
{
    CHECK(render_status(status()) ==
          "manager 1234 (hello-http): running, generation 2, 3 of 4 workers ready, up 1h 2m\n"
          "last rollout: upgrade to generation 2 failed 2m 10s ago: the new manager exited with code 2\n"
          "exits: crashed 2, retired 1\n"
          "restarts: 2 failures in the window (limit 10/10 s)\n"
          "\n"
          "SLOT  PID   GEN  STATE    AGE    HEARTBEAT  REQUESTS  LAST EXIT\n"
          "0     1240  2    ready    1h 2m  0.3s ago   1234      crashed (signal 9), 5m ago\n"
          "1     1241  2    booting  0.5s   -          0         -\n");
    CHECK(interpret(request(Command::status), status_line).out == render_status(status()));
}

TEST_CASE("herdctl status shows a MEMORY column when a worker has a sample, - for one without")
{
    json::object answer = status();
    json::array& workers = answer["workers"].as_array();
    workers[0].as_object()["memory_bytes"] = 52428800;   // 50 MiB
    workers[1].as_object()["memory_bytes"] = nullptr;    // not sampled yet
    CHECK(render_status(answer).ends_with(
          "SLOT  PID   GEN  STATE    AGE    HEARTBEAT  REQUESTS  MEMORY  LAST EXIT\n"
          "0     1240  2    ready    1h 2m  0.3s ago   1234      50 MiB  crashed (signal 9), 5m ago\n"
          "1     1241  2    booting  0.5s   -          0         -       -\n"));
    // A pool that does not sample: every memory_bytes null, no column
    workers[0].as_object()["memory_bytes"] = nullptr;
    CHECK(render_status(answer) == render_status(status()));
}

TEST_CASE("herdctl metrics gives a worker's memory only for workers with a sample")
{
    json::object answer = status();
    json::array& workers = answer["workers"].as_array();
    workers[0].as_object()["memory_bytes"] = 52428800;
    workers[1].as_object()["memory_bytes"] = nullptr;
    const std::string text = render_metrics(answer);
    CHECK(has_line(text, "# TYPE herd_worker_memory_bytes gauge"));
    CHECK(has_line(text, "# UNIT herd_worker_memory_bytes bytes"));
    CHECK(has_line(text, "herd_worker_memory_bytes{slot=\"0\",pid=\"1240\",generation=\"2\"} 52428800"));
    CHECK(text.find("herd_worker_memory_bytes{slot=\"1\"") == std::string::npos);
    CHECK(render_metrics(status()).find("herd_worker_memory_bytes{") == std::string::npos);
}

TEST_CASE("herdctl status leaves out what has not happened, and says when there are no workers")
{
    CHECK(render_status(quiet_status()) ==
          "manager 1234 (hello-http): running, generation 2, 4 of 4 workers ready, up 1h 2m\n"
          "\n"
          "no workers\n");
}

TEST_CASE("herdctl status shows a rollout in progress, a complete one and a backoff")
{
    json::object answer = quiet_status();
    json::object& m = manager(answer);
    m["target"] = 1;
    m["ready"] = 1;
    m["phase"] = "stopping";
    m["rollout"] = {{"kind", "reload"}, {"state", "rolling"}, {"generation", 4}, {"from_generation", 3}, {"elapsed_s", 1.234}};
    m["last_rollout"] = {{"kind", "upgrade"}, {"generation", 3}, {"result", "complete"}, {"why", ""}, {"ago_s", 7384.0}};
    m["failures"] = 1;
    m["backoff_s"] = 2.5;
    CHECK(render_status(answer) ==
          "manager 1234 (hello-http): stopping, generation 2, 1 of 1 worker ready, up 1h 2m\n"
          "rollout: reload to generation 4 (from 3), rolling for 1.2s\n"
          "last rollout: upgrade to generation 3 complete 2h 3m ago\n"
          "restarts: 1 failure in the window (limit 10/10 s), spawning resumes in 2.5s\n"
          "\n"
          "no workers\n");

    // An upgrade's pre-flight check is not timed yet
    m["rollout"] = {{"kind", "upgrade"}, {"state", "checking"}, {"generation", 3}, {"from_generation", 2}, {"elapsed_s", nullptr}};
    CHECK(has_line(render_status(answer), "rollout: upgrade to generation 3 (from 2), checking"));
}

TEST_CASE("herdctl metrics gives every worker state, zeros included, and the pool's gauges")
{
    const std::string text = render_metrics(status());
    CHECK(text.starts_with("# TYPE herd_workers gauge\n# HELP herd_workers Workers by state.\n"));
    CHECK(has_line(text, "herd_workers{state=\"booting\"} 1"));
    CHECK(has_line(text, "herd_workers{state=\"ready\"} 1"));
    CHECK(has_line(text, "herd_workers{state=\"retiring\"} 0"));
    CHECK(has_line(text, "herd_workers{state=\"killed\"} 0"));
    CHECK(has_line(text, "herd_target_workers 4"));
    CHECK(has_line(text, "herd_generation 2"));
    CHECK(has_line(text, "# UNIT herd_uptime_seconds seconds"));
    CHECK(has_line(text, "herd_uptime_seconds 3723.4"));
    CHECK(has_line(text, "# TYPE herd_restart_failures gauge"));
    CHECK(has_line(text, "herd_restart_failures 2"));
    CHECK(text.ends_with("\n# EOF\n"));
}

TEST_CASE("herdctl metrics names counter families without _total and their samples with it")
{
    const std::string text = render_metrics(status());
    CHECK(has_line(text, "# TYPE herd_worker_exits counter"));
    CHECK(has_line(text, "herd_worker_exits_total{reason=\"crashed\"} 2"));
    CHECK(has_line(text, "herd_worker_exits_total{reason=\"retired\"} 1"));
    CHECK(has_line(text, "# TYPE herd_worker_requests counter"));
    CHECK(has_line(text, "herd_worker_requests_total{slot=\"0\",pid=\"1240\",generation=\"2\"} 1234"));
    CHECK(has_line(text, "herd_worker_requests_total{slot=\"1\",pid=\"1241\",generation=\"2\"} 0"));
    CHECK(has_line(text, "# TYPE herd_rollouts counter"));
    CHECK(has_line(text, "herd_rollouts_total{kind=\"upgrade\",result=\"complete\"} 1"));
    CHECK(has_line(text, "herd_rollouts_total{kind=\"upgrade\",result=\"failed\"} 1"));
    CHECK(has_line(text, "herd_rollouts_total{kind=\"reload\",result=\"failed\"} 0"));
    CHECK(text.find("_total counter") == std::string::npos);
    // Every family has its metadata: one TYPE and one HELP each
    const auto lines = lines_of(text);
    const auto count = [&](std::string_view prefix) {
        return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(prefix); });
    };
    CHECK(count("# TYPE ") == 10);
    CHECK(count("# HELP ") == 10);
}

TEST_CASE("herdctl metrics gives a heartbeat age only for workers that have one")
{
    const std::string text = render_metrics(status());
    CHECK(has_line(text, "# TYPE herd_worker_heartbeat_age_seconds gauge"));
    CHECK(has_line(text, "# UNIT herd_worker_heartbeat_age_seconds seconds"));
    CHECK(has_line(text, "herd_worker_heartbeat_age_seconds{slot=\"0\",pid=\"1240\",generation=\"2\"} 0.31"));
    CHECK(text.find("herd_worker_heartbeat_age_seconds{slot=\"1\"") == std::string::npos);
}

TEST_CASE("herdctl metrics of an empty pool still has every family, and zeros for every state")
{
    const std::string text = render_metrics(quiet_status());
    for (const char* state : {"booting", "ready", "retiring", "killed"})
        CHECK(has_line(text, "herd_workers{state=\"" + std::string(state) + "\"} 0"));
    CHECK(has_line(text, "# TYPE herd_worker_exits counter"));
    CHECK(text.find("herd_worker_exits_total") == std::string::npos);
    CHECK(text.find("herd_worker_requests_total") == std::string::npos);
    CHECK(text.ends_with("# EOF\n"));
}

TEST_CASE("herdctl metrics escapes odd characters in label values")
{
    CHECK(escape_label_value(R"(say "hi")") == R"(say \"hi\")");
    CHECK(escape_label_value(R"(a\b)") == R"(a\\b)");
    CHECK(escape_label_value("two\nlines") == R"(two\nlines)");
    CHECK(escape_label_value("plain (signal 9)") == "plain (signal 9)");

    json::object answer = status();
    manager(answer)["exits"] = {{"odd \"reason\"\\\n", 3}};
    CHECK(has_line(render_metrics(answer), R"(herd_worker_exits_total{reason="odd \"reason\"\\\n"} 3)"));
}

TEST_CASE("herdctl ready exits 0 only when the pool is at its target")
{
    json::object answer = quiet_status();
    CHECK(readiness(answer).ready);
    CHECK(readiness(answer).line == "ready: 4 of 4 workers ready");
    Outcome o = interpret(request(Command::ready), json::serialize(answer));
    CHECK(o.exit_code == exit_ok);
    CHECK(o.out == "ready: 4 of 4 workers ready\n");

    o = interpret(request(Command::ready), status_line);
    CHECK(o.exit_code == exit_failure);
    CHECK(o.out.empty());
    CHECK(o.err == "herdctl: not ready: 3 of 4 workers ready\n");
}

TEST_CASE("herdctl ready says why the pool is not at its target")
{
    json::object answer = status();
    json::object& m = manager(answer);
    m["rollout"] = {{"kind", "upgrade"}, {"state", "rolling"}, {"generation", 3}, {"from_generation", 2}, {"elapsed_s", 4.0}};
    CHECK(readiness(answer).line == "not ready: upgrade to generation 3 (from 2), rolling for 4s; 3 of 4 workers ready");
    m["phase"] = "stopping";
    CHECK_FALSE(readiness(answer).ready);
    CHECK(readiness(answer).line == "not ready: the manager is stopping");
}

TEST_CASE("herdctl ready --json prints the answer and still exits 1 when not ready")
{
    const Outcome o = interpret(request(Command::ready, true), status_line);
    CHECK(o.exit_code == exit_failure);
    CHECK(o.out == std::string(status_line) + "\n");
    CHECK(o.err == "herdctl: not ready: 3 of 4 workers ready\n");
}

TEST_CASE("herdctl reports a finished scale, reload, upgrade and stop in one line")
{
    const auto out = [](Command c, std::string_view line) {
        const Outcome o = interpret(request(c), line);
        CHECK(o.exit_code == exit_ok);
        CHECK(o.err.empty());
        return o.out;
    };
    CHECK(out(Command::scale, R"({"ok":true,"target":8,"ready":8})") == "scaled: 8 of 8 workers ready\n");
    CHECK(out(Command::scale, R"({"ok":true,"target":1,"ready":1})") == "scaled: 1 of 1 worker ready\n");
    CHECK(out(Command::reload, R"({"ok":true,"kind":"reload","generation":3,"took_ms":120})") ==
          "reload complete: generation 3 in 0.1s\n");
    CHECK(out(Command::upgrade, R"({"ok":true,"kind":"upgrade","generation":3,"took_ms":12840.2})") ==
          "upgrade complete: generation 3 in 12s\n");
    CHECK(out(Command::stop, R"({"ok":true,"exit_code":0})") == "manager stopped (exit code 0)\n");
}

TEST_CASE("herdctl shows durations the way people read them")
{
    CHECK(human_duration(0) == "0ms");
    CHECK(human_duration(0.04) == "40ms");
    CHECK(human_duration(0.31) == "0.3s");
    CHECK(human_duration(5) == "5s");
    CHECK(human_duration(9.94) == "9.9s");
    CHECK(human_duration(42.9) == "42s");
    CHECK(human_duration(300.5) == "5m");
    CHECK(human_duration(303) == "5m 3s");
    CHECK(human_duration(3723.4) == "1h 2m");
    CHECK(human_duration(3600) == "1h");
    CHECK(human_duration(2 * 86400 + 3 * 3600 + 59) == "2d 3h");
    CHECK(human_duration(-3) == "0ms");   // a clock that stepped back
}

TEST_CASE("herdctl error lines are one line, whatever the message holds")
{
    CHECK(error_line("cannot connect to /run/herd.sock: Connection refused") ==
          "herdctl: cannot connect to /run/herd.sock: Connection refused\n");
    CHECK(error_line("two\nlines") == "herdctl: two lines\n");
    CHECK(interpret(request(Command::reload), R"({"ok":false,"error":"a\nb"})").err == "herdctl: a b\n");
}
