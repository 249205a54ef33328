// hello-http as people deploy it: test endpoints off unless asked for, request-head and
// keep-alive timeouts, and an fd limit that pauses accepting instead of flooding the log.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string hello_http() { return binary("HELLO_HTTP"); }

// hello-http on 127.0.0.1:0 with one worker, fast timing and `extra`, started by `prefix`
// (e.g. prlimit); waits until the worker is ready.
struct Server {
    Process p;
    int port = -1;

    explicit Server(std::vector<std::string> extra, std::vector<std::string> prefix = {})
        : p(concat(concat(prefix, {hello_http(), "-w", "1", "-l", "127.0.0.1:0"}), fast_options(extra)))
    {
        port = wait_for_port(p, in(5s));
        REQUIRE_MESSAGE(port > 0, "no listening line from: " << p.command() << "\n" << p.output());
        REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 1 workers ready"), in(5s)), p.output());
    }

    HttpResult get(const std::string& path, milliseconds timeout = 2s) { return http_get("127.0.0.1", port, path, timeout); }
};

// A client socket connected to 127.0.0.1:port, closed by the destructor.
struct Client {
    int fd = -1;

    explicit Client(int port)
    {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    ~Client() { if (fd >= 0) ::close(fd); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool send(const std::string& bytes) { return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()); }

    // Read until the server closes (true) or the deadline passes (false); keeps what was read.
    bool closed_by_server(Deadline deadline, std::string* got = nullptr)
    {
        char buffer[4096];
        while (Clock::now() < deadline) {
            pollfd pfd{fd, POLLIN, 0};
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
            if (::poll(&pfd, 1, int(std::max<long>(left, 0))) <= 0) continue;
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) return true;   // EOF or reset: the server closed
            if (got) got->append(buffer, std::size_t(n));
        }
        return false;
    }
};

}  // namespace

TEST_CASE("hello-http answers /crash and /hang with 404 unless --test-endpoints turns them on")
{
    HardDeadline guard(20s);
    {
        Server off({});
        const auto pid = off.get("/pid");
        REQUIRE_MESSAGE(pid.ok(), pid.error);
        CHECK(off.get("/crash").status == 404);
        CHECK(off.get("/hang").status == 404);
        const auto after = off.get("/pid");
        CHECK(after.ok());
        CHECK(after.body == pid.body);   // the same worker serves on, nothing crashed
        CHECK(off.p.count(lines::reaped) == 0);
    }
    Server on({"--test-endpoints"});
    const std::size_t mark = on.p.lines().size();
    CHECK_FALSE(on.get("/crash", 1s).ok());
    const auto reaped = on.p.wait_for_line(lines::reaped, in(3s), mark);
    REQUIRE_MESSAGE(reaped, on.p.output());
    CHECK(reaped->groups[2] == "crashed (signal 6)");
}

TEST_CASE("a connection that sends half a request head is closed after --header-timeout")
{
    HardDeadline guard(20s);
    Server s({"--header-timeout", "400ms", "--idle-timeout", "10s"});

    // Half a head, then silence
    Client half(s.port);
    const auto start = Clock::now();
    REQUIRE(half.send("GET / HTTP/1.1\r\nHost: x\r\n"));
    // A head trickled byte by byte gains nothing: the deadline runs from its first byte
    Client trickle(s.port);
    bool open = true;
    for (char c : std::string("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: yes")) {
        if (!trickle.send(std::string(1, c))) { open = false; break; }
        if (trickle.closed_by_server(in(40ms))) { open = false; break; }
    }
    CHECK_FALSE(open);
    CHECK(half.closed_by_server(in(3s)));
    const double waited = ms_since(start);
    CHECK(waited >= 350);
    CHECK(waited < 2000);

    // Not silent: a new connection sends no byte at all, the same deadline holds
    Client mute(s.port);
    const auto mute_start = Clock::now();
    CHECK(mute.closed_by_server(in(3s)));
    CHECK(ms_since(mute_start) >= 350);

    // The worker serves on
    CHECK(s.get("/").ok());
}

TEST_CASE("an idle keep-alive connection is closed after --idle-timeout, a busy one is not")
{
    HardDeadline guard(20s);
    Server s({"--header-timeout", "5s", "--idle-timeout", "500ms"});
    Client c(s.port);
    const std::string request = "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n";

    // Requests 300 ms apart keep the connection: each resets the idle timeout
    for (int i = 0; i < 3; ++i) {
        REQUIRE(c.send(request));
        std::string got;
        CHECK_FALSE(c.closed_by_server(in(300ms), &got));
        CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
    }
    // Then silence: closed after the idle timeout, not the header timeout
    const auto start = Clock::now();
    CHECK(c.closed_by_server(in(3s)));
    const double waited = ms_since(start);
    CHECK(waited >= 150);   // 500 ms after the last response, which came within the last 300 ms
    CHECK(waited < 2000);
}

TEST_CASE("out of descriptors, a worker pauses accepting with one log line and serves again once connections close")
{
    HardDeadline guard(30s);
    // The worker inherits the manager's limit: 64 descriptors, a few dozen for connections
    Server s({"--header-timeout", "30s"}, {"/usr/bin/prlimit", "--nofile=64:64", "--"});
    const std::size_t mark = s.p.lines().size();
    const std::regex failed(R"(accept on \S+ failed: Too many open files; pausing accepts)");
    const std::regex any_accept(R"(accept on \S+ (failed|still failing))");

    // More connections than descriptors: the rest wait in the backlog
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 100; ++i) clients.push_back(std::make_unique<Client>(s.port));
    REQUIRE_MESSAGE(s.p.wait_for_line(failed, in(5s), mark), s.p.output());

    // Two seconds at the limit: one line, not ten a second
    const auto until = in(2s);
    while (Clock::now() < until) s.p.pump(50ms);
    CHECK(s.p.count(any_accept, mark) == 1);
    CHECK(s.p.count(lines::reaped, mark) == 0);

    // The connections go away: the worker accepts again and says so once
    clients.clear();
    REQUIRE_MESSAGE(s.p.wait_for_line(std::regex(R"(accepting on \S+ again after (\d+) failed attempts)"), in(5s), mark),
                    s.p.output());
    const auto served = s.get("/");
    CHECK_MESSAGE(served.ok(), served.error);
    CHECK(s.p.count(any_accept, mark) == 1);
}

TEST_CASE("a malformed --idle-timeout or --header-timeout is refused at start with exit code 2")
{
    HardDeadline guard(10s);
    for (const char* option : {"--idle-timeout", "--header-timeout"}) {
        const auto r = run({hello_http(), "-l", "127.0.0.1:0", option, "soon"}, 5s);
        REQUIRE(r.status);
        CHECK(r.status->code == 2);
        CHECK_MESSAGE(r.output().find(std::string(option + 2)) != std::string::npos, r.output());
        CHECK_MESSAGE(r.output().find("soon") != std::string::npos, r.output());
    }
}
