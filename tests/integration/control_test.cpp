// The control socket and herdctl (DESIGN.md §6), against a real hello-http: every command answers
// when its operation has finished (the log already shows it done when herdctl returns), bad
// requests are answered and change nothing, and only the manager's own uid gets in.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <cstdio>
#include <map>
#include <set>
#include <iterator>
#include <memory>
#include <string>
#include <poll.h>
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

// A control client that writes whatever it likes (half a line, control bytes) and reads with a deadline.
class RawClient {
public:
    explicit RawClient(const std::string& path)
    {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) error_ = errno;
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    int error() const { return error_; }

    bool send(const std::string& bytes)
    {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
    }

    /// The next line (without "\n"), "EOF" when the manager closed the connection, "" at the deadline.
    std::string read_line(Deadline deadline)
    {
        for (;;) {
            if (const auto eol = buffer_.find('\n'); eol != std::string::npos) {
                std::string line = buffer_.substr(0, eol);
                buffer_.erase(0, eol + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
            pollfd p{fd_, POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, int(left)) == 0) return "";
            char chunk[4096];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) return "EOF";
            buffer_.append(chunk, std::size_t(n));
        }
    }

private:
    int fd_ = -1;
    int error_ = 0;
    std::string buffer_;
};

// Log lines of the control socket's warnings, from index `from`.
std::size_t control_warnings(Process& p, std::size_t from)
{
    return p.count(std::regex("control: "), from) - p.count(std::regex("control request from pid"), from);
}

bool has_control_byte(const std::string& line)
{
    return std::any_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 && c != '\t'; });
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
    CHECK(std::find(metrics.lines.begin(), metrics.lines.end(), "herd_workers{pool=\"main\",state=\"ready\"} 2") != metrics.lines.end());
    CHECK(metrics.lines.back() == "# EOF");
}

