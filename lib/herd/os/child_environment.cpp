// A program's environment in exec mode: see child_environment.hpp.
#include <herd/os/child_environment.hpp>

#include <cstdlib>

namespace herd {

namespace {

// Variables that are the manager's own, or that this launcher sets anew.
constexpr std::string_view not_passed_on[] = {
    "LISTEN_PID=",   "LISTEN_FDS=",   "LISTEN_FDNAMES=", "NOTIFY_SOCKET=",   "WATCHDOG_USEC=",
    "WATCHDOG_PID=", "HERD_SLOT=",    "HERD_GENERATION=", "HERD_HEARTBEAT_FD=", "HERD_HANDOVER_FD=",
    "HERD_POOL=",
};

}  // namespace

void forget_manager_variables() noexcept
{
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
}

// The program's environment
std::string fd_name(const Listener& l)
{
    // Adopted from systemd with a name: "127.0.0.1:8080 (web)"
    if (const auto open = l.address.rfind(" ("); open != std::string::npos && l.address.back() == ')')
        return l.address.substr(open + 2, l.address.size() - open - 3);
    std::string name = l.address.substr(0, 255);
    for (char& c : name)
        if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
    return name;
}

ChildEnvironment child_environment(const char* const* parent, const std::vector<Listener>& listeners,
                                   int heartbeat_fd, int slot, unsigned generation, std::string_view pool)
{
    ChildEnvironment env;
    for (const char* const* e = parent; e && *e; ++e) {
        const std::string_view var = *e;
        bool drop = false;
        for (const auto prefix : not_passed_on) drop = drop || var.starts_with(prefix);
        if (!drop) env.vars.emplace_back(var);
    }
    if (!listeners.empty()) {
        env.vars.push_back("LISTEN_FDS=" + std::to_string(listeners.size()));
        env.listen_pid = env.vars.size();
        env.vars.push_back(std::string(listen_pid_prefix) + std::string(pid_digits, ' '));
        std::string names;
        for (const auto& l : listeners) names += (names.empty() ? "" : ":") + fd_name(l);
        env.vars.push_back("LISTEN_FDNAMES=" + names);
    }
    env.vars.push_back("HERD_HEARTBEAT_FD=" + std::to_string(heartbeat_fd));
    env.vars.push_back("HERD_SLOT=" + std::to_string(slot));
    env.vars.push_back("HERD_GENERATION=" + std::to_string(generation));
    env.vars.push_back("HERD_POOL=" + std::string(pool));
    return env;
}

}  // namespace herd
