// The command line: bad input exits 2 naming the option, runtime failures at start exit 1,
// config files apply under the command line, pid files, --check.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>


#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }

// Non-empty output lines.
std::vector<std::string> non_empty(const std::vector<std::string>& lines)
{
    std::vector<std::string> out;
    for (const auto& l : lines)
        if (!l.empty()) out.push_back(l);
    return out;
}

// Run hello-http with `args`; it must exit 2 with exactly one line that matches `message`.
void check_usage_error(const std::vector<std::string>& args, const std::string& message)
{
    const auto r = run(concat({hello_http(), "-l", "127.0.0.1:0"}, args), 5s);
    INFO("args: " << [&] { std::string a; for (const auto& s : args) a += s + " "; return a; }());
    INFO("output:\n" << r.output());
    REQUIRE(r.status);
    CHECK(r.status->code == 2);
    const auto lines = non_empty(r.lines);
    REQUIRE(lines.size() == 1);
    CHECK(std::regex_search(lines[0], std::regex(message)));
}

std::string file_text(const std::string& path)
{
    std::string text;
    for (const auto& l : read_lines(path)) text += l + "\n";
    return text;
}

}  // namespace

TEST_CASE("a malformed --workers value exits 2 naming the option and the value")
{
    HardDeadline guard(10s);
    check_usage_error({"--workers", "abc"}, R"(^hello-http: invalid value 'abc' for --workers)");
}

TEST_CASE("a malformed duration exits 2 naming the option and the value")
{
    HardDeadline guard(10s);
    check_usage_error({"--heartbeat-timeout", "5x"}, R"(^hello-http: invalid value '5x' for --heartbeat-timeout)");
}

TEST_CASE("an unknown option exits 2 naming it")
{
    HardDeadline guard(10s);
    check_usage_error({"--wrokers", "3"}, R"(^hello-http: unknown option --wrokers)");
}

TEST_CASE("a port that is not a number exits 2")
{
    HardDeadline guard(10s);
    const auto r = run({hello_http(), "-l", "127.0.0.1:http8080"}, 5s);
    REQUIRE_MESSAGE(r.status, r.output());
    CHECK(r.status->code == 2);
    CHECK_MESSAGE(r.output().find("127.0.0.1:http8080") != std::string::npos, r.output());
    CHECK(non_empty(r.lines).size() == 1);
}

TEST_CASE("an address that cannot be one exits 2 naming --listen and the value, at start and in --check")
{
    HardDeadline guard(15s);
    const std::string ipv4 = R"(^hello-http: invalid value '999\.1\.1\.1:80' for --listen: '999\.1\.1\.1' is not an IPv4 )"
                             R"(address \(four numbers from 0 to 255\)$)";
    check_usage_error({"-l", "999.1.1.1:80"}, ipv4);
    check_usage_error({"--check", "-l", "999.1.1.1:80"}, ipv4);
    check_usage_error({"-l", "127.0.0.1:65536"},
                      R"(^hello-http: invalid value '127\.0\.0\.1:65536' for --listen: port '65536' is not a number from 0 to 65535$)");
    check_usage_error({"--check", "-l", "[::1::2]:80"},
                      R"(^hello-http: invalid value '\[::1::2\]:80' for --listen: '::1::2' is not an IPv6 address$)");
    check_usage_error({"-l", "unix:/tmp/" + std::string(110, 'x')},
                      R"(^hello-http: invalid value 'unix:/tmp/x+' for --listen: the unix socket path is 115 bytes long, at most 107 fit in a socket address$)");
}

