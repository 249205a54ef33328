// The manager's shell over a fake ProcessOps: no process is forked. A fake worker is a pipe the
// test writes heartbeats into; its "exit" closes the pipe and makes try_reap report a status.
#include <herd/manager/manager.hpp>
#include <herd/os/log.hpp>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace herd;
using namespace std::chrono_literals;

namespace {

class FakeOps : public ProcessOps {
public:
    struct Fake {
        int slot;
        unsigned generation;
        int write_fd;
        std::optional<int> status;   // set once it "exited"
    };

    Started spawn(int slot, unsigned generation) override
    {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        const int pid = next_pid_++;
        fakes[pid] = Fake{slot, generation, fds[1], std::nullopt};
        spawned.push_back(pid);
        return {pid, fds[0]};
    }
    bool send(int pid, int signal) override
    {
        signals.push_back({pid, signal});
        auto it = fakes.find(pid);
        if (it == fakes.end() || it->second.status) return false;
        // These fakes obey at once: QUIT ends them with 0, TERM and KILL by the signal.
        exit(pid, signal == SIGQUIT ? W_EXITCODE(0, 0) : signal);
        return true;
    }
    bool forwards_log_reopen() const override { return reopen; }
    std::optional<int> try_reap(int pid) override
    {
        auto it = fakes.find(pid);
        if (it == fakes.end() || !it->second.status) return std::nullopt;
        reaped.insert(pid);
        return it->second.status;
    }

    void beat(int pid, const std::string& record = "\n")
    {
        REQUIRE(::write(fakes.at(pid).write_fd, record.data(), record.size()) == ssize_t(record.size()));
    }
    void exit(int pid, int status)
    {
        auto& f = fakes.at(pid);
        f.status = status;
        ::close(f.write_fd);   // EOF: the manager reaps it
    }
    /// An exit whose channel stays open (a child of the worker holds it): only SIGCHLD tells.
    void exit_quietly(int pid, int status) { fakes.at(pid).status = status; }
    std::optional<int> exited_child() override
    {
        for (const auto& [pid, f] : fakes)
            if (f.status && !reaped.count(pid)) return pid;
        return std::nullopt;
    }

    std::map<int, Fake> fakes;
    std::vector<int> spawned;
    std::vector<std::pair<int, int>> signals;
    std::set<int> reaped;
    bool reopen = true;   // false: exec mode's programs, which are not sent USR1

private:
    int next_pid_ = 900000;
};

Options fast(unsigned workers)
{
    Options o;
    o.workers = workers;
    o.heartbeat_interval = 50ms;
    o.heartbeat_timeout = 5s;
    o.graceful_timeout = 5s;
    o.spare = 1;
    return o;
}

// A manager over FakeOps, logging off; the hooks drive the fakes.
struct Shell {
    Shell() { log::setup("off", "", "manager"); }
    /// Run a manager of `workers` to its end; its exit code.
    int run(unsigned workers) { return run(fast(workers)); }
    int run(const Options& options)
    {
        manager = std::make_unique<Manager>(io, options, listeners, ops, hooks);
        if (!control_path.empty()) manager->set_control(control::Server::bind(control_path), control_path);
        return manager->run();
    }
    std::string control_path;
    boost::asio::io_context io;
    std::vector<Listener> listeners;
    FakeOps ops;
    ManagerHooks hooks;
    std::unique_ptr<Manager> manager;
};

}  // namespace

TEST_CASE_FIXTURE(Shell, "the manager spawns its pool, waits for readiness, and stops gracefully on QUIT")
{
    std::vector<int> ready;
    // Each fake worker beats at once; once all three are ready, the operator sends QUIT.
    hooks.after_spawn = [&](const WorkerEvent& e) { ops.beat(e.pid); };
    hooks.on_heartbeat = [&](const WorkerEvent& e) {
        if (std::find(ready.begin(), ready.end(), e.pid) != ready.end()) return;
        ready.push_back(e.pid);
        if (ready.size() == 3) ::raise(SIGQUIT);
    };
    CHECK(run(3) == 0);

    CHECK(ops.spawned.size() == 3);
    CHECK(ready.size() == 3);
    std::set<int> quit;
    for (const auto& [pid, sig] : ops.signals)
        if (sig == SIGQUIT) quit.insert(pid);
    CHECK(quit == std::set<int>(ops.spawned.begin(), ops.spawned.end()));
    CHECK(ops.reaped == quit);
    CHECK(manager->state().workers.empty());
}

TEST_CASE_FIXTURE(Shell, "the manager replaces a worker that exits, in its slot, and never signals a reaped pid")
{
    int crashed = 0;
    hooks.after_spawn = [&](const WorkerEvent& e) { ops.beat(e.pid, "requests=0\n"); };
    hooks.on_heartbeat = [&](const WorkerEvent& e) {
        if (ops.spawned.size() == 2 && !crashed) {
            crashed = e.pid;
            ops.exit(e.pid, SIGSEGV);   // the first ready worker crashes
        } else if (ops.spawned.size() == 3 && e.pid == ops.spawned.back()) {
            ::raise(SIGTERM);           // its replacement is ready: fast shutdown
        }
    };
    CHECK(run(2) == 0);

    REQUIRE(ops.spawned.size() == 3);
    CHECK(ops.fakes.at(ops.spawned[2]).slot == ops.fakes.at(crashed).slot);
    CHECK(manager->state().exits.at("crashed") == 1);
    for (const auto& [pid, sig] : ops.signals) CHECK_MESSAGE(pid != crashed, "signal " << sig << " sent to reaped pid");
}

