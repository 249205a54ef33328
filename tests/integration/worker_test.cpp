// The worker side on its own: a plain blocking accept loop (blocking-echo) under real signals and
// real clients, and a worker that learns of its manager's death from its heartbeat channel alone.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace {

std::string blocking_echo() { return binary("BLOCKING_ECHO"); }
std::string test_worker() { return binary("TEST_WORKER"); }

// Heartbeats every 50 ms, retired after 500 ms of silence (shorter starves under a sanitizer on two busy cores).
const std::vector<std::string> short_heartbeats = {"--heartbeat-interval", "50ms", "--heartbeat-timeout", "500ms"};

// blocking-echo on 127.0.0.1:0 with `workers` and `extra`; waits until all are ready.
struct EchoServer {
    Process p;
    int port = -1;

    EchoServer(unsigned workers, std::vector<std::string> extra)
        : p(concat({blocking_echo(), "-w", std::to_string(workers), "-l", "127.0.0.1:0"}, fast_options(extra)))
    {
        port = wait_for_port(p, in(5s));
        REQUIRE_MESSAGE(port > 0, "no listening line from: " << p.command() << "\n" << p.output());
        const auto all = p.wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), in(5s));
        REQUIRE_MESSAGE(all, "pool never ready:\n" << p.output());
    }
};

// A blocking TCP client of 127.0.0.1 whose every read and write gives up after 2 s.
class Client {
public:
    explicit Client(int port)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const timeval limit{2, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) error_ = errno;
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    int error() const { return error_; }
    bool send(const std::string& text) { return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == ssize_t(text.size()); }
    /// Read until `size` bytes came, the peer closed or 2 s passed without a byte.
    std::string receive(std::size_t size)
    {
        std::string got;
        char buffer[256];
        while (got.size() < size) {
            const ssize_t n = ::read(fd_, buffer, std::min(sizeof buffer, size - got.size()));
            if (n <= 0) break;
            got.append(buffer, std::size_t(n));
        }
        return got;
    }
    /// Say that nothing more comes, and read what is left: true if the server then closed.
    bool finish()
    {
        ::shutdown(fd_, SHUT_WR);
        char buffer[64];
        return ::read(fd_, buffer, sizeof buffer) == 0;
    }

private:
    int fd_ = -1;
    int error_ = 0;
};

// "line\n" sent and echoed back, the proof that a worker is serving this client.
void round_trip(Client& c, const std::string& line)
{
    REQUIRE(c.send(line));
    CHECK(c.receive(line.size()) == line);
}

}  // namespace

TEST_CASE("an idle blocking-accept worker is not retired: accept() heartbeats while it waits")
{
    HardDeadline guard(20s);
    EchoServer s(1, short_heartbeats);
    const std::vector<int> workers = spawned_pids(s.p);
    REQUIRE(workers.size() == 1);
    const std::size_t mark = s.p.lines().size();

    // Four heartbeat timeouts without a client
    const auto retired = s.p.wait_for_line(lines::no_heartbeat, in(2s), mark);
    CHECK_MESSAGE(!retired, "an idle worker was retired:\n" << s.p.output());
    CHECK(s.p.count(lines::reaped, mark) == 0);
    CHECK(pid_alive(workers[0]));

    // ... and it still serves
    Client c(s.port);
    REQUIRE(c.error() == 0);
    round_trip(c, "still here\n");
    CHECK(c.finish());
    CHECK(spawned_pids(s.p).size() == 1);
}

TEST_CASE("QUIT while a client is served: it is served to the end, the next queued one too, then the worker exits")
{
    HardDeadline guard(20s);
    EchoServer s(1, concat(short_heartbeats, {"--graceful-timeout", "10s"}));
    const int worker = spawned_pids(s.p).at(0);

    // A client in the middle of its conversation: the worker is blocked in read()
    Client first(s.port);
    REQUIRE(first.error() == 0);
    round_trip(first, "one\n");

    const auto quit_at = Clock::now();
    REQUIRE(s.p.signal(SIGQUIT));
    REQUIRE(s.p.wait_for_line(std::regex("received QUIT: graceful shutdown"), in(2s)));
    // The manager no longer listens; the worker does until it is back in accept(), so a client
    // that comes now waits in the backlog, and is served, instead of being refused or reset.
    Client second(s.port);
    REQUIRE(second.error() == 0);
    REQUIRE(second.send("two\n"));

    // QUIT did not cut the first client short: its read() went on (SA_RESTART)
    CHECK_FALSE(poll_until([&] { return !pid_alive(worker); }, in(200ms)));
    round_trip(first, "three\n");
    CHECK(first.finish());

    // The client that was queued when the worker saw QUIT is served, then the worker exits
    CHECK(second.receive(4) == "two\n");
    CHECK(second.finish());
    const auto st = s.p.wait_exit(in(3s));
    REQUIRE_MESSAGE(st, "the manager did not exit:\n" << s.p.output());
    CHECK(st->code == 0);
    MESSAGE("manager exited " << ms_since(quit_at) << " ms after QUIT (graceful timeout 10 s)");
    CHECK(ms_since(quit_at) < 3000);
    CHECK(s.p.count(worker_line(worker, "stopping gracefully \\(QUIT\\)")) == 1);
    CHECK(s.p.count(lines::graceful_kill) == 0);
    CHECK(try_connect("127.0.0.1", s.port, 1s) == ECONNREFUSED);
}

