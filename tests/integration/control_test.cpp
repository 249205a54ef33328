// The control socket and herdctl (DESIGN.md §6), against a real hello-http: every command answers
// when its operation has finished (the log already shows it done when herdctl returns), bad
// requests are answered and change nothing, and only the manager's own uid gets in.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }
std::string herdctl() { return binary("HERDCTL"); }

// A deployed hello-http with a control socket in its directory.
struct Controlled {
    Deployment d;
    std::string socket;

    explicit Controlled(unsigned workers, const std::vector<std::string>& extra = {})
        : d(hello_http()), socket(d.dir() / "control.sock")
    {
        d.start(concat({"-w", std::to_string(workers), "-l", "127.0.0.1:0", "--control", socket}, fast_options(extra)));
        const std::string error = d.wait_ready(workers, in(5s));
        REQUIRE_MESSAGE(error.empty(), error);
    }

    Process& p() { return d.process(); }

    // herdctl --control SOCKET args...
    RunResult ctl(const std::vector<std::string>& args, milliseconds timeout = 20s)
    {
        return run(concat({herdctl(), "--control", socket}, args), timeout);
    }
};

int code_of(const RunResult& r)
{
    return r.status && r.status->exited() ? r.status->code : -1;
}

}  // namespace

TEST_CASE("herdctl status shows the pool as the log tells it; --json gives the object; ready exits 0")
{
    HardDeadline guard(30s);
    Controlled s(2);
    const auto table = s.ctl({"status"});
    REQUIRE_MESSAGE(code_of(table) == 0, table.output());
    MESSAGE(table.output());
    for (int pid : ready_pids(s.p()))
        CHECK_MESSAGE(table.output().find(std::to_string(pid)) != std::string::npos, "worker " << pid << " missing");
    CHECK(table.output().find(std::to_string(s.d.pid())) != std::string::npos);

    const auto json = s.ctl({"--json", "status"});
    REQUIRE(code_of(json) == 0);
    REQUIRE(json.lines.size() == 1);
    CHECK(json.lines[0].find("\"ok\":true") != std::string::npos);
    CHECK(json.lines[0].find("\"pid\":" + std::to_string(s.d.pid())) != std::string::npos);
    CHECK(json.lines[0].find("\"at_target\":true") != std::string::npos);

    CHECK(code_of(s.ctl({"ready"})) == 0);
    const auto metrics = s.ctl({"metrics"});
    REQUIRE(code_of(metrics) == 0);
    CHECK(std::find(metrics.lines.begin(), metrics.lines.end(), "herd_workers{state=\"ready\"} 2") != metrics.lines.end());
    CHECK(metrics.lines.back() == "# EOF");
}

TEST_CASE("herdctl scale answers once the pool has settled: new workers ready, retired ones gone")
{
    HardDeadline guard(40s);
    Controlled s(2);
    std::size_t mark = s.p().lines().size();
    const auto up = s.ctl({"scale", "4"});
    REQUIRE_MESSAGE(code_of(up) == 0, up.output());
    // Already in the log when herdctl returned: two more workers ready.
    CHECK(s.p().count(lines::ready, mark) == 2);
    CHECK(ready_pids(s.p()).size() == 4);

    mark = s.p().lines().size();
    const auto down = s.ctl({"scale", "-3"});
    REQUIRE_MESSAGE(code_of(down) == 0, down.output());
    CHECK(s.p().count(lines::reaped, mark) == 3);
    CHECK(ready_pids(s.p()).size() == 1);

    mark = s.p().lines().size();
    REQUIRE(code_of(s.ctl({"scale", "+1"})) == 0);
    CHECK(s.p().count(lines::ready, mark) == 1);
    CHECK(code_of(s.ctl({"ready"})) == 0);
    CHECK(s.p().count(std::regex("reaped: crashed")) == 0);
}

