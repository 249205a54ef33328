// herd-bench's upgrade and reload under HTTP load (upgrade_bench.hpp).
#include "upgrade_bench.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace herd::testing;
using namespace std::chrono_literals;

namespace herd::bench {

namespace {

// Keep-alive HTTP load: one thread per connection, one request every `interval`

// One request: when it was due, how long it took from then, and whether it got its 200.
struct Sample {
    Clock::time_point due;
    float ms;
    bool ok;
};

class Load {
public:
    Load(int port, unsigned connections, Clock::duration interval) : port_(port), interval_(interval)
    {
        per_thread_.resize(connections);
        const auto start = Clock::now() + 20ms;
        for (unsigned i = 0; i < connections; ++i) {
            // Spread the connections over one interval, so the load is steady, not bursts.
            const auto first = start + interval * i / connections;
            threads_.emplace_back([this, i, first] { client(per_thread_[i], first); });
        }
    }
    ~Load() { stop(); }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    void stop()
    {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    /// Every sample, once stopped.
    std::vector<Sample> samples() const
    {
        std::vector<Sample> all;
        for (const auto& t : per_thread_) all.insert(all.end(), t.samples.begin(), t.samples.end());
        return all;
    }
    /// Why requests failed, with counts, once stopped.
    std::map<std::string, int> errors() const
    {
        std::map<std::string, int> all;
        for (const auto& t : per_thread_)
            for (const auto& [why, n] : t.errors) all[why] += n;
        return all;
    }

private:
    struct PerThread {
        std::vector<Sample> samples;
        std::map<std::string, int> errors;
    };

    int connect_to() const
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        const timeval timeout{2, 0};   // a response later than this is an error, not a latency
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc;
        do {
            rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            const int err = errno;
            ::close(fd);
            return -err;
        }
        return fd;
    }

    // One request on fd; "" on a 200, else why not. `keep` is false when the server closes.
    static std::string exchange(int fd, bool& keep)
    {
        static constexpr std::string_view request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        keep = false;
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
            return std::string("send: ") + std::strerror(errno);
        std::string data;
        char buf[4096];
        std::size_t header_end = std::string::npos, length = 0;
        for (;;) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno == EAGAIN ? "no response within 2 s" : std::string("recv: ") + std::strerror(errno);
            if (n == 0) return data.empty() ? "closed without a response" : "closed in the middle of a response";
            data.append(buf, static_cast<std::size_t>(n));
            if (header_end == std::string::npos) {
                header_end = data.find("\r\n\r\n");
                if (header_end == std::string::npos) continue;
                std::string head = data.substr(0, header_end);
                std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
                const auto cl = head.find("\r\ncontent-length:");
                if (cl == std::string::npos) return "response without Content-Length";
                length = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
                keep = head.find("\r\nconnection: close") == std::string::npos;
                if (head.rfind("http/1.1 200 ", 0) != 0) return "status " + head.substr(9, 3);
            }
            if (data.size() >= header_end + 4 + length) return {};
        }
    }

    void client(PerThread& out, Clock::time_point due)
    {
        out.samples.reserve(16384);
        int fd = -1;
        while (!stop_) {
            std::this_thread::sleep_until(due);
            // Latency counts from when the request was due, so a stall is not hidden by
            // requests that were never sent (coordinated omission).
            std::string why;
            bool keep = false;
            if (fd < 0) {
                fd = connect_to();
                if (fd < 0) why = std::string("connect: ") + std::strerror(-fd);
            }
            if (fd >= 0) why = exchange(fd, keep);
            const auto done = Clock::now();
            out.samples.push_back({due, static_cast<float>(ms_between(due, done)), why.empty()});
            if (!why.empty()) ++out.errors[why];
            if (fd >= 0 && (!keep || !why.empty())) {
                ::close(fd);
                fd = -1;
            }
            due += interval_;
        }
        if (fd >= 0) ::close(fd);
    }

    int port_;
    Clock::duration interval_;
    std::atomic<bool> stop_{false};
    std::vector<PerThread> per_thread_;
    std::vector<std::thread> threads_;
};

}  // namespace