TEST_CASE("herdctl names the pool main of a manager of one pool; another pool is refused in one line and nothing changes")
{
    HardDeadline guard(40s);
    Controlled s(2);
    const auto table = s.ctl({"status", "main"});
    REQUIRE_MESSAGE(code_of(table) == 0, table.output());
    CHECK_MESSAGE(std::find(table.lines.begin(), table.lines.end(), "pool main: running, 2 of 2 workers ready, permanent") !=
                      table.lines.end(),
                  table.output());
    CHECK(code_of(s.ctl({"ready", "main"})) == 0);
    const auto metrics = s.ctl({"metrics", "main"});
    CHECK(std::find(metrics.lines.begin(), metrics.lines.end(), "herd_target_workers{pool=\"main\"} 2") != metrics.lines.end());

    std::size_t mark = s.p().lines().size();
    const auto up = s.ctl({"scale", "main", "3"});
    REQUIRE_MESSAGE(code_of(up) == 0, up.output());
    CHECK(s.p().count(lines::ready, mark) == 1);
    const auto before = ready_pids(s.p());
    CHECK(before.size() == 3);

    // A pool this manager does not run: one line, exit 1, and the pool is as it was
    for (const std::vector<std::string>& args : {std::vector<std::string>{"scale", "web", "1"}, {"stop", "web"}, {"status", "web"}}) {
        const auto r = s.ctl(args);
        CHECK(code_of(r) == 1);
        CHECK_MESSAGE(r.output() == "herdctl: unknown pool 'web' (this manager runs main)\n", r.output());
    }
    // A pool name herdctl cannot send, or none where one is needed: usage, exit 2
    CHECK(code_of(s.ctl({"restart"})) == 2);
    CHECK(code_of(s.ctl({"scale", "we b", "1"})) == 2);
    CHECK(ready_pids(s.p()) == before);
    CHECK(pid_alive(s.d.pid()));
    CHECK(code_of(s.ctl({"ready"})) == 0);
    CHECK(s.p().count(lines::reaped) == 0);
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
    CHECK(c.ask("{\"command\":\"restrat\"}\n").find("unknown command 'restrat'") != std::string::npos);
    CHECK(c.ask("{\"command\":\"restart\"}\n") == R"({"ok":false,"error":"restart needs \"pool\": the name of a pool"})");
    CHECK(c.ask("{\"command\":\"scale\",\"pool\":\"web\",\"workers\":3}\n") ==
          R"j({"ok":false,"error":"unknown pool 'web' (this manager runs main)"})j");
    // The same connection still works.
    CHECK(c.ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true,"manager":)"));
    // A line too long is refused and that connection closed; others are unaffected.
    ControlClient flood(s.socket);
    CHECK(flood.ask(std::string(70'000, 'x')).find("request longer than 65536 bytes") != std::string::npos);
    CHECK(flood.read_line() == "EOF");
    // Connections are bounded: the 65th makes room by closing the one idle longest (c, asked first).
    {
        std::vector<std::unique_ptr<ControlClient>> many;
        for (int i = 0; i < 63; ++i) many.push_back(std::make_unique<ControlClient>(s.socket));   // and c: 64
        CHECK(many.back()->ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
        ControlClient extra(s.socket);
        CHECK(extra.ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
        CHECK(c.read_line() == R"j({"ok":false,"error":"closed to make room for a new connection (64 connections are open)"})j");
        CHECK(c.read_line() == "EOF");
        CHECK(many.front()->ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
    }
    ControlClient again(s.socket);
    CHECK(again.ask("{\"command\":\"status\"}\n").starts_with(R"({"ok":true)"));
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

TEST_CASE("70 clients stuck in half a request line cost an operator nothing, and each is closed after 5 s")
{
    HardDeadline guard(40s);
    Controlled s(2);
    const std::size_t mark = s.p().lines().size();
    const auto begun = Clock::now();
    std::vector<std::unique_ptr<RawClient>> stuck;
    for (int i = 0; i < 70; ++i) {
        stuck.push_back(std::make_unique<RawClient>(s.socket));
        REQUIRE(stuck.back()->error() == 0);
        REQUIRE(stuck.back()->send("{\"command\":\"sta"));
    }
    const auto sent = Clock::now();
    // Past 64, each new connection closed the one stuck longest, and said why.
    CHECK(stuck.front()->read_line(in(2s)) ==
          R"j({"ok":false,"error":"closed to make room for a new connection (64 connections are open)"})j");
    CHECK(stuck.front()->read_line(in(2s)) == "EOF");

    // The operator's probes answer at once, each making room in turn, and the workers serve.
    auto start = Clock::now();
    const auto status = s.ctl({"status"}, 10s);
    CHECK_MESSAGE(code_of(status) == 0, status.output());
    CHECK(ms_since(start) < 3000);
    start = Clock::now();
    CHECK(code_of(s.ctl({"ready"}, 10s)) == 0);
    CHECK(ms_since(start) < 3000);
    CHECK(http_get("127.0.0.1", s.d.port(), "/", 2s).ok());
    CHECK(s.p().count(std::regex("control: 64 connections are open: closed the one from pid \\d+ \\(in a request line "
                                 "for .+\\) to make room for pid \\d+")) >= 1);

    // A line begun must end within 5 s: the newest stuck client is told so and closed.
    const std::string closed = stuck.back()->read_line(in(10s));
    CHECK(closed == R"j({"ok":false,"error":"closed: a request line was not complete within 5 s"})j");
    CHECK(ms_since(sent) >= 4500);
    CHECK(stuck.back()->read_line(in(2s)) == "EOF");
    CHECK(s.p().wait_for_line(std::regex("control: closed the connection from pid \\d+: a request line was not "
                                         "complete within 5 s"), in(2s), mark));
    // Seventy-two connections closed, and the log has at most 5 lines and a count a second about them.
    const double seconds = ms_since(begun) / 1000;
    const std::size_t warnings = control_warnings(s.p(), mark);
    CHECK_MESSAGE(warnings <= 6 * (std::size_t(seconds) + 1), warnings << " warnings in " << seconds << " s");
    CHECK(warnings < 72);
    CHECK(code_of(s.ctl({"ready"})) == 0);
    CHECK(pid_alive(s.d.pid()));
}

TEST_CASE("a flood of bad requests full of control bytes: every one answered, the log printable and bounded")
{
    HardDeadline guard(40s);
    Controlled s(2);
    const auto before = ready_pids(s.p());
    const std::size_t mark = s.p().lines().size();
    const std::string nasty = std::string("\0\x1b[2J\x1b]0;owned\x07\r", 16) + "fake: worker 1 ready\n";
    const std::string unknown = "{\"command\":\"\\u0000\\u001b[31m\\r\"}\n";

    // One connection: 20 bad requests in a row are answered, the 20th with the closing.
    RawClient one(s.socket);
    std::string flood;
    for (int i = 0; i < 500; ++i) flood += i % 2 ? nasty : unknown;
    REQUIRE(one.send(flood));
    for (int i = 0; i < 20; ++i) {
        const std::string answer = one.read_line(in(5s));
        CHECK_MESSAGE(answer.starts_with(R"({"ok":false,"error":")"), i << ": " << answer);
    }
    CHECK(one.read_line(in(5s)) == R"({"ok":false,"error":"20 bad requests in a row: closing the connection"})");
    CHECK(one.read_line(in(5s)) == "EOF");

    // Many: a client that reconnects and floods for a second and a half.
    const auto start = Clock::now();
    int answered = 0;
    while (ms_since(start) < 1500) {
        RawClient c(s.socket);
        REQUIRE(c.error() == 0);
        if (!c.send(flood)) continue;
        while (c.read_line(in(5s)).starts_with(R"({"ok":false)")) ++answered;
    }
    const double flood_ms = ms_since(start);
    CHECK(answered > 100);
    // Once the flood stops, one line counts what was not logged.
    CHECK(s.p().wait_for_line(std::regex("control: \\d+ more warnings about control connections were not logged"),
                              in(3s), mark));

    const auto status = s.ctl({"status"});
    CHECK_MESSAGE(code_of(status) == 0, status.output());
    CHECK(ready_pids(s.p()) == before);
    // At most 5 warnings and one count a second: a few dozen lines for thousands of bad requests.
    const std::size_t warnings = control_warnings(s.p(), mark);
    MESSAGE(answered << " bad requests answered in " << flood_ms << " ms, " << warnings << " warnings logged");
    CHECK_MESSAGE(warnings <= 6 * (std::size_t(flood_ms / 1000) + 3), warnings << " warnings in " << flood_ms << " ms");
    for (std::size_t i = mark; i < s.p().lines().size(); ++i)
        CHECK_MESSAGE(!has_control_byte(s.p().lines()[i]), "raw control byte in: " << s.p().lines()[i]);
    CHECK(s.p().count(std::regex(R"(control: bad request from pid \d+ "\\x00\\x1b\[2J)"), mark) >= 1);
    CHECK(s.p().count(std::regex("^fake: worker"), mark) == 0);
}

TEST_CASE("herdctl on a path that is no manager's socket says what is there, in one line, exit 1")
{
    HardDeadline guard(30s);
    TempDir dir;
    const auto ctl = [&](const std::string& path) {
        const auto r = run({herdctl(), "--control", path, "status"}, 10s);
        CHECK(code_of(r) == 1);
        CHECK_MESSAGE(r.lines.size() == 1, r.output());
        return r.lines.empty() ? std::string() : r.lines[0];
    };
    const std::string ask = "is --control the path the manager was started with?";
    write_file(dir / "x", "not a socket\n");
    CHECK(ctl(dir / "x") == "herdctl: " + dir / "x" + " is not a socket (a regular file): " + ask);
    CHECK(ctl(dir.path()) == "herdctl: " + dir.path() + " is not a socket (a directory): " + ask);
    CHECK(ctl(dir / "none.sock") == "herdctl: no control socket at " + dir / "none.sock" +
                                        " (no such file): is the manager running, and " + ask);
    CHECK(ctl(dir / "gone/c.sock") ==
          "herdctl: no control socket at " + dir / "gone/c.sock" + ": its directory does not exist; " + ask);

    // A socket file whose manager was killed: bound once, nobody listens now.
    const std::string stale = dir / "stale.sock";
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        ::close(fd);
    }
    CHECK(ctl(stale) == "herdctl: no manager is listening on " + stale +
                            " (a socket file left behind: the manager has exited or was killed)");

    // A live manager's socket (mode 0600) that this user may not open.
    Controlled s(1);
    REQUIRE(::chmod(s.d.dir().path().c_str(), 0755) == 0);
    const std::string denied = "herdctl: permission denied on " + s.socket;
    if (::geteuid() == 0) {
        const auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", herdctl(),
                            "--control", s.socket, "status"}, 10s);
        CHECK(code_of(r) == 1);
        REQUIRE_MESSAGE(r.lines.size() == 1, r.output());
        CHECK_MESSAGE(r.lines[0] == denied + " (a socket owned by uid 0, mode 0600): run herdctl as the manager's user "
                                             "or as root", r.lines[0]);
    } else {
        REQUIRE(::chmod(s.socket.c_str(), 0) == 0);
        CHECK(ctl(s.socket).starts_with(denied + " (a socket owned by uid " + std::to_string(::geteuid()) + ", mode 0000)"));
        REQUIRE(::chmod(s.socket.c_str(), 0600) == 0);
    }
    CHECK(code_of(s.ctl({"ready"})) == 0);
}

namespace {

// Debian's python3 (not one earlier on PATH) with prometheus_client's OpenMetrics parser: every
// sample of the text in argv[1] as one line, "family<TAB>type<TAB>unit<TAB>sample<TAB>value" and
// a "name=value" field per label; exit 77 when the parser is not installed.
constexpr const char* parse_openmetrics = R"py(
import sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    print("SKIP: /usr/bin/python3 has no prometheus_client (" + str(e) + "): apt-get install python3-prometheus-client")
    sys.exit(77)
with open(sys.argv[1]) as f:
    text = f.read()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ["%s=%s" % kv for kv in sorted(s.labels.items())]
        print("\t".join([family.name, family.type, family.unit or "-", s.name, repr(float(s.value))] + labels))
)py";

struct Sample {
    std::string family, type, unit, name;
    double value = 0;
    std::map<std::string, std::string> labels;
};

std::vector<Sample> samples_of(const std::vector<std::string>& lines)
{
    std::vector<Sample> out;
    for (const std::string& line : lines) {
        std::vector<std::string> fields;
        std::size_t start = 0;
        for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
            fields.push_back(line.substr(start, tab - start));
        fields.push_back(line.substr(start));
        REQUIRE_MESSAGE(fields.size() >= 5, line);
        Sample s{fields[0], fields[1], fields[2], fields[3], std::stod(fields[4]), {}};
        for (std::size_t i = 5; i < fields.size(); ++i) {
            const auto eq = fields[i].find('=');
            s.labels[fields[i].substr(0, eq)] = fields[i].substr(eq + 1);
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<Sample> of_family(const std::vector<Sample>& all, const std::string& family)
{
    std::vector<Sample> out;
    std::copy_if(all.begin(), all.end(), std::back_inserter(out), [&](const Sample& s) { return s.family == family; });
    return out;
}

std::set<std::string> label_names(const Sample& s)
{
    std::set<std::string> names;
    for (const auto& [name, value] : s.labels) names.insert(name);
    return names;
}

}  // namespace

TEST_CASE("herdctl metrics is OpenMetrics that prometheus_client's parser reads, and its numbers add up")
{
    HardDeadline guard(40s);
    Controlled s(3);
    // A crash and a reload, so that the counters are not all zero.
    const int victim = *ready_pids(s.p()).begin();
    REQUIRE(::kill(victim, SIGKILL) == 0);
    REQUIRE(s.p().wait_for_line(worker_line(victim, "reaped: crashed"), in(5s)));
    REQUIRE(poll_until([&] { return code_of(s.ctl({"ready"})) == 0; }, in(10s), 50ms));
    const auto reload = s.ctl({"reload"});
    REQUIRE_MESSAGE(code_of(reload) == 0, reload.output());
    for (int i = 0; i < 5; ++i) CHECK(http_get("127.0.0.1", s.d.port(), "/", 2s).ok());
    // The requests reach the manager with the workers' next heartbeats.
    const auto requests_reported = [&] {
        // The top-level workers only: "pools" lists the same workers again, by pool
        std::string json = s.ctl({"--json", "status"}).output();
        json = json.substr(0, json.find("\"pools\":"));
        const std::regex re("\"requests\":(\\d+)");
        long sum = 0;
        for (auto it = std::sregex_iterator(json.begin(), json.end(), re); it != std::sregex_iterator(); ++it)
            sum += std::stol((*it)[1]);
        return sum >= 5;
    };
    CHECK(poll_until(requests_reported, in(5s), 50ms));

    const auto metrics = s.ctl({"metrics"});
    REQUIRE_MESSAGE(code_of(metrics) == 0, metrics.output());
    const std::string text = s.d.dir() / "metrics.txt";
    write_file(text, metrics.output());
    if (!std::filesystem::exists("/usr/bin/python3")) HERD_SKIP("no /usr/bin/python3 to run prometheus_client's parser");
    const auto parsed = run({"/usr/bin/python3", "-c", parse_openmetrics, text}, 20s);
    if (code_of(parsed) == 77) HERD_SKIP(parsed.output());   // the parser is not installed
    REQUIRE_MESSAGE(code_of(parsed) == 0, "the parser rejected:\n" << metrics.output() << "\n" << parsed.output());
    const auto all = samples_of(parsed.lines);

    // Every family, with its type and unit
    const std::map<std::string, std::pair<std::string, std::string>> families{
        {"herd_workers", {"gauge", "-"}},
        {"herd_target_workers", {"gauge", "-"}},
        {"herd_generation", {"gauge", "-"}},
        {"herd_uptime_seconds", {"gauge", "seconds"}},
        {"herd_worker_exits", {"counter", "-"}},
        {"herd_restart_failures", {"gauge", "-"}},
        {"herd_worker_heartbeat_age_seconds", {"gauge", "seconds"}},
        {"herd_worker_requests", {"counter", "-"}},
        {"herd_worker_memory_bytes", {"gauge", "bytes"}},
        {"herd_rollouts", {"counter", "-"}},
    };
    for (const Sample& x : all) {
        REQUIRE_MESSAGE(families.contains(x.family), x.family);
        CHECK(families.at(x.family) == std::pair(x.type, x.unit));
        CHECK(x.name == x.family + (x.type == "counter" ? "_total" : ""));
    }

    // Workers by state: every state, and they add up to the pool
    const auto workers = of_family(all, "herd_workers");
    std::map<std::string, double> by_state;
    for (const Sample& x : workers) {
        CHECK(label_names(x) == std::set<std::string>{"pool", "state"});
        CHECK(x.labels.at("pool") == "main");
        by_state[x.labels.at("state")] = x.value;
    }
    CHECK(by_state == std::map<std::string, double>{{"booting", 0}, {"killed", 0}, {"ready", 3}, {"retiring", 0}});
    const auto target = of_family(all, "herd_target_workers");
    REQUIRE(target.size() == 1);
    CHECK(target[0].value == 3);
    CHECK(of_family(all, "herd_generation").at(0).value == 2);
    CHECK(of_family(all, "herd_uptime_seconds").at(0).value > 0);

    // Exits: the crash and the three workers the reload retired
    std::map<std::string, double> exits;
    for (const Sample& x : of_family(all, "herd_worker_exits")) {
        CHECK(label_names(x) == std::set<std::string>{"pool", "reason"});
        exits[x.labels.at("reason")] = x.value;
    }
    CHECK(exits["crashed"] == 1);
    double total = 0;
    for (const auto& [reason, n] : exits) total += n;
    CHECK_MESSAGE(total == 4, metrics.output());
    CHECK(of_family(all, "herd_restart_failures").at(0).value == 1);

    // Per worker: one heartbeat age and one request count each, for the pids the log says are ready
    std::set<std::string> pids;
    for (int pid : ready_pids(s.p())) pids.insert(std::to_string(pid));
    for (const std::string family : {"herd_worker_heartbeat_age_seconds", "herd_worker_requests"}) {
        std::set<std::string> seen;
        double requests = 0;
        for (const Sample& x : of_family(all, family)) {
            CHECK(label_names(x) == std::set<std::string>{"generation", "pid", "pool", "slot"});
            CHECK(x.labels.at("generation") == "2");
            CHECK(x.value >= 0);
            seen.insert(x.labels.at("pid"));
            requests += x.value;
        }
        CHECK_MESSAGE(seen == pids, family);
        if (family == std::string("herd_worker_requests")) CHECK(requests >= 5);
    }

    // Rollouts: one reload complete, nothing else
    std::map<std::string, double> rollouts;
    for (const Sample& x : of_family(all, "herd_rollouts")) {
        CHECK(label_names(x) == std::set<std::string>{"kind", "result"});
        rollouts[x.labels.at("kind") + " " + x.labels.at("result")] = x.value;
    }
    CHECK(rollouts == std::map<std::string, double>{
                          {"reload complete", 1}, {"reload failed", 0}, {"upgrade complete", 0}, {"upgrade failed", 0}});
}

TEST_CASE("a client waiting for an operation is never closed for time, while a stuck one beside it is")
{
    HardDeadline guard(40s);
    TempDir dir;
    const std::string socket = dir / "control.sock";
    // A retired worker drains for 7 s: `scale -1` answers once it is gone, past the 5 s request timeout.
    Process p(concat({binary("TEST_WORKER"), "-w", "2", "--mode", "slow-drain=7000", "--control", socket},
                     fast_options({"--graceful-timeout", "20s"})));
    REQUIRE(p.wait_for_lines(lines::ready, 2, in(5s)).size() == 2);
    RawClient stuck(socket);
    REQUIRE(stuck.send("{\"command\":"));
    const auto start = Clock::now();
    const auto r = run({herdctl(), "--control", socket, "scale", "-1"}, 20s);
    CHECK_MESSAGE(code_of(r) == 0, r.output());
    CHECK(ms_since(start) >= 6500);
    CHECK(stuck.read_line(in(1s)) == R"j({"ok":false,"error":"closed: a request line was not complete within 5 s"})j");
    CHECK(code_of(run({herdctl(), "--control", socket, "ready"}, 10s)) == 0);
}

TEST_CASE("a manager out of descriptors makes room for herdctl by closing a stuck connection, instead of spinning")
{
    HardDeadline guard(30s);
    TempDir dir;
    const std::string socket = dir / "control.sock";
    // 30 descriptors: about 14 in use at start, so the stuck clients run the manager out.
    Process p(concat({"/usr/bin/prlimit", "--nofile=30:30", hello_http(), "-w", "1", "-l", "127.0.0.1:0", "--control",
                      socket}, fast_options()));
    REQUIRE(p.wait_for_line(lines::all_ready, in(5s)));
    const int port = wait_for_port(p, in(1s));
    std::vector<std::unique_ptr<RawClient>> stuck;
    for (int i = 0; i < 30; ++i) {
        stuck.push_back(std::make_unique<RawClient>(socket));
        REQUIRE(stuck.back()->send("{\"command\":\"sta"));
    }
    CHECK(stuck.front()->read_line(in(3s)) ==
          R"j({"ok":false,"error":"closed to make room for a new connection (no descriptor is left for a new connection)"})j");
    const auto start = Clock::now();
    const auto r = run({herdctl(), "--control", socket, "ready"}, 10s);
    CHECK_MESSAGE(code_of(r) == 0, r.output() << p.output());
    CHECK(ms_since(start) < 3000);
    CHECK(p.wait_for_line(std::regex("control: no descriptor is left for a new connection: closed the one from pid \\d+ "
                                     "\\(in a request line for .+\\) to make room"), in(2s)));
    CHECK(p.count(std::regex("cannot accept a connection")) == 0);
    CHECK(http_get("127.0.0.1", port, "/", 2s).ok());
}
