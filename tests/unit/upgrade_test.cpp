// The hand-over record an upgrading manager passes to the image that replaces it.
#include <herd/manager/upgrade.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <stdexcept>
#include <string>

using namespace herd;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

Handover sample()
{
    Handover h;
    h.pool.target = 3;
    h.pool.generation = 4;
    h.pool.last_generation = 5;
    h.pool.ever_ready = true;
    h.pool.seed = 12345;
    h.pool.failures = {t0, t0 + 1s};
    h.pool.backoff_level = 2;
    h.pool.backoff_until = t0 + 3s;
    h.pool.backoff_mark = t0 + 1s;
    h.pool.exits = {{"crashed", 7}, {"no heartbeat", 1}};
    WorkerRecord a;
    a.pid = 100;
    a.slot = 0;
    a.generation = 4;
    a.spawned_at = t0;
    a.ready_at = t0 + 2ms;
    a.last_heartbeat = t0 + 5s;
    a.requests = 42;
    a.age_limit = 3600s;
    a.request_limit = 1000;
    a.beating = true;
    WorkerRecord b = a;
    b.pid = 101;
    b.slot = 1;
    b.ready_at.reset();
    b.reason = Reason::max_age;
    b.quit_at = t0 + 6s;
    b.kill_at = t0 + 36s;
    b.kill_reason = Reason::graceful_timeout;
    h.pool.workers = {a, b};
    h.channels = {{100, 7}, {101, 8}};
    h.listeners = {Listener{3, "127.0.0.1:8080", ListenerFamily::ipv4}, Listener{4, "unix:/run/app sock", ListenerFamily::unix_socket}};
    h.pid_file_fd = 5;
    h.pid_file_path = "/run/app/app.pid";
    h.previous_binary_fd = 9;
    h.binary = "/srv/app/bin/hello-http";
    h.started = t0 - 1h;
    return h;
}

