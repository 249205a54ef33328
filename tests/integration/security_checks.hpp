// What a process holds and is, as /proc and kcmp(2) show it: helpers of the security tests.
#pragma once

#include "harness.hpp"

#include <doctest/doctest.h>

#include <linux/kcmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace herd::testing {

inline std::string read_text(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The descriptor numbers pid has open.
inline std::set<int> fds_of(pid_t pid)
{
    std::set<int> fds;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
        fds.insert(std::stoi(e.path().filename().string()));
    return fds;
}

// What descriptor fd of pid is: "socket:[123]", "pipe:[456]", "anon_inode:[eventpoll]".
inline std::string fd_target(pid_t pid, int fd)
{
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec).string();
}

// A field of /proc/PID/status ("Groups", "SigBlk", "Umask"): the rest of its line, trimmed.
inline std::string status_field(pid_t pid, const std::string& field)
{
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) {
            std::string value = line.substr(field.size() + 1);
            value.erase(0, value.find_first_not_of(" \t"));
            value.erase(value.find_last_not_of(" \t") + 1);
            return value;
        }
    return "(no " + field + ")";
}

// pid's environment as it was exec'd, KEY=VALUE each.
inline std::map<std::string, std::string> environment_of(pid_t pid)
{
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/environ"));
    std::map<std::string, std::string> env;
    std::string var;
    while (std::getline(in, var, '\0'))
        if (const auto eq = var.find('='); eq != std::string::npos) env[var.substr(0, eq)] = var.substr(eq + 1);
    return env;
}

// Do descriptor a of pid_a and descriptor b of pid_b refer to one open file (kcmp(2))? -1 when
// the kernel cannot say.
inline int same_file(pid_t pid_a, int a, pid_t pid_b, int b)
{
    const long r = ::syscall(SYS_kcmp, pid_a, pid_b, KCMP_FILE, a, b);
    return r < 0 ? -1 : r == 0;
}

// The inode of the TCP socket listening on 127.0.0.1:port, as "socket:[INODE]" (/proc/net/tcp).
inline std::string tcp_listener(int port)
{
    char local[32];
    std::snprintf(local, sizeof local, "0100007F:%04X", port);
    for (const auto& line : read_lines("/proc/net/tcp")) {
        std::istringstream fields(line);
        std::string slot, address, remote, state, queues, timer, retransmits, uid, timeout, inode;
        fields >> slot >> address >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
        if (address == local && state == "0A") return "socket:[" + inode + "]";
    }
    return "(no listener on port " + std::to_string(port) + ")";
}

inline std::string first(const std::vector<std::string>& lines) { return lines.empty() ? "" : lines.front(); }

// Kills a process by pid when the test ends (one that left the harness's process group).
struct KillAtEnd {
    pid_t pid = -1;
    ~KillAtEnd()
    {
        if (pid > 1) ::kill(pid, SIGKILL);
    }
};

// Each forked child of the manager (workers, standby: their titles start with "hello-http:")
// may share with the manager only its standard streams and its own pool's listeners, and with
// another child nothing else either. Returns one line per descriptor that breaks this.
inline std::vector<std::string> shared_beyond_allowed(pid_t manager, const std::string& web_listener)
{
    std::vector<std::string> problems;
    std::vector<Child> children;
    // A child just forked is a copy of the manager ("hello-http: manager") until its set-up has
    // closed what is not its own: only set-up children are judged.
    for (const Child& c : children_of(manager))
        if (c.title.find("hello-http:") != std::string::npos && c.title.find(": manager") == std::string::npos)
            children.push_back(c);
    REQUIRE(!children.empty());
    const std::set<int> manager_fds = fds_of(manager);
    const std::set<int> ours = fds_of(::getpid());   // what a test run by hand inherited, the manager too
    const auto allowed = [&](pid_t pid, int fd, const std::string& title) {
        for (int std_fd : {0, 1, 2})
            if (manager_fds.count(std_fd) && same_file(pid, fd, manager, std_fd) == 1) return true;
        for (int our_fd : ours)
            if (same_file(pid, fd, ::getpid(), our_fd) == 1) return true;
        // Only web's workers (and a standby, which has no pool yet) hold web's listener.
        return fd_target(pid, fd) == web_listener && title.find("jobs[") == std::string::npos;
    };
    for (const Child& c : children) {
        for (int fd : fds_of(c.pid)) {
            if (allowed(c.pid, fd, c.title)) continue;
            for (int m : manager_fds)
                if (same_file(c.pid, fd, manager, m) == 1)
                    problems.push_back(c.title + " (" + std::to_string(c.pid) + ") fd " + std::to_string(fd) +
                                       " is the manager's fd " + std::to_string(m) + ": " + fd_target(c.pid, fd));
            for (const Child& other : children)
                if (other.pid != c.pid)
                    for (int o : fds_of(other.pid))
                        if (same_file(c.pid, fd, other.pid, o) == 1 && !allowed(other.pid, o, other.title))
                            problems.push_back(c.title + " (" + std::to_string(c.pid) + ") fd " + std::to_string(fd) +
                                               " is fd " + std::to_string(o) + " of " + other.title + ": " +
                                               fd_target(c.pid, fd));
        }
    }
    return problems;
}

}  // namespace herd::testing
