#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace herd::testing {

namespace {

// Process groups to kill if the test process is stopped (hard deadline, meson's SIGTERM, a
// crash). Signal handlers may only touch these atomics and call async-signal-safe functions.
constexpr std::size_t max_groups = 512;
std::array<std::atomic<pid_t>, max_groups> live_groups{};

void register_group(pid_t pgid)
{
    for (auto& slot : live_groups) {
        pid_t expected = 0;
        if (slot.compare_exchange_strong(expected, pgid)) return;
    }
}

void unregister_group(pid_t pgid)
{
    for (auto& slot : live_groups) {
        pid_t expected = pgid;
        if (slot.compare_exchange_strong(expected, 0)) return;
    }
}

void kill_live_groups() noexcept
{
    for (auto& slot : live_groups) {
        const pid_t pgid = slot.load();
        if (pgid > 0) ::kill(-pgid, SIGKILL);
    }
}

void write_stderr(const char* text) noexcept
{
    const auto n = ::write(STDERR_FILENO, text, std::strlen(text));
    (void)n;
}

extern "C" void on_deadline(int) noexcept
{
    kill_live_groups();
    write_stderr("\nintegration test: hard deadline passed; killed every child process group\n");
    ::_exit(124);
}

extern "C" void on_fatal(int sig) noexcept
{
    // Clean up, then die of the same signal, so meson and doctest see what happened.
    kill_live_groups();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// Installed before main(): doctest saves these as the previous handlers and re-raises into them.
struct InstallHandlers {
    InstallHandlers()
    {
        struct sigaction sa {};
        sa.sa_handler = on_deadline;
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(SIGALRM, &sa, nullptr);
        sa.sa_handler = on_fatal;
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE})
            ::sigaction(sig, &sa, nullptr);
    }
} const install_handlers;

std::string errno_text(int err) { return std::strerror(err); }

int millis_until(Deadline deadline)
{
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
}

std::string regex_escape(const std::string& text)
{
    static const std::string special = R"(\^$.|?*+()[]{})";
    std::string out;
    for (char c : text) {
        if (special.find(c) != std::string::npos) out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

double ms_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string binary(const char* var, const std::string& fallback)
{
    if (const char* value = std::getenv(var); value && *value) return value;
    if (!fallback.empty()) return fallback;
    throw std::runtime_error(std::string("environment variable ") + var + " is not set (run through meson test)");
}

std::string ExitStatus::describe() const
{
    if (signal != 0) return "killed by signal " + std::to_string(signal);
    return "exit code " + std::to_string(code);
}

// Process

Process::Process(std::vector<std::string> argv, std::vector<std::string> env) : argv_(std::move(argv))
{
    if (argv_.empty()) throw std::invalid_argument("Process: empty command");

    // Everything the child needs is prepared before fork (the test process may have threads).
    std::map<std::string, std::string> merged;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        merged[entry.substr(0, entry.find('='))] = entry;
    }
    for (const auto& entry : env) merged[entry.substr(0, entry.find('='))] = entry;
    std::vector<std::string> env_strings;
    for (auto& [key, entry] : merged) env_strings.push_back(entry);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<char*> args;
    for (auto& s : argv_) args.push_back(s.data());
    args.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        if (devnull >= 0) ::close(devnull);
        throw std::system_error(err, std::generic_category(), "fork");
    }
    if (pid == 0) {
        // Child: own process group, dies with the test process, default signals, then exec.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
        if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        ::execve(args[0], args.data(), envp.data());
        const char* msg = "harness: execve failed: ";
        (void)!::write(STDERR_FILENO, msg, std::strlen(msg));
        (void)!::write(STDERR_FILENO, args[0], std::strlen(args[0]));
        (void)!::write(STDERR_FILENO, "\n", 1);
        ::_exit(127);
    }

    // Parent: set the group here too, so it exists before we might signal it.
    ::setpgid(pid, pid);
    pid_ = pid;
    register_group(pid);
    ::close(fds[1]);
    if (devnull >= 0) ::close(devnull);
    out_ = fds[0];
    ::fcntl(out_, F_SETFL, ::fcntl(out_, F_GETFL) | O_NONBLOCK);
}

Process::~Process()
{
    kill_group();
    if (out_ >= 0) ::close(out_);
}