TEST_CASE("systemd's sockets: an fd that is not a listening socket refuses the start (exit 1), --listen beside them too (exit 2)")
{
    HardDeadline guard(15s);
    TempDir dir;
    write_file(dir / "not-a-socket", "data\n");
    // As systemd would: fd 3 set up, LISTEN_PID = the server's own pid (the shell's, which execs it)
    const auto start = [&](const std::string& setup, const std::string& args) {
        return run({"/bin/bash", "-c", setup + "LISTEN_PID=$$ LISTEN_FDS=1 exec '" + hello_http() + "' -w 1 " + args}, 5s);
    };
    const auto file = start("exec 3<'" + (dir / "not-a-socket") + "'; ", "");
    INFO(file.output());
    REQUIRE(file.status);
    CHECK(file.status->code == 1);
    REQUIRE(non_empty(file.lines).size() == 1);
    CHECK(non_empty(file.lines)[0] ==
          "hello-http: fd 3 passed by systemd (LISTEN_FDS=1) is a regular file, not a socket: refusing to start");

    const auto closed = start("exec 3<&-; ", "");
    INFO(closed.output());
    REQUIRE(closed.status);
    CHECK(closed.status->code == 1);
    CHECK(non_empty(closed.lines) ==
          std::vector<std::string>{"hello-http: fd 3 passed by systemd (LISTEN_FDS=1) is not open: refusing to start"});

    LoopbackListener listener(true);   // inherited by the shell: no close-on-exec
    const std::string fd = std::to_string(listener.fd);
    const std::string move_to_3 = listener.fd == 3 ? "" : "exec 3<&" + fd + " " + fd + "<&-; ";
    const auto both = start(move_to_3, "-l 127.0.0.1:0");
    INFO(both.output());
    REQUIRE(both.status);
    CHECK(both.status->code == 2);
    CHECK(non_empty(both.lines) == std::vector<std::string>{"hello-http: --listen 127.0.0.1:0 is refused: systemd passed 1 "
                                                            "socket (LISTEN_FDS); listen by one or the other"});
}

TEST_CASE("an unreadable config file exits 2 naming it")
{
    HardDeadline guard(10s);
    TempDir dir;
    const std::string missing = dir / "missing.conf";
    check_usage_error({"--config", missing}, "^hello-http: .*" + missing);
    // A directory is not a readable config file either.
    check_usage_error({"--config", dir.path()}, "^hello-http: .*" + dir.path());
}

TEST_CASE("a bad value in the config file exits 2 naming the option")
{
    HardDeadline guard(10s);
    TempDir dir;
    const std::string conf = dir / "herd.conf";
    write_file(conf, "workers = lots\n");
    check_usage_error({"--config", conf}, R"(^hello-http: .*'lots'.*workers)");
}

TEST_CASE("config file values apply and the command line wins")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string conf = dir / "herd.conf";
    write_file(conf, "# test config\nworkers = 3\nheartbeat-interval = 100ms\nheartbeat-timeout = 500ms\n"
                     "graceful-timeout = 700ms\n");

    {
        Process p({hello_http(), "--config", conf, "-l", "127.0.0.1:0"});
        const auto started = p.wait_for_line(lines::started, in(5s));
        REQUIRE_MESSAGE(started, p.output());
        CHECK(started->number(2) == 3);
        REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(5s)), p.output());
        REQUIRE(p.signal(SIGQUIT));
        CHECK_MESSAGE(p.wait_for_line(std::regex(R"(graceful shutdown of 3 workers \(graceful timeout 700 ms\))"), in(2s)),
                      p.output());
        const auto st = p.wait_exit(in(3s));
        REQUIRE(st);
        CHECK(st->code == 0);
    }
    {
        Process p({hello_http(), "--config", conf, "-l", "127.0.0.1:0", "-w", "2", "--graceful-timeout", "900ms"});
        const auto started = p.wait_for_line(lines::started, in(5s));
        REQUIRE_MESSAGE(started, p.output());
        CHECK(started->number(2) == 2);
        REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
        REQUIRE(p.signal(SIGQUIT));
        CHECK_MESSAGE(p.wait_for_line(std::regex(R"(graceful shutdown of 2 workers \(graceful timeout 900 ms\))"), in(2s)),
                      p.output());
        const auto st = p.wait_exit(in(3s));
        REQUIRE(st);
        CHECK(st->code == 0);
    }
}