TEST_CASE("QUIT while blocking-accept workers are idle: they exit at once")
{
    HardDeadline guard(20s);
    EchoServer s(2, concat(short_heartbeats, {"--graceful-timeout", "10s"}));
    const std::vector<int> workers = spawned_pids(s.p);
    REQUIRE(workers.size() == 2);

    const auto quit_at = Clock::now();
    REQUIRE(s.p.signal(SIGQUIT));
    const auto st = s.p.wait_exit(in(5s));
    REQUIRE_MESSAGE(st, "the manager did not exit:\n" << s.p.output());
    CHECK(st->code == 0);
    const double took = ms_since(quit_at);
    MESSAGE("manager and idle workers gone " << took << " ms after QUIT (graceful timeout 10 s)");
    CHECK(took < 1000);
    for (int pid : workers) {
        CHECK(s.p.count(worker_line(pid, "stopping gracefully \\(QUIT\\)")) == 1);
        CHECK(s.p.count(worker_line(pid, "reaped: (retired|stopped) \\(shutdown\\)")) == 1);
    }
    CHECK(s.p.count(lines::graceful_kill) == 0);
}

TEST_CASE("a poll() loop of the application's own on stop_fd() idles without being retired and exits at once on QUIT")
{
    HardDeadline guard(20s);
    Process p(concat({test_worker(), "-w", "2", "--mode", "poll-stop-fd"},
                     fast_options(concat(short_heartbeats, {"--graceful-timeout", "10s"}))));
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const std::vector<int> workers = spawned_pids(p);
    REQUIRE(workers.size() == 2);
    const std::size_t mark = p.lines().size();
    CHECK_FALSE(p.wait_for_line(lines::no_heartbeat, in(1500ms), mark));

    const auto quit_at = Clock::now();
    REQUIRE(p.signal(SIGQUIT));
    const auto st = p.wait_exit(in(5s));
    REQUIRE_MESSAGE(st, "the manager did not exit:\n" << p.output());
    CHECK(st->code == 0);
    MESSAGE("gone " << ms_since(quit_at) << " ms after QUIT (graceful timeout 10 s)");
    CHECK(ms_since(quit_at) < 1000);
    for (int pid : workers) CHECK(p.count(worker_line(pid, "stopping gracefully \\(QUIT\\)")) == 1);
}

TEST_CASE("a blocking worker stuck in a client sends no heartbeat and is retired as hung")
{
    HardDeadline guard(20s);
    EchoServer s(1, concat(short_heartbeats, {"--graceful-timeout", "500ms"}));
    const int worker = spawned_pids(s.p).at(0);
    const std::size_t mark = s.p.lines().size();

    // A client that says one line and then stalls: the worker waits in read(), outside herd
    Client stalled(s.port);
    REQUIRE(stalled.error() == 0);
    round_trip(stalled, "one\n");

    const auto hung = s.p.wait_for_line(worker_line(worker, R"(has no heartbeat for (\S+ \S+) \(timeout 500 ms\), retiring)"),
                                        in(3s), mark);
    REQUIRE_MESSAGE(hung, "a worker stuck in a request was not retired:\n" << s.p.output());
    CHECK(parse_duration_ms(hung->groups[1]) >= 500);
    const auto reaped = s.p.wait_for_line(worker_line(worker, "reaped: (.+), slot 0"), in(3s), hung->index);
    REQUIRE_MESSAGE(reaped, s.p.output());
    const std::string why = reaped->groups[1];
    CHECK_MESSAGE((why == "no heartbeat" || why == "killed after graceful timeout"), "classified as: " << why);

    // Its replacement serves (it may have been ready before the hung worker was reaped)
    REQUIRE_MESSAGE(s.p.wait_for_line(lines::ready, in(3s), hung->index), s.p.output());
    Client next(s.port);
    REQUIRE(next.error() == 0);
    round_trip(next, "two\n");
    CHECK(next.finish());
}

