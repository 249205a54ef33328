// A program's environment in exec mode: the manager's own variables out, sockets, heartbeat pipe,
// slot and generation in; socket names.
#include <herd/os/child_environment.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace herd;

namespace {

bool has(const std::vector<std::string>& vars, const std::string& var)
{
    return std::find(vars.begin(), vars.end(), var) != vars.end();
}

}  // namespace

TEST_CASE("a program's environment: the manager's own variables out, sockets, heartbeat pipe, slot, generation and pool in")
{
    const char* parent[] = {"PATH=/usr/bin", "HOME=/root", "LISTEN_FDS=2", "LISTEN_PID=1", "LISTEN_FDNAMES=a:b",
                            "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1000", "WATCHDOG_PID=1",
                            "HERD_HEARTBEAT_FD=9", "HERD_SLOT=7", "HERD_GENERATION=8", "HERD_HANDOVER_FD=5", "HERD_POOL=outer",
                            "LISTEN_FDSX=kept", nullptr};
    const std::vector<Listener> listeners = {{10, "127.0.0.1:8080", ListenerFamily::ipv4}, {11, "unix:/run/app.sock", ListenerFamily::unix_socket}};
    const ChildEnvironment env = child_environment(parent, listeners, 5, 3, 2, "web");
    CHECK(env.vars == std::vector<std::string>{"PATH=/usr/bin", "HOME=/root", "LISTEN_FDSX=kept", "LISTEN_FDS=2",
                                               "LISTEN_PID=" + std::string(20, ' '),
                                               "LISTEN_FDNAMES=127.0.0.1_8080:unix_/run/app.sock",
                                               "HERD_HEARTBEAT_FD=5", "HERD_SLOT=3", "HERD_GENERATION=2",
                                               "HERD_POOL=web"});
    REQUIRE(env.listen_pid < env.vars.size());
    CHECK(env.vars[env.listen_pid].starts_with("LISTEN_PID="));
}

TEST_CASE("without listeners a program gets no LISTEN_ variable at all")
{
    const char* parent[] = {"LISTEN_FDS=1", "LISTEN_PID=1", "TERM=xterm", nullptr};
    const ChildEnvironment env = child_environment(parent, {}, 3, 0, 1, "main");
    CHECK(env.vars == std::vector<std::string>{"TERM=xterm", "HERD_HEARTBEAT_FD=3", "HERD_SLOT=0", "HERD_GENERATION=1",
                                               "HERD_POOL=main"});
    CHECK(env.listen_pid == std::string::npos);
    CHECK(std::none_of(env.vars.begin(), env.vars.end(), [](const auto& v) { return v.starts_with("LISTEN_"); }));
    CHECK(has(child_environment(nullptr, {}, 3, 0, 1, "main").vars, "HERD_HEARTBEAT_FD=3"));
}

TEST_CASE("a socket's LISTEN_FDNAMES name is systemd's when herd adopted a named one, else its address without colons")
{
    CHECK(fd_name({3, "127.0.0.1:8080", ListenerFamily::ipv4}) == "127.0.0.1_8080");
    CHECK(fd_name({3, "[::1]:8080", ListenerFamily::ipv6}) == "[__1]_8080");
    CHECK(fd_name({3, "unix:/run/app.sock", ListenerFamily::unix_socket}) == "unix_/run/app.sock");
    CHECK(fd_name({3, "127.0.0.1:8080 (web)", ListenerFamily::ipv4}) == "web");
    CHECK(fd_name({3, std::string(300, 'a'), ListenerFamily::ipv4}).size() == 255);
}