TEST_CASE("herdctl reload and upgrade return when the new generation has taken over; the pid stays")
{
    HardDeadline guard(40s);
    Controlled s(2);
    std::size_t mark = s.p().lines().size();
    const auto reload = s.ctl({"reload"});
    REQUIRE_MESSAGE(code_of(reload) == 0, reload.output() << s.p().output());
    CHECK(s.p().count(lines::reload_complete, mark) == 1);

    mark = s.p().lines().size();
    deploy(hello_http(), s.d.app());
    const auto upgrade = s.ctl({"upgrade"});
    REQUIRE_MESSAGE(code_of(upgrade) == 0, upgrade.output() << s.p().output());
    const auto done = s.p().matches(lines::upgrade_complete, mark);
    REQUIRE(done.size() == 1);
    // The answer came from the new image, over the connection the old one handed over.
    CHECK(upgrade.output().find("generation " + std::to_string(done[0].number(1))) != std::string::npos);
    CHECK(pid_alive(s.d.pid()));
    CHECK_FALSE(s.p().status());

    // Status after the upgrade remembers both rollouts, and the exits of the old workers.
    const auto json = s.ctl({"--json", "status"});
    REQUIRE(code_of(json) == 0);
    CHECK(json.output().find(R"("upgrade":{"complete":1,"failed":0})") != std::string::npos);
    CHECK(json.output().find(R"("reload":{"complete":1,"failed":0})") != std::string::npos);
    CHECK(json.output().find("retired (upgrade)") != std::string::npos);
}

TEST_CASE("herdctl upgrade to a broken binary fails with the reason, and generation 1 keeps serving")
{
    HardDeadline guard(30s);
    Controlled s(2);
    const auto before = ready_pids(s.p());
    deploy_script("#!/bin/sh\necho 'bad option --frobnicate' >&2\nexit 2\n", s.d.app());
    const auto r = s.ctl({"upgrade"});
    CHECK(code_of(r) == 1);
    REQUIRE(r.lines.size() == 1);
    CHECK_MESSAGE(r.lines[0].find("upgrade abandoned") != std::string::npos, r.lines[0]);
    CHECK(ready_pids(s.p()) == before);
    const auto json = s.ctl({"--json", "status"});
    CHECK(json.output().find(R"("result":"failed")") != std::string::npos);
    CHECK(code_of(s.ctl({"ready"})) == 0);
}

TEST_CASE("herdctl stop returns once the manager has exited, and the socket file is gone")
{
    HardDeadline guard(30s);
    Controlled s(2);
    const auto r = s.ctl({"stop"});
    REQUIRE_MESSAGE(code_of(r) == 0, r.output());
    const auto status = s.p().wait_exit(in(2s));
    REQUIRE(status);
    CHECK(status->code == 0);
    CHECK(s.p().count(lines::reaped) == 2);
    CHECK_FALSE(std::filesystem::exists(s.socket));
    // Nobody to talk to now: one line, exit 1.
    const auto gone = s.ctl({"status"});
    CHECK(code_of(gone) == 1);
    CHECK(gone.lines.size() == 1);
}

