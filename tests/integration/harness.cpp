#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

// Hard deadline

HardDeadline::HardDeadline(std::chrono::seconds limit) : at_(in(limit))
{
    ::alarm(static_cast<unsigned>(limit.count()));
}

HardDeadline::~HardDeadline()
{
    ::alarm(0);
}

}  // namespace herd::testing