TEST_CASE("[pool] sets the one pool's options, over the command line; a manager-wide option in it exits 2")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string conf = dir / "herd.conf";
    write_file(conf, "workers = 3\nheartbeat-interval = 100ms\nheartbeat-timeout = 500ms\n"
                     "[pool]\nworkers = 2\ngraceful-timeout = 800ms\n");
    {
        Process p({hello_http(), "--config", conf, "-l", "127.0.0.1:0", "-w", "4"});
        const auto started = p.wait_for_line(lines::started, in(5s));
        REQUIRE_MESSAGE(started, p.output());
        CHECK(started->number(2) == 2);
        REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
        REQUIRE(p.signal(SIGQUIT));
        CHECK_MESSAGE(p.wait_for_line(std::regex(R"(graceful shutdown of 2 workers \(graceful timeout 800 ms\))"), in(2s)),
                      p.output());
        const auto st = p.wait_exit(in(3s));
        REQUIRE(st);
        CHECK(st->code == 0);
    }
    const std::string manager = dir / "manager.conf";
    write_file(manager, "workers = 1\n[pool]\npid-file = /tmp/x.pid\n");
    check_usage_error({"--config", manager}, R"(^hello-http: config file .*/manager\.conf, line 3: option 'pid-file' applies )"
                                             R"(to the whole manager; put it before the first \[section\]$)");
}

TEST_CASE("an address in use exits 1 with 'cannot bind'")
{
    HardDeadline guard(10s);
    LoopbackListener taken;
    const std::string address = "127.0.0.1:" + std::to_string(taken.port);
    const auto r = run({hello_http(), "-w", "1", "-l", address}, 5s);
    INFO(r.output());
    REQUIRE(r.status);
    CHECK(r.status->code == 1);
    const auto lines = non_empty(r.lines);
    REQUIRE(lines.size() >= 1);
    bool named = false;
    for (const auto& l : lines)
        named = named || l.find("hello-http: cannot bind " + address + ": Address already in use") != std::string::npos;
    CHECK(named);
    CHECK(r.output().find("spawned") == std::string::npos);
}

TEST_CASE("a pid file held by a live manager refuses a second one with exit 1")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string pid_file = dir / "hello.pid";
    Process first(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--pid-file", pid_file}, fast_options()));
    REQUIRE_MESSAGE(first.wait_for_line(std::regex("all 1 workers? ready"), in(5s)), first.output());
    CHECK(first_number(file_text(pid_file)) == first.pid());

    const auto second = run({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--pid-file", pid_file}, 5s);
    INFO(second.output());
    REQUIRE(second.status);
    CHECK(second.status->code == 1);
    CHECK(second.output().find("hello-http: pid file " + pid_file + " is held by running manager " +
                               std::to_string(first.pid())) != std::string::npos);
    CHECK(second.output().find("spawned") == std::string::npos);
    // The first manager and its pid file are untouched
    CHECK(pid_alive(first.pid()));
    CHECK(first_number(file_text(pid_file)) == first.pid());
}

TEST_CASE("a stale pid file is replaced")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string pid_file = dir / "hello.pid";
    // The pid of a process that has exited and been reaped
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    REQUIRE(dead > 0);
    ::waitpid(dead, nullptr, 0);
    write_file(pid_file, std::to_string(dead) + "\n");

    Process p(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--pid-file", pid_file}, fast_options()));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 1 workers? ready"), in(5s)), p.output());
    CHECK(first_number(file_text(pid_file)) == p.pid());
    REQUIRE(p.signal(SIGTERM));
    const auto st = p.wait_exit(in(4s));
    REQUIRE(st);
    CHECK(st->code == 0);
}

TEST_CASE("--check validates and exits without starting")
{
    HardDeadline guard(10s);
    const auto good = run({hello_http(), "--check", "-w", "2", "-l", "127.0.0.1:0"}, 5s);
    INFO(good.output());
    REQUIRE(good.status);
    CHECK(good.status->code == 0);
    CHECK(good.output().find("listening on") == std::string::npos);
    CHECK(good.output().find("spawned") == std::string::npos);

    const auto bad = run({hello_http(), "--check", "-w", "abc", "-l", "127.0.0.1:0"}, 5s);
    INFO(bad.output());
    REQUIRE(bad.status);
    CHECK(bad.status->code == 2);
    CHECK(bad.output().find("--workers") != std::string::npos);
    CHECK(bad.output().find("spawned") == std::string::npos);
}