TEST_CASE("bad requests are answered with one line each, and the manager and its workers carry on")
{
    HardDeadline guard(30s);
    Controlled s(2);
    const auto before = ready_pids(s.p());
    ControlClient c(s.socket);
    REQUIRE(c.error() == 0);
    CHECK(c.ask("hello\n") == R"j({"ok":false,"error":"malformed request (not JSON: syntax error)"})j");
    CHECK(c.ask("{\"command\":\"scale\",\"workers\":-4}\n") ==
          R"({"ok":false,"error":"invalid value -4 for \"workers\": must be 0 to 4096"})");
    CHECK(c.ask("{\"command\":\"restart\"}\n").find("unknown command 'restart'") != std::string::npos);
    // The same connection still works.
    CHECK(c.ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true,"manager":)"));
    // A line too long is refused and that connection closed; others are unaffected.
    ControlClient flood(s.socket);
    CHECK(flood.ask(std::string(70'000, 'x')).find("request longer than 65536 bytes") != std::string::npos);
    CHECK(flood.read_line() == "EOF");
    // Connections are bounded: the 65th open one is answered and closed, and room comes back.
    {
        std::vector<std::unique_ptr<ControlClient>> many;
        for (int i = 0; i < 63; ++i) many.push_back(std::make_unique<ControlClient>(s.socket));   // and c: 64
        CHECK(many.back()->ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
        ControlClient extra(s.socket);
        CHECK(extra.read_line() == R"j({"ok":false,"error":"too many control connections (64)"})j");
    }
    CHECK(c.ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
    CHECK(ready_pids(s.p()) == before);
    CHECK(code_of(s.ctl({"ready"})) == 0);
    // Usage errors never reach the manager: exit 2.
    CHECK(code_of(s.ctl({"scale", "many"})) == 2);
    CHECK(code_of(s.ctl({"frobnicate"})) == 2);
}

TEST_CASE("the control socket is mode 0600")
{
    HardDeadline guard(30s);
    Controlled s(1);
    struct stat st{};
    REQUIRE(::stat(s.socket.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("another uid is refused at the control socket even when the mode would let it in")
{
    if (::geteuid() != 0) HERD_SKIP("switching uid needs root");
    HardDeadline guard(30s);
    Controlled s(1);
    REQUIRE(::chmod(s.socket.c_str(), 0666) == 0);
    REQUIRE(::chmod(s.d.dir().path().c_str(), 0755) == 0);
    // A child as nobody (65534) connects and reads the refusal.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(fds[0]);
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
        ControlClient c(s.socket);
        const std::string answer = c.error() ? "connect: " + std::string(std::strerror(c.error())) : c.read_line();
        [[maybe_unused]] auto n = ::write(fds[1], answer.data(), answer.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string answer;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) answer.append(buf, std::size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(answer == R"({"ok":false,"error":"permission denied: uid 65534 may not control this manager"})");
    CHECK(s.p().wait_for_line(std::regex("control: refused a connection from pid \\d+ \\(uid 65534\\)"), in(2s)));
    CHECK(code_of(s.ctl({"ready"})) == 0);
}

TEST_CASE("a second manager on the same control socket refuses to start; a stale socket file is replaced")
{
    HardDeadline guard(30s);
    Controlled s(1);
    const auto second = run({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--control", s.socket}, 10s);
    CHECK(code_of(second) == 1);
    CHECK_MESSAGE(second.output().find("control socket " + s.socket + " is in use by a running manager") !=
                      std::string::npos,
                  second.output());
    CHECK(code_of(s.ctl({"ready"})) == 0);   // the first one is untouched

    // A manager killed outright leaves its socket file behind; the next one replaces it.
    s.p().kill_group();
    REQUIRE(std::filesystem::exists(s.socket));
    Process next(concat({hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--control", s.socket}, fast_options()));
    REQUIRE(next.wait_for_line(lines::all_ready, in(5s)));
    CHECK(code_of(run({herdctl(), "--control", s.socket, "ready"}, 10s)) == 0);
}

TEST_CASE("an upgrade keeps the pool size an operator scaled to; a reload goes back to the configured one")
{
    HardDeadline guard(30s);
    Controlled s(2);
    REQUIRE(code_of(s.ctl({"scale", "3"})) == 0);
    deploy(hello_http(), s.d.app());
    const auto upgrade = s.ctl({"upgrade"});
    REQUIRE_MESSAGE(code_of(upgrade) == 0, upgrade.output());
    auto json = s.ctl({"--json", "status"});
    CHECK_MESSAGE(json.output().find("\"target\":3,") != std::string::npos, json.output());
    REQUIRE(code_of(s.ctl({"reload"})) == 0);
    json = s.ctl({"--json", "status"});
    CHECK_MESSAGE(json.output().find("\"target\":2,") != std::string::npos, json.output());
}

TEST_CASE("herdctl upgrade to a binary whose workers crash answers with the failure once the previous binary serves again")
{
    HardDeadline guard(40s);
    Controlled s(2, {"--restart-limit", "3/10s"});
    const pid_t manager = s.d.pid();
    deploy(binary("TEST_WORKER_BROKEN"), s.d.app());
    const auto r = s.ctl({"upgrade"});
    CHECK(code_of(r) == 1);
    REQUIRE(r.lines.size() == 1);
    CHECK_MESSAGE(std::regex_search(r.lines[0], std::regex("upgrade to generation 2 failed: .+; the previous binary "
                                                           "serves again")),
                  r.lines[0]);
    CHECK(s.p().wait_for_line(lines::upgrade_rolled_back, in(10s)));
    CHECK(pid_alive(manager));
    // The previous binary answers status now, and remembers the failure.
    CHECK(poll_until([&] { return code_of(s.ctl({"ready"})) == 0; }, in(10s), 50ms));
    const auto json = s.ctl({"--json", "status"});
    CHECK(json.output().find(R"("upgrade":{"complete":0,"failed":1})") != std::string::npos);
    CHECK(json.output().find(R"("result":"failed")") != std::string::npos);
}

TEST_CASE("herdctl stop --now is the fast shutdown: TERM to every worker, and the manager exits 0")
{
    HardDeadline guard(30s);
    Controlled s(2);
    const auto r = s.ctl({"stop", "--now"});
    REQUIRE_MESSAGE(code_of(r) == 0, r.output());
    const auto status = s.p().wait_exit(in(2s));
    REQUIRE(status);
    CHECK(status->code == 0);
    CHECK(s.p().count(std::regex("control request from pid \\d+: fast shutdown of 2 workers")) == 1);
    CHECK(s.p().count(std::regex("reaped: stopped \\(shutdown\\)")) == 2);
}

TEST_CASE("herdctl ready exits 1 with the reason while a worker is still booting")
{
    HardDeadline guard(30s);
    TempDir dir;
    const std::string socket = dir / "control.sock";
    Process p(concat({binary("TEST_WORKER"), "-w", "1", "--mode", "never-ready", "--control", socket},
                     fast_options({"--boot-timeout", "10s"})));
    REQUIRE(p.wait_for_line(lines::spawned, in(5s)));
    REQUIRE(poll_until([&] { return std::filesystem::exists(socket); }, in(5s)));
    const auto r = run({herdctl(), "--control", socket, "ready"}, 10s);
    CHECK(code_of(r) == 1);
    REQUIRE(r.lines.size() == 1);
    CHECK_MESSAGE(r.lines[0].find("not ready") != std::string::npos, r.lines[0]);
    const auto json = run({herdctl(), "--control", socket, "--json", "status"}, 10s);
    CHECK(json.output().find(R"("state":"booting")") != std::string::npos);
    CHECK(json.output().find(R"("heartbeat_age_s":null)") != std::string::npos);
    CHECK(json.output().find(R"("at_target":false)") != std::string::npos);
}

TEST_CASE("herdctl gives up at --timeout when nobody answers, with one line and exit 1")
{
    HardDeadline guard(20s);
    TempDir dir;
    const std::string path = dir / "silent.sock";
    // A socket that takes connections into its backlog and never reads: a wedged manager.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 8) == 0);
    const auto start = Clock::now();
    const auto r = run({herdctl(), "--control", path, "--timeout", "300ms", "status"}, 10s);
    const double took = ms_since(start);
    ::close(fd);
    CHECK(code_of(r) == 1);
    REQUIRE(r.lines.size() == 1);
    CHECK_MESSAGE(r.lines[0].find("no answer from " + path + " within") != std::string::npos, r.lines[0]);
    CHECK(took >= 300);
    CHECK(took < 5000);
}