// The manager's death, seen by a worker whose PR_SET_PDEATHSIG is off: only the heartbeat channel
// can tell it. Heartbeats every 250 ms, so two intervals are 500 ms.
namespace {

struct Orphaned {
    Process p;
    std::vector<int> workers;

    explicit Orphaned(const std::string& mode)
        : p({test_worker(), "-w", "3", "--mode", mode, "--no-pdeathsig", "--heartbeat-interval", "250ms",
             "--heartbeat-timeout", "5s"})
    {
        REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 3 workers ready"), in(5s)), p.output());
        workers = spawned_pids(p);
        REQUIRE(workers.size() == 3);
        for (int pid : workers)
            REQUIRE_MESSAGE(p.wait_for_line(worker_line(pid, "runs without PR_SET_PDEATHSIG \\(signal 0\\)"), in(2s)),
                            p.output());
    }

    bool all_gone() const { return herd::testing::all_gone(workers); }

    void kill_manager()
    {
        REQUIRE(p.signal(SIGKILL));
        const auto st = p.wait_exit(in(2s));
        REQUIRE(st);
        CHECK(st->signal == SIGKILL);
    }
};

void exits_through_its_channel(const std::string& mode)
{
    HardDeadline guard(20s);
    Orphaned o(mode);
    const auto killed_at = Clock::now();
    o.kill_manager();
    const bool gone = poll_until([&] { return o.all_gone(); }, killed_at + 500ms, 2ms);
    MESSAGE("workers (" << mode << ") gone " << ms_since(killed_at) << " ms after the manager was killed");
    CHECK_MESSAGE(gone, "workers still running 500 ms (2 heartbeat intervals) after the manager died:\n" << o.p.output());
    for (int pid : o.workers)
        CHECK_MESSAGE(o.p.wait_for_line(std::regex("manager is gone, worker " + std::to_string(pid) + " exiting"), in(1s)),
                      o.p.output());
}

}  // namespace

TEST_CASE("without PR_SET_PDEATHSIG, a worker that heartbeats from its loop exits within two intervals of the manager's SIGKILL")
{
    exits_through_its_channel("ok");
}

TEST_CASE("without PR_SET_PDEATHSIG, a worker idle in wait_readable() exits within two intervals of the manager's SIGKILL")
{
    exits_through_its_channel("idle-wait");
}

TEST_CASE("without PR_SET_PDEATHSIG, a hung worker outlives its manager: nothing else ends it")
{
    // The counterpart of the two above: PDEATHSIG is really off in those.
    HardDeadline guard(20s);
    Orphaned o("hang-after=100");
    for (int pid : o.workers)
        REQUIRE(o.p.wait_for_line(worker_line(pid, "stops heartbeating"), in(2s)));
    o.kill_manager();
    CHECK_FALSE(poll_until([&] { return !pid_alive(o.workers[0]); }, in(750ms)));
    o.p.kill_group();   // they are in the manager's process group
    CHECK(poll_until([&] { return o.all_gone(); }, in(2s)));
}

TEST_CASE("a worker running as --user dies with its manager even when hung (PR_SET_PDEATHSIG set again)")
{
    // Switching user clears PR_SET_PDEATHSIG; a hung worker sends no heartbeat that could fail.
    if (::geteuid() != 0) HERD_SKIP("--user needs root");
    HardDeadline guard(20s);
    Process p({test_worker(), "-w", "2", "--user", "nobody", "--mode", "hang-after=100", "--heartbeat-interval", "250ms",
               "--heartbeat-timeout", "5s"});
    REQUIRE_MESSAGE(p.wait_for_line(std::regex("all 2 workers ready"), in(5s)), p.output());
    const std::vector<int> workers = spawned_pids(p);
    REQUIRE(workers.size() == 2);
    for (int pid : workers) REQUIRE_MESSAGE(p.wait_for_line(worker_line(pid, "stops heartbeating"), in(2s)), p.output());

    const auto killed_at = Clock::now();
    REQUIRE(p.signal(SIGKILL));
    const bool gone = poll_until([&] { return all_gone(workers); }, killed_at + 500ms, 2ms);
    MESSAGE("hung --user workers gone " << ms_since(killed_at) << " ms after the manager was killed");
    CHECK_MESSAGE(gone, "hung workers running as nobody outlived their manager");
    p.kill_group();
}