TEST_CASE_FIXTURE(Shell, "a worker that exits while a child of its own holds its channel is reaped on SIGCHLD")
{
    int gone = 0;
    hooks.after_spawn = [&](const WorkerEvent& e) { ops.beat(e.pid); };
    hooks.on_heartbeat = [&](const WorkerEvent& e) {
        if (!gone) {
            gone = e.pid;
            ops.exit_quietly(e.pid, W_EXITCODE(1, 0));
            ::raise(SIGCHLD);
        } else if (e.pid != gone) {
            ::raise(SIGQUIT);   // its replacement is ready
        }
    };
    CHECK(run(1) == 0);
    REQUIRE(ops.spawned.size() == 2);
    CHECK(ops.reaped.count(gone) == 1);
    CHECK(manager->state().exits.at("crashed") == 1);
}

TEST_CASE_FIXTURE(Shell, "a malformed heartbeat record still counts as a heartbeat, and the manager keeps going")
{
    int beats = 0;
    hooks.after_spawn = [&](const WorkerEvent& e) { ops.beat(e.pid, "requests=lots\n"); };
    hooks.on_heartbeat = [&](const WorkerEvent& e) {
        if (++beats == 1) ops.beat(e.pid, "requests=7\n");
        else ::raise(SIGQUIT);
    };
    CHECK(run(1) == 0);
    CHECK(beats == 2);
}

TEST_CASE_FIXTURE(Shell, "a control client's scale is answered once the new worker is ready, and stop once the manager ends")
{
    using boost::asio::local::stream_protocol;
    control_path = "/tmp/herd-unit-control-" + std::to_string(::getpid()) + ".sock";
    stream_protocol::socket client(io);
    boost::asio::streambuf input;
    boost::asio::steady_timer slow_boot(io);
    std::vector<std::string> answers;
    std::function<void(const std::string&, std::function<void()>)> request = [&](const std::string& line,
                                                                                 std::function<void()> then) {
        boost::asio::write(client, boost::asio::buffer(line + "\n"));
        boost::asio::async_read_until(client, input, '\n', [&, then](const boost::system::error_code& ec, std::size_t n) {
            REQUIRE_FALSE(ec);
            answers.emplace_back(boost::asio::buffers_begin(input.data()), boost::asio::buffers_begin(input.data()) + n);
            input.consume(n);
            if (then) then();
        });
    };
    hooks.after_spawn = [&](const WorkerEvent& e) {
        if (ops.spawned.size() == 1) {
            ops.beat(e.pid);
            return;
        }
        // The second worker is slow to boot: the scale must not be answered before it is ready.
        slow_boot.expires_after(100ms);
        slow_boot.async_wait([&, pid = e.pid](const boost::system::error_code&) {
            CHECK(answers.empty());
            ops.beat(pid);
        });
    };
    hooks.on_heartbeat = [&](const WorkerEvent& e) {
        if (e.pid != ops.spawned.front() || client.is_open()) return;
        client.connect(stream_protocol::endpoint(control_path));
        request(R"({"command":"scale","workers":2})", [&] { request(R"({"command":"stop"})", nullptr); });
    };
    CHECK(run(1) == 0);
    io.restart();
    while (answers.size() < 2 && io.run_one_for(1s)) {   // the stop answer, written as the manager ended
    }
    REQUIRE(answers.size() == 2);
    CHECK(answers[0] == "{\"ok\":true,\"target\":2,\"ready\":2}\n");
    CHECK(answers[1] == "{\"ok\":true,\"exit_code\":0}\n");
    CHECK(::access(control_path.c_str(), F_OK) != 0);   // the socket file is gone with the manager
}

TEST_CASE_FIXTURE(Shell, "exec mode: programs without heartbeats are ready after --ready-after, stopped with --stop-signal, not sent USR1")
{
    Options o = fast(2);
    o.heartbeat_timeout = 0ms;
    o.ready_after = 30ms;
    o.stop_signal = SIGTERM;
    ops.reopen = false;
    std::vector<std::string> outcomes;
    boost::asio::steady_timer check(io);
    hooks.after_spawn = [&](const WorkerEvent&) {
        if (ops.spawned.size() != 2) return;
        // No heartbeat is ever sent: by --ready-after both are ready; then USR1, then TTOU.
        check.expires_after(300ms);
        check.async_wait([&](const boost::system::error_code&) {
            CHECK(ready_count(manager->state()) == 2);
            ::raise(SIGUSR1);
            ::raise(SIGTTOU);
        });
    };
    hooks.after_reap = [&](const WorkerEvent& e) {
        outcomes.push_back(e.outcome);
        if (outcomes.size() == 1) ::raise(SIGQUIT);
    };
    CHECK(run(o) == 0);

    // The fakes die of the signal they are sent, as a program with TERM's default action does.
    CHECK(outcomes == std::vector<std::string>{"retired (scaled down)", "stopped (shutdown)"});
    REQUIRE(ops.signals.size() == 2);
    for (const auto& [pid, sig] : ops.signals) CHECK(sig == SIGTERM);
    CHECK(manager->state().exits == std::map<std::string, std::uint64_t>{{"retired", 1}, {"stopped", 1}});
}