UpgradeResult upgrade_under_load(unsigned workers, unsigned connections, Clock::duration interval, int rounds)
{
    UpgradeResult r;
    // USR2 execs the path the manager was started from: a copy in a private directory, replaced
    // by a rename before each upgrade the way a deploy does it.
    TempDir dir;
    const std::string path = dir / "hello-http";
    namespace fs = std::filesystem;
    auto deploy = [&] {
        fs::copy_file(hello_http(), path + ".new", fs::copy_options::overwrite_existing);
        fs::rename(path + ".new", path);
    };
    deploy();
    Process p({path, "-l", "127.0.0.1:0", "-w", std::to_string(workers), "--graceful-timeout", "5s",
               "--upgrade-timeout", "10s", "--pid-file", dir / "hello-http.pid"});
    const int port = wait_for_port(p, in(10s));
    if (port < 0 || p.wait_for_lines(lines::ready, workers, in(10s)).size() < workers) {
        r.error = "hello-http not ready on 127.0.0.1";
        return r;
    }

    const std::regex exec_line(R"(upgrade: manager (\d+) now runs )");
    const std::regex ended(R"((upgrade|reload) to generation (\d+) (complete in|failed)|upgrade abandoned|configuration is invalid)");

    Load load(port, connections, interval);
    drain_for(p, 500ms);   // connections open, workers warm

    // Each round: a quiet second, then the signal and the second after it. An upgrade may take up
    // to a second (the budget it is held to), and what it costs clients, reconnects included, lands
    // in that second. The strict window, signal to complete line, is reported beside it.
    std::vector<std::pair<Clock::time_point, Clock::time_point>> quiet;
    auto quiet_second = [&] {
        drain_for(p, 300ms);   // the clients of the last round have reconnected
        const auto q0 = Clock::now();
        drain_for(p, 1s);
        quiet.emplace_back(q0, Clock::now());
    };
    // Quiet and rollout alternate the same way for every round and kind, so the machine's drift
    // hits both sides of the comparison alike.
    auto round = [&](int sig, RolloutRun& run) -> bool {
        quiet_second();
        if (sig == SIGUSR2) deploy();
        const std::size_t mark = p.lines().size();
        const auto t0 = Clock::now();
        p.signal(sig);
        const auto end = p.wait_for_line(ended, in(15s), mark);
        if (!end || end->groups[3] != "complete in") {
            r.error = std::string(sig == SIGUSR2 ? "USR2" : "HUP") + ": " + (end ? end->line : "no outcome within 15 s");
            return false;
        }
        run.complete_ms.push_back(ms_between(t0, end->seen));
        run.windows.emplace_back(t0, end->seen);
        drain_for(p, t0 + 1s - Clock::now());
        run.seconds.emplace_back(t0, std::max(t0 + 1s, end->seen));
        if (sig == SIGUSR2) {
            const auto exec = p.matches(exec_line, mark);
            if (exec.empty() || exec.front().number(1) != p.pid()) {
                r.error = "USR2: the manager's pid changed or the new image said nothing";
                return false;
            }
            run.exec_ms.push_back(ms_between(t0, exec.front().seen));
        }
        return true;
    };
    bool ok = true;
    for (int i = 0; ok && i < rounds; ++i) ok = round(SIGUSR2, r.upgrade);
    for (int i = 0; ok && i < rounds; ++i) ok = round(SIGHUP, r.reload);
    load.stop();

    // Sort every request into the stretches it was due in
    auto inside = [](const auto& windows, Clock::time_point t) {
        return std::any_of(windows.begin(), windows.end(), [&](const auto& w) { return t >= w.first && t < w.second; });
    };
    for (const Sample& s : load.samples()) {
        bool counted = false;
        auto add = [&](Sampled& into) {
            into.ms.push_back(s.ms);
            into.errors += s.ok ? 0 : 1;
            counted = true;
        };
        if (inside(quiet, s.due)) add(r.quiet);
        if (inside(r.upgrade.seconds, s.due)) add(r.upgrade_second);
        if (inside(r.upgrade.windows, s.due)) add(r.upgrade_strict);
        if (inside(r.reload.seconds, s.due)) add(r.reload_second);
        if (inside(r.reload.windows, s.due)) add(r.reload_strict);
        if (!counted && !s.ok) ++r.other_errors;
        for (const auto& [kind, run] : {std::pair{"USR2", &r.upgrade}, std::pair{"HUP", &r.reload}})
            for (const auto& w : run->windows)
                if (s.due >= w.first - 300ms && s.due < w.first + 1s)
                    r.timeline.push_back({kind, ms_between(w.first, s.due), s.ms, s.ok});
    }
    r.why = load.errors();
    return r;
}

}  // namespace herd::bench