std::string Process::command() const
{
    std::string text;
    for (const auto& a : argv_) text += (text.empty() ? "" : " ") + a;
    return text;
}

std::size_t Process::pump(milliseconds wait)
{
    const std::size_t before = lines_.size();
    if (out_ < 0 || eof_) {
        if (wait.count() > 0) std::this_thread::sleep_for(std::min(wait, milliseconds(2)));
        return 0;
    }
    pollfd pfd{out_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(wait.count()));
    if (ready <= 0) return 0;

    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n > 0) {
            partial_.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {
            eof_ = true;
            break;
        }
        if (errno == EINTR) continue;
        break;   // EAGAIN: all read
    }
    split_lines(eof_);
    return lines_.size() - before;
}

void Process::split_lines(bool eof)
{
    const auto now = Clock::now();
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines_.push_back(partial_.substr(start, nl - start));
        times_.push_back(now);
    }
    partial_.erase(0, start);
    if (eof && !partial_.empty()) {
        lines_.push_back(std::move(partial_));
        times_.push_back(now);
        partial_.clear();
    }
}

const std::vector<std::string>& Process::lines()
{
    pump();
    return lines_;
}

std::string Process::output()
{
    std::string text;
    for (const auto& line : lines()) text += line + "\n";
    return text;
}

std::optional<Match> Process::wait_for_line(const std::regex& re, Deadline deadline, std::size_t from)
{
    std::size_t next = from;
    for (;;) {
        for (; next < lines_.size(); ++next) {
            std::smatch m;
            if (std::regex_search(lines_[next], m, re)) {
                Match match{next, lines_[next], {}, times_[next]};
                for (const auto& g : m) match.groups.push_back(g.str());
                return match;
            }
        }
        // Nothing more can come once every writer closed the pipe.
        if (eof_) return std::nullopt;
        const int left = millis_until(deadline);
        if (left == 0) {
            if (pump() == 0) return std::nullopt;
            continue;
        }
        pump(milliseconds(std::min(left, 50)));
    }
}

std::vector<Match> Process::wait_for_lines(const std::regex& re, std::size_t count, Deadline deadline,
                                           std::size_t from)
{
    std::vector<Match> found;
    std::size_t next = from;
    while (found.size() < count) {
        auto m = wait_for_line(re, deadline, next);
        if (!m) break;
        next = m->index + 1;
        found.push_back(std::move(*m));
    }
    return found;
}

std::vector<Match> Process::matches(const std::regex& re, std::size_t from)
{
    pump();
    std::vector<Match> found;
    for (std::size_t i = from; i < lines_.size(); ++i) {
        std::smatch m;
        if (std::regex_search(lines_[i], m, re)) {
            Match match{i, lines_[i], {}, times_[i]};
            for (const auto& g : m) match.groups.push_back(g.str());
            found.push_back(std::move(match));
        }
    }
    return found;
}

bool Process::signal(int sig) const
{
    if (status_ || pid_ <= 0) return false;
    return ::kill(pid_, sig) == 0;
}

void Process::reap(bool block)
{
    if (status_ || pid_ <= 0) return;
    int st = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != pid_) return;
    ExitStatus s;
    if (WIFEXITED(st)) {
        s.code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        s.signal = WTERMSIG(st);
    }
    status_ = s;
}

std::optional<ExitStatus> Process::wait_exit(Deadline deadline)
{
    for (;;) {
        reap(false);
        if (status_) {
            pump();
            return status_;
        }
        const int left = millis_until(deadline);
        if (left == 0) return std::nullopt;
        pump(milliseconds(std::min(left, 5)));
    }
}

void Process::kill_group()
{
    if (pid_ <= 0) return;
    if (!group_killed_) {
        ::kill(-pid_, SIGKILL);
        if (!status_) ::kill(pid_, SIGKILL);
        group_killed_ = true;
        unregister_group(pid_);
    }
    reap(true);
    pump();
}

// run

std::string RunResult::output() const
{
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    return text;
}

RunResult run(std::vector<std::string> argv, milliseconds timeout, std::vector<std::string> env)
{
    Process p(std::move(argv), std::move(env));
    RunResult result;
    result.status = p.wait_exit(in(timeout));
    p.kill_group();
    p.pump(milliseconds(20));
    result.lines = p.lines();
    return result;
}

// HTTP