std::string error_of(const std::string& text)
{
    try {
        decode_handover(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("a hand-over record round-trips every field the next image needs")
{
    const Handover in = sample();
    const Handover out = decode_handover(encode(in));
    CHECK(out.version == handover_version);
    CHECK(out.pool == in.pool);
    CHECK(out.channels == in.channels);
    REQUIRE(out.listeners.size() == 2);
    CHECK(out.listeners[1].address == "unix:/run/app sock");
    CHECK(out.listeners[1].fd == 4);
    CHECK(out.listeners[0].family == ListenerFamily::ipv4);   // AF_INET, 2, in the record
    CHECK(out.pid_file_fd == 5);
    CHECK(out.pid_file_path == "/run/app/app.pid");
    CHECK(out.previous_binary_fd == 9);
    CHECK(out.binary == "/srv/app/bin/hello-http");
    CHECK(out.started == in.started);
    CHECK(out.rollback_from == 0);
}

TEST_CASE("a rollback record says which generation failed and why")
{
    Handover in = sample();
    in.rollback_from = 6;
    in.rollback_why = "4 workers of generation 6 exited before any was ready";
    const Handover out = decode_handover(encode(in));
    CHECK(out.rollback_from == 6);
    CHECK(out.rollback_why == in.rollback_why);
}

TEST_CASE("a binary adopts only the hand-over versions it knows")
{
    CHECK(can_adopt(handover_version));
    CHECK_FALSE(can_adopt(handover_version + 1));
    CHECK_FALSE(can_adopt(0));
    CHECK(can_adopt(1));   // a manager started before the control socket existed
    std::string text = encode(sample());
    text.replace(0, text.find('\n'), "herd-handover 99");
    CHECK(error_of(text) == "hand-over line 1: hand-over version 99 is not supported (this binary adopts versions 1 to 3)");
}

TEST_CASE("a truncated or malformed hand-over record is refused, naming the line")
{
    const std::string text = encode(sample());
    CHECK(error_of(text.substr(0, text.rfind("end"))) == "hand-over record is truncated (no 'end' line)");
    CHECK(error_of("") == "hand-over record is empty");
    CHECK(error_of("something else\n") == "hand-over line 1: not a herd hand-over record");
    CHECK(error_of("herd-handover 1\ntarget lots\nend\n") == "hand-over line 2: malformed value");
    CHECK(error_of("herd-handover 1\ncolour blue\nend\n") == "hand-over line 2: unknown item 'colour'");
    CHECK(error_of("herd-handover 1\nworker pid=1\nend\n") == "hand-over line 2: worker without slot");
    // A pool size no configuration may give: the new image would plan billions of spawns
    CHECK(error_of("herd-handover 1\ntarget 3000000000\nend\n") ==
          "hand-over line 2: target 3000000000 is above 4096, the most workers a pool may have");
    CHECK(error_of("herd-handover 1\ntarget -1\nend\n") ==
          "hand-over line 2: target 4294967295 is above 4096, the most workers a pool may have");
    CHECK(error_of("herd-handover 3\npool web\nwanted 4097\nend\n") ==
          "hand-over line 3: wanted 4097 is above 4096, the most workers a pool may have");
    CHECK(error_of("herd-handover 3\npool web\ntarget 4096\nwanted 4096\nend\n") == "no error");
}

TEST_CASE("since version 2 the control socket, the clients waiting on it and the status history are handed over")
{
    Handover in = sample();
    in.control_fd = 11;
    in.control_path = "/run/app/control sock";
    in.clients = {{12, Command::upgrade}, {13, Command::scale}};
    in.history.add(0, control::ExitRecord{90, "crashed (signal 9)", 1500ms, t0 - 10s});
    in.history.add(0, control::ExitRecord{95, "retired (max age)", 3600s, t0 - 5s});
    in.history.add(2, control::ExitRecord{96, "no heartbeat", 20s, t0 - 1s});
    in.history.add(control::RolloutRecord{Reason::upgrade, 4, true, "2 workers of generation 4 crashed at boot", t0});
    in.history.add(control::RolloutRecord{Reason::reload, 5, false, "", t0 + 1s});
    in.upgrade_requested = t0 + 2s;
    const Handover out = decode_handover(encode(in));
    CHECK(out.version == handover_version);
    CHECK(out.control_fd == 11);
    CHECK(out.control_path == "/run/app/control sock");
    CHECK(out.clients == in.clients);
    CHECK(out.history == in.history);
    CHECK(out.upgrade_requested == in.upgrade_requested);
    REQUIRE(out.history.exits.at(0).size() == 2);
    CHECK(out.history.exits.at(0).front().pid == 95);   // newest first
}

TEST_CASE("going back to a binary of version 1, the record leaves out what that binary cannot read")
{
    Handover in = sample();
    in.version = 1;
    in.control_fd = 11;
    in.control_path = "/run/app/control.sock";
    in.clients = {{12, Command::scale}};
    in.history.add(0, control::ExitRecord{90, "crashed (signal 9)", 1500ms, t0});
    const std::string text = encode(in);
    CHECK(text.starts_with("herd-handover 1\n"));
    CHECK(text.find("control") == std::string::npos);
    CHECK(text.find("client") == std::string::npos);
    CHECK(text.find("slot_exit") == std::string::npos);
    const Handover out = decode_handover(text);   // and this binary still adopts version 1
    CHECK(out.version == 1);
    CHECK(out.control_fd == -1);
    CHECK(out.pool == in.pool);
}

TEST_CASE("the binary path keeps symlinks and is absolute")
{
    CHECK(resolve_binary("/usr/bin/../bin/env") == "/usr/bin/env");
    CHECK(resolve_binary("sh").starts_with("/"));
}

TEST_CASE("each worker's output pipe is handed over with its worker, and a record without any has none")
{
    Handover in = sample();
    in.outputs = {{101, 12}};
    const std::string text = encode(in);
    CHECK(text.find("out=12") != std::string::npos);
    CHECK(text.find("err=") == std::string::npos);
    const Handover out = decode_handover(text);
    CHECK(out.outputs == std::vector<std::pair<int, int>>{{101, 12}});
    CHECK(out.pool == in.pool);
    CHECK(out.version == handover_version);   // an extra worker field: readers skip fields they do not know
    const std::string none = encode(sample());
    CHECK(none.find("out=") == std::string::npos);
    CHECK(decode_handover(none).outputs.empty());
}

TEST_CASE("a worker with a stderr pipe of its own hands over both, stdout's first")
{
    Handover in = sample();
    in.outputs = {{101, 12}, {101, 13}};
    const std::string text = encode(in);
    CHECK(text.find(" out=12 err=13") != std::string::npos);
    const Handover out = decode_handover(text);
    CHECK(out.outputs == std::vector<std::pair<int, int>>{{101, 12}, {101, 13}});
    CHECK(out.version == handover_version);
}

TEST_CASE("the pre-flight check's arguments go before exec mode's command")
{
    CHECK(preflight_args({"/srv/app", "-w", "2"}, 2) ==
          std::vector<std::string>{"-w", "2", "--check", "--adopt-check", "2"});
    CHECK(preflight_args({"/usr/bin/herd", "-w", "2", "--", "python3", "app.py", "--check"}, 2) ==
          std::vector<std::string>{"-w", "2", "--check", "--adopt-check", "2", "--", "python3", "app.py", "--check"});
    CHECK(preflight_args({"/usr/bin/herd", "--", "sh", "-c", "exec x -- y"}, 3) ==
          std::vector<std::string>{"--check", "--adopt-check", "3", "--", "sh", "-c", "exec x -- y"});
    CHECK(preflight_args({}, 2) == std::vector<std::string>{"--check", "--adopt-check", "2"});
}