namespace {

struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = 0;
    std::string host_header;
};

std::optional<Endpoint> tcp_endpoint(const std::string& host, int port)
{
    Endpoint ep;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        ep.len = sizeof(sockaddr_in);
        ep.family = AF_INET;
        ep.host_header = host + ":" + std::to_string(port);
        return ep;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        ep.len = sizeof(sockaddr_in6);
        ep.family = AF_INET6;
        ep.host_header = "[" + host + "]:" + std::to_string(port);
        return ep;
    }
    return std::nullopt;
}

Endpoint unix_endpoint(const std::string& path)
{
    Endpoint ep;
    auto* un = reinterpret_cast<sockaddr_un*>(&ep.addr);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, path.c_str(), sizeof(un->sun_path) - 1);
    ep.len = sizeof(sockaddr_un);
    ep.family = AF_UNIX;
    ep.host_header = "localhost";
    return ep;
}

// A connected non-blocking socket, or -1 with err set.
int connect_before(const Endpoint& ep, Deadline deadline, int& err)
{
    const int fd = ::socket(ep.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) == 0) return fd;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        err = errno;
        ::close(fd);
        return -1;
    }
    pollfd pfd{fd, POLLOUT, 0};
    const int r = ::poll(&pfd, 1, millis_until(deadline));
    if (r <= 0) {
        err = ETIMEDOUT;
        ::close(fd);
        return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
        err = so_error;
        ::close(fd);
        return -1;
    }
    return fd;
}

// True once `data` holds a whole response (headers plus Content-Length bytes).
bool response_complete(const std::string& data)
{
    const auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string headers = data.substr(0, end);
    std::transform(headers.begin(), headers.end(), headers.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto cl = headers.find("content-length:");
    if (cl == std::string::npos) return false;
    const std::size_t length = std::strtoul(headers.c_str() + cl + 15, nullptr, 10);
    return data.size() >= end + 4 + length;
}

HttpResult request(const Endpoint& ep, const std::string& path, milliseconds timeout,
                   const std::function<void()>& on_sent = {})
{
    const auto start = Clock::now();
    const Deadline deadline = start + timeout;
    HttpResult result;
    auto fail = [&](const std::string& what, int err) {
        result.error = what + (err ? ": " + errno_text(err) : "");
        result.error_code = err;
        result.elapsed_ms = ms_since(start);
        return result;
    };

    int err = 0;
    const int fd = connect_before(ep, deadline, err);
    if (fd < 0) return fail("connect", err);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};

    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + ep.host_header +
                            "\r\nConnection: close\r\n\r\n";
    for (std::size_t sent = 0; sent < req.size();) {
        const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return fail("send", errno);
        pollfd pfd{fd, POLLOUT, 0};
        if (::poll(&pfd, 1, millis_until(deadline)) <= 0) return fail("timeout while sending", 0);
    }

    if (on_sent) on_sent();

    std::string data;
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            data.append(buf, static_cast<std::size_t>(n));
            if (response_complete(data)) break;
            continue;
        }
        if (n == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return fail("recv", errno);
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, millis_until(deadline)) <= 0)
            return fail("timeout after " + std::to_string(timeout.count()) + " ms waiting for the response", 0);
    }

    // Status line and body.
    if (data.rfind("HTTP/", 0) != 0) return fail(data.empty() ? "closed without a response" : "malformed response", 0);
    result.status = std::atoi(data.c_str() + data.find(' ') + 1);
    const auto end = data.find("\r\n\r\n");
    result.body = end == std::string::npos ? std::string() : data.substr(end + 4);
    result.elapsed_ms = ms_since(start);
    return result;
}

}  // namespace

HttpResult http_get(const std::string& host, int port, const std::string& path, milliseconds timeout,
                    const std::function<void()>& on_sent)
{
    const auto ep = tcp_endpoint(host, port);
    if (!ep) {
        HttpResult r;
        r.error = "not a numeric address: " + host;
        return r;
    }
    return request(*ep, path, timeout, on_sent);
}

HttpResult http_get_unix(const std::string& socket_path, const std::string& path, milliseconds timeout)
{
    return request(unix_endpoint(socket_path), path, timeout);
}

int try_connect(const std::string& host, int port, milliseconds timeout)
{
    const auto ep = tcp_endpoint(host, port);
    if (!ep) return EINVAL;
    int err = 0;
    const int fd = connect_before(*ep, in(timeout), err);
    if (fd < 0) return err;
    ::close(fd);
    return 0;
}

// Log line parsing

int parse_port(const std::string& line)
{
    static const std::regex re(R"(listening on (?:\[[^\]]*\]|[^\s\[\]]+):(\d+))");
    std::smatch m;
    if (!std::regex_search(line, m, re)) return -1;
    return std::stoi(m[1].str());
}

int wait_for_port(Process& p, Deadline deadline, const std::string& host)
{
    const std::regex re("listening on " + regex_escape(host) + R"(:(\d+))");
    const auto m = p.wait_for_line(re, deadline);
    return m ? parse_port(m->line) : -1;
}

double parse_duration_ms(const std::string& text)
{
    static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(us|µs|ms|s|m|h)\s*$)");
    std::smatch m;
    if (!std::regex_match(text, m, re)) return -1;
    const double value = std::stod(m[1].str());
    const std::string unit = m[2].str();
    if (unit == "us" || unit == "µs") return value / 1000;
    if (unit == "ms") return value;
    if (unit == "s") return value * 1000;
    if (unit == "m") return value * 60'000;
    return value * 3'600'000;
}

// Processes and time

bool all_gone(const std::vector<int>& pids)
{
    return std::none_of(pids.begin(), pids.end(), [](int pid) { return pid_alive(pid); });
}

double cpu_seconds(pid_t pid)
{
    std::ifstream schedstat("/proc/" + std::to_string(pid) + "/schedstat");
    unsigned long long ns = 0;
    return schedstat >> ns ? double(ns) / 1e9 : -1;
}

bool pid_alive(pid_t pid)
{
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    // A zombie still answers kill(pid, 0); it is not running.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return false;
    const auto paren = text.rfind(')');
    if (paren == std::string::npos || paren + 2 >= text.size()) return true;
    const char state = text[paren + 2];
    return state != 'Z' && state != 'X';
}

bool poll_until(const std::function<bool()>& pred, Deadline deadline, milliseconds step)
{
    for (;;) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::min<Clock::duration>(step, deadline - Clock::now()));
    }
}

// Files

TempDir::TempDir()
{
    char tmpl[] = "/tmp/herd-it-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = tmpl;
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> read_lines(const std::string& path)
{
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

void write_file(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

bool file_has_line(const std::string& path, const std::regex& re)
{
    for (const auto& line : read_lines(path))
        if (std::regex_search(line, re)) return true;
    return false;
}

// Pool helpers

std::regex worker_line(int pid, const std::string& rest)
{
    return std::regex("worker " + std::to_string(pid) + " " + rest);
}

std::set<int> ready_pids(Process& p)
{
    std::set<int> pids;
    for (const auto& m : p.matches(lines::ready)) pids.insert(m.number(1));
    for (const auto& m : p.matches(lines::reaped)) pids.erase(m.number(1));
    return pids;
}

std::vector<int> spawned_pids(Process& p)
{
    std::vector<int> pids;
    for (const auto& m : p.matches(lines::spawned)) pids.push_back(m.number(1));
    return pids;
}

std::map<int, int> worker_generations(Process& p)
{
    std::map<int, int> generations;
    for (const auto& m : p.matches(lines::spawned)) generations[m.number(1)] = m.number(3);
    return generations;
}

std::set<int> generation_pids(Process& p, int generation)
{
    std::set<int> pids;
    for (const auto& [pid, g] : worker_generations(p))
        if (g == generation) pids.insert(pid);
    return pids;
}

std::map<int, std::string> reaped_pids(Process& p, std::size_t from)
{
    std::map<int, std::string> reaped;
    for (const auto& m : p.matches(lines::reaped, from)) reaped[m.number(1)] = m.groups[2];
    return reaped;
}

std::size_t min_serving(Process& p, std::size_t from)
{
    static const std::regex leaving(R"(worker (\d+) (?:retiring:|has no heartbeat|not ready .* killing|still running .* killing|reaped:))");
    std::set<int> serving;
    std::size_t fewest = std::numeric_limits<std::size_t>::max();
    const auto& all = p.lines();
    for (std::size_t i = 0; i < all.size(); ++i) {
        std::smatch m;
        if (std::regex_search(all[i], m, lines::ready)) serving.insert(std::stoi(m[1].str()));
        else if (std::regex_search(all[i], m, leaving)) serving.erase(std::stoi(m[1].str()));
        if (i >= from) fewest = std::min(fewest, serving.size());
    }
    return fewest == std::numeric_limits<std::size_t>::max() ? serving.size() : fewest;
}

std::vector<std::string> fast_options(const std::vector<std::string>& extra)
{
    static const std::vector<std::pair<std::string, std::string>> defaults = {
        {"--heartbeat-interval", "100ms"}, {"--heartbeat-timeout", "500ms"}, {"--boot-timeout", "5s"},
        {"--graceful-timeout", "2s"},      {"--kill-timeout", "2s"},
    };
    std::vector<std::string> args;
    for (const auto& [name, value] : defaults) {
        if (std::find(extra.begin(), extra.end(), name) != extra.end()) continue;
        args.push_back(name);
        args.push_back(value);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

long first_number(const std::string& text)
{
    const auto start = text.find_first_of("0123456789");
    if (start == std::string::npos) return -1;
    return std::strtol(text.c_str() + start, nullptr, 10);
}

// Deploying

namespace {

// Write `dest`.new with `write`, make it executable, rename it over `dest`.
void replace_file(const std::string& dest, const std::function<void(const std::string&)>& write)
{
    const std::string staged = dest + ".new";
    write(staged);
    if (::chmod(staged.c_str(), 0755) != 0) throw std::system_error(errno, std::generic_category(), "chmod " + staged);
    if (std::rename(staged.c_str(), dest.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "rename " + staged + " to " + dest);
}

}  // namespace

void deploy(const std::string& from, const std::string& dest)
{
    replace_file(dest, [&](const std::string& staged) {
        std::filesystem::copy_file(from, staged, std::filesystem::copy_options::overwrite_existing);
    });
}

void deploy_script(const std::string& text, const std::string& dest)
{
    replace_file(dest, [&](const std::string& staged) { write_file(staged, text); });
}

Deployment::Deployment(const std::string& binary) : app_(dir_ / "app"), pid_file_(dir_ / "app.pid")
{
    deploy(binary, app_);
}

Process& Deployment::start(const std::vector<std::string>& args, std::vector<std::string> env)
{
    std::vector<std::string> argv = concat({app_}, args);
    // Exec mode (herd): the options go before the `--` that starts the command.
    argv.insert(std::find(argv.begin(), argv.end(), "--"), {"--pid-file", pid_file_});
    process_ = std::make_unique<Process>(std::move(argv), std::move(env));
    return *process_;
}

std::string Deployment::wait_ready(unsigned workers, Deadline deadline)
{
    if (!process_) return "not started";
    port_ = wait_for_port(*process_, deadline);
    if (port_ <= 0) return "no listening line from " + process_->command() + ":\n" + process_->output();
    if (!process_->wait_for_line(std::regex("all " + std::to_string(workers) + " workers ready"), deadline))
        return "the pool never got ready: " + process_->command() + ":\n" + process_->output();
    return {};
}

// Watching a manager

namespace {

// Open descriptors of pid that `keep` accepts (given the link's target), -1 if unreadable.
template <class Keep>
int count_fds(pid_t pid, Keep keep)
{
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
    if (ec) return -1;
    int n = 0;
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
        if (ec) return -1;
        std::error_code link_ec;
        if (keep(std::filesystem::read_symlink(it->path(), link_ec).string())) ++n;
    }
    return n;
}

}  // namespace

LoopbackListener::LoopbackListener(bool inheritable)
{
    fd = ::socket(AF_INET, SOCK_STREAM | (inheritable ? 0 : SOCK_CLOEXEC), 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::system_error(errno, std::generic_category(), "cannot listen on 127.0.0.1:0");
    port = ntohs(a.sin_port);
}

LoopbackListener::~LoopbackListener()
{
    if (fd >= 0) ::close(fd);
}

std::vector<Child> children_of(pid_t parent)
{
    std::vector<Child> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        Child child;
        int ppid = 0;
        rest >> child.state >> ppid;
        if (ppid != parent) continue;
        child.pid = std::stoi(name);
        std::ifstream cmdline(entry.path() / "cmdline");
        std::getline(cmdline, child.title, '\0');
        found.push_back(child);
    }
    return found;
}

int open_fds(pid_t pid)
{
    return count_fds(pid, [](const std::string&) { return true; });
}

int open_sockets(pid_t pid)
{
    return count_fds(pid, [](const std::string& target) { return target.rfind("socket:", 0) == 0; });
}

long vm_rss_kb(pid_t pid)
{
    for (const auto& line : read_lines("/proc/" + std::to_string(pid) + "/status"))
        if (line.rfind("VmRSS:", 0) == 0) return first_number(line);
    return -1;
}

PidFileWatch::PidFileWatch(std::string path, pid_t expected)
    : path_(std::move(path)), expected_(std::to_string(expected))
{
    thread_ = std::thread([this] {
        while (!stop_.load()) {
            std::string text;
            if (const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
                char buf[64];
                ssize_t n;
                while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, std::size_t(n));
                ::close(fd);
            } else {
                text = "(cannot open: " + errno_text(errno) + ")";
            }
            while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
            ++samples_;
            if (text != expected_) {
                if (mismatches_++ == 0) {
                    std::lock_guard lock(mutex_);
                    first_mismatch_ = "'" + text + "'";
                }
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });
}

PidFileWatch::~PidFileWatch()
{
    stop();
}

void PidFileWatch::stop()
{
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

std::string PidFileWatch::first_mismatch() const
{
    std::lock_guard lock(mutex_);
    return first_mismatch_;
}

ControlClient::ControlClient(const std::string& path, milliseconds timeout)
{
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) error_ = errno;
    const timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

ControlClient::~ControlClient()
{
    if (fd_ >= 0) ::close(fd_);
}

std::string ControlClient::ask(const std::string& bytes)
{
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) return "send failed";
    return read_line();
}

std::string ControlClient::read_line()
{
    for (;;) {
        const auto eol = buffer_.find('\n');
        if (eol != std::string::npos) {
            std::string line = buffer_.substr(0, eol);
            buffer_.erase(0, eol + 1);
            return line;
        }
        char chunk[4096];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return buffer_.empty() ? "EOF" : std::exchange(buffer_, {});
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

NotifySocket::NotifySocket(std::string path) : path_(std::move(path))
{
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) throw std::invalid_argument("socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd_);
        throw std::system_error(err, std::generic_category(), "bind " + path_);
    }
}

NotifySocket::~NotifySocket()
{
    ::close(fd_);
    ::unlink(path_.c_str());
}

std::optional<std::string> NotifySocket::receive(Deadline deadline)
{
    for (;;) {
        pollfd pfd{fd_, POLLIN, 0};
        const int r = ::poll(&pfd, 1, millis_until(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        return std::string(buf, std::size_t(n));
    }
}

std::optional<std::string> NotifySocket::wait_for(const std::string& needle, Deadline deadline,
                                                  std::vector<std::string>& seen)
{
    while (auto message = receive(deadline)) {
        seen.push_back(*message);
        if (message->find(needle) != std::string::npos) return message;
    }
    return std::nullopt;
}

// Load

std::string LoadStats::describe() const
{
    std::ostringstream out;
    out << requests() << " requests: " << ok << " ok, " << non_2xx << " non-2xx, " << connect_errors
        << " connect errors, " << write_errors << " write errors, " << read_errors << " read errors, " << timeouts
        << " timeouts; " << connections << " connections, " << closed_by_server << " closed by the server; latency max "
        << max_latency_ms << " ms, mean " << (requests() ? total_latency_ms / double(requests()) : 0.0) << " ms; "
        << pids.size() << " worker pids";
    for (const auto& e : first_errors) out << "\n  " << e;
    return out.str();
}

std::set<int> LoadStats::pids_sent_since(Clock::time_point t) const
{
    std::set<int> out;
    for (const auto& [pid, seen] : pids)
        if (seen.last_sent >= t) out.insert(pid);
    return out;
}

struct LoadClient::Connection {
    mutable std::mutex mutex;
    LoadStats stats;
};

LoadClient::LoadClient(LoadOptions options) : options_(std::move(options)), start_(Clock::now())
{
    for (unsigned i = 0; i < options_.connections; ++i) connections_.push_back(std::make_unique<Connection>());
    for (unsigned i = 0; i < options_.connections; ++i) threads_.emplace_back([this, i] { run(i); });
}

LoadClient::~LoadClient()
{
    stop();
}

void LoadClient::stop()
{
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

LoadStats LoadClient::stats() const
{
    LoadStats total;
    for (const auto& c : connections_) {
        std::lock_guard lock(c->mutex);
        const LoadStats& s = c->stats;
        total.ok += s.ok;
        total.non_2xx += s.non_2xx;
        total.connect_errors += s.connect_errors;
        total.write_errors += s.write_errors;
        total.read_errors += s.read_errors;
        total.timeouts += s.timeouts;
        total.connections += s.connections;
        total.closed_by_server += s.closed_by_server;
        total.max_latency_ms = std::max(total.max_latency_ms, s.max_latency_ms);
        total.total_latency_ms += s.total_latency_ms;
        for (const auto& e : s.first_errors)
            if (total.first_errors.size() < 10) total.first_errors.push_back(e);
        for (const auto& [pid, seen] : s.pids) {
            auto& t = total.pids[pid];
            t.first_sent = t.count ? std::min(t.first_sent, seen.first_sent) : seen.first_sent;
            t.last_sent = t.count ? std::max(t.last_sent, seen.last_sent) : seen.last_sent;
            t.count += seen.count;
        }
    }
    return total;
}

bool LoadClient::wait_answered(std::uint64_t more, Deadline deadline) const
{
    const std::uint64_t target = answered() + more;
    return poll_until([&] { return answered() >= target; }, deadline, milliseconds(2));
}

void LoadClient::run(unsigned index)
{
    Connection& me = *connections_[index];
    const auto ep = tcp_endpoint(options_.host, options_.port);
    const Deadline end = start_ + options_.duration;
    const std::string req = "GET " + options_.path + " HTTP/1.1\r\nHost: " + (ep ? ep->host_header : "") + "\r\n\r\n";
    int fd = -1;
    unsigned served_on_connection = 0;   // responses on the current connection
    std::string data;
    char buf[4096];

    auto close_connection = [&] {
        if (fd >= 0) ::close(fd);
        fd = -1;
    };
    bool first = true;
    while (ep && !stop_.load() && Clock::now() < end && sent_++ < options_.max_requests) {
        if (!first && options_.pause.count() > 0) std::this_thread::sleep_for(options_.pause);
        first = false;
        const auto sent_at = Clock::now();
        const Deadline deadline = sent_at + options_.request_timeout;
        // What went wrong, counted in `counter`, with errno `err`
        auto fail = [&](std::uint64_t LoadStats::*counter, const std::string& what, int err) {
            const double latency = ms_since(sent_at);
            std::lock_guard lock(me.mutex);
            ++(me.stats.*counter);
            me.stats.total_latency_ms += latency;
            me.stats.max_latency_ms = std::max(me.stats.max_latency_ms, latency);
            if (me.stats.first_errors.size() < 3) {
                std::ostringstream text;
                text << "connection " << index << ", " << std::lround(ms_since(start_)) << " ms into the load: " << what
                     << (err ? ": " + errno_text(err) : "") << " (" << (fd < 0 ? "new connection" : "request "
                     + std::to_string(served_on_connection + 1) + " on its connection") << ", after " << latency << " ms)";
                me.stats.first_errors.push_back(text.str());
            }
        };

        // Connect if needed
        if (fd < 0) {
            int err = 0;
            fd = connect_before(*ep, deadline, err);
            if (fd < 0) {
                fail(&LoadStats::connect_errors, "connect", err);
                continue;
            }
            std::lock_guard lock(me.mutex);
            ++me.stats.connections;
            served_on_connection = 0;
            if (ep->family != AF_UNIX) {
                int one = 1;
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
        }

        // Send
        bool sent = true;
        for (std::size_t off = 0; off < req.size();) {
            const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += std::size_t(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                pollfd pfd{fd, POLLOUT, 0};
                if (::poll(&pfd, 1, millis_until(deadline)) > 0) continue;
                fail(&LoadStats::timeouts, "timeout while sending", 0);
            } else {
                fail(&LoadStats::write_errors, "send", errno);
            }
            sent = false;
            break;
        }
        if (!sent) {
            close_connection();
            continue;
        }

        // Receive one whole response
        data.clear();
        bool complete = false;
        while (!complete) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                data.append(buf, std::size_t(n));
                complete = response_complete(data);
                continue;
            }
            if (n == 0) {
                fail(&LoadStats::read_errors, data.empty() ? "closed without a response" : "closed within a response", 0);
                break;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN) {
                fail(&LoadStats::read_errors, "recv", errno);
                break;
            }
            pollfd pfd{fd, POLLIN, 0};
            if (::poll(&pfd, 1, millis_until(deadline)) <= 0) {
                fail(&LoadStats::timeouts, "no whole response within " + std::to_string(options_.request_timeout.count()) + " ms", 0);
                break;
            }
        }
        if (!complete) {
            close_connection();
            continue;
        }

        // Count it
        const double latency = ms_since(sent_at);
        const int status = data.rfind("HTTP/", 0) == 0 ? std::atoi(data.c_str() + data.find(' ') + 1) : 0;
        const auto header_end = data.find("\r\n\r\n");
        std::string headers = data.substr(0, header_end);
        std::transform(headers.begin(), headers.end(), headers.begin(), [](unsigned char c) { return std::tolower(c); });
        const bool close_after = headers.find("\r\nconnection: close") != std::string::npos;
        const long pid = first_number(data.substr(header_end + 4));
        ++served_on_connection;
        if (status >= 200 && status < 300) ++answered_;
        {
            std::lock_guard lock(me.mutex);
            if (status >= 200 && status < 300) {
                ++me.stats.ok;
            } else {
                ++me.stats.non_2xx;
                if (me.stats.first_errors.size() < 3)
                    me.stats.first_errors.push_back("connection " + std::to_string(index) + ": status " + std::to_string(status));
            }
            me.stats.total_latency_ms += latency;
            me.stats.max_latency_ms = std::max(me.stats.max_latency_ms, latency);
            if (status == 200 && pid > 0) {
                auto& seen = me.stats.pids[int(pid)];
                if (seen.count++ == 0) seen.first_sent = sent_at;
                seen.last_sent = sent_at;
            }
            if (close_after) ++me.stats.closed_by_server;
        }
        if (close_after) close_connection();
    }
    close_connection();
}

WrkResult parse_wrk(const std::vector<std::string>& lines)
{
    static const std::regex requests_re(R"(^\s*(\d+) requests in )");
    static const std::regex socket_re(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))");
    static const std::regex non_2xx_re(R"(Non-2xx or 3xx responses: (\d+))");
    WrkResult r;
    for (const auto& line : lines) {
        std::smatch m;
        if (std::regex_search(line, m, requests_re)) {
            r.parsed = true;
            r.requests = std::stoull(m[1].str());
        } else if (std::regex_search(line, m, socket_re)) {
            r.connect_errors = std::stoull(m[1].str());
            r.read_errors = std::stoull(m[2].str());
            r.write_errors = std::stoull(m[3].str());
            r.timeouts = std::stoull(m[4].str());
        } else if (std::regex_search(line, m, non_2xx_re)) {
            r.non_2xx = std::stoull(m[1].str());
        }
    }
    return r;
}

// Hard deadline

namespace {
std::atomic<std::size_t> skip_count{0};
}  // namespace

void skip(const std::string& reason)
{
    std::printf("SKIPPED: %s\n", reason.c_str());
    std::fflush(stdout);
    ++skip_count;
}

std::size_t skips() { return skip_count.load(); }

HardDeadline::HardDeadline(std::chrono::seconds limit) : at_(in(limit))
{
    ::alarm(static_cast<unsigned>(limit.count()));
}

HardDeadline::~HardDeadline()
{
    ::alarm(0);
}

}  // namespace herd::testing

namespace herd::testing {

InFlight::InFlight(int port, const std::string& path, int count, milliseconds timeout)
    : results_(static_cast<std::size_t>(count))
{
    for (int i = 0; i < count; ++i)
        threads_.emplace_back([this, port, path, timeout, i] {
            results_[static_cast<std::size_t>(i)] = http_get("127.0.0.1", port, path, timeout, [this] { ++sent_; });
        });
}

InFlight::~InFlight()
{
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

bool InFlight::all_sent(Deadline deadline)
{
    return poll_until([this] { return sent_.load() == static_cast<int>(threads_.size()); }, deadline);
}

const std::vector<HttpResult>& InFlight::results()
{
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    return results_;
}

}  // namespace herd::testing
