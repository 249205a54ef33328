#include <herd/os/listeners.hpp>

#include <herd/core/text.hpp>
#include <herd/os/fd.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

namespace herd {

namespace {

constexpr int backlog = SOMAXCONN;

std::uint16_t parse_port(std::string_view text)
{
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > 65535)
        throw std::invalid_argument("port '" + std::string(text) + "' is not a number from 0 to 65535");
    return std::uint16_t(value);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A host name as getaddrinfo takes it (RFC 1123): labels of letters, digits and '-', at most 63
// bytes each, not starting or ending with '-'; 253 bytes in all.
bool is_host_name(std::string_view host)
{
    if (host.empty() || host.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= host.size(); ++i) {
        if (i == host.size() || host[i] == '.') {
            if (label == 0 || label > 63 || host[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        const char c = host[i];
        const bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c == '-' && label > 0);
        if (!ok) return false;
        ++label;
    }
    return true;
}

[[noreturn]] void fail(const std::string& what, int err)
{
    throw std::system_error(err, std::generic_category(), what);
}

// Unix socket files left by a dead server are removed; a live one is an address in use.
void remove_stale_unix_socket(const std::string& path, const sockaddr_un& addr)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return;
    const bool alive = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    probe.reset();
    if (!alive) ::unlink(path.c_str());
}

Listener bind_one(const std::string& text)
{
    const ListenAddress a = parse_listen(text);
    const std::string what = "cannot bind " + text;
    Listener l;
    l.address = text;
    if (a.kind == ListenAddress::Kind::unix_path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (a.path.size() >= sizeof addr.sun_path) fail(what + ": path too long", ENAMETOOLONG);
        std::memcpy(addr.sun_path, a.path.c_str(), a.path.size() + 1);
        remove_stale_unix_socket(a.path, addr);
        l.family = ListenerFamily::unix_socket;
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) fail(what, errno);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd.get(), backlog) != 0)
            fail(what, errno);
        l.fd = fd.release();
        return l;
    }

    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = a.host.empty() ? AF_INET : AF_UNSPEC;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(a.port);
    if (int rc = ::getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw std::system_error(EINVAL, std::generic_category(), what + ": " + ::gai_strerror(rc));
    const addrinfo ai = *found;
    sockaddr_storage storage{};
    std::memcpy(&storage, found->ai_addr, found->ai_addrlen);
    ::freeaddrinfo(found);

    l.family = listener_family(ai.ai_family);
    UniqueFd fd(::socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) fail(what, errno);
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // [::]:PORT means IPv6 only; IPv4 has its own addresses.
    if (ai.ai_family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), ai.ai_addrlen) != 0 || ::listen(fd.get(), backlog) != 0)
        fail(what, errno);
    l.fd = fd.release();
    return l;
}

}  // namespace

ListenerFamily listener_family(int af)
{
    switch (af) {
    case AF_INET: return ListenerFamily::ipv4;
    case AF_INET6: return ListenerFamily::ipv6;
    case AF_UNIX: return ListenerFamily::unix_socket;
    }
    throw std::invalid_argument("address family " + std::to_string(af) + " is none of TCP over IPv4 or IPv6 and unix");
}

int address_family(ListenerFamily family)
{
    switch (family) {
    case ListenerFamily::ipv4: return AF_INET;
    case ListenerFamily::ipv6: return AF_INET6;
    case ListenerFamily::unix_socket: return AF_UNIX;
    }
    return AF_UNSPEC;
}

ListenAddress parse_listen(std::string_view text)
{
    ListenAddress a;
    if (text.starts_with("unix:")) {
        a.kind = ListenAddress::Kind::unix_path;
        a.path = std::string(text.substr(5));
        if (a.path.empty()) throw std::invalid_argument("the unix socket path is empty");
        // sun_path holds the path and its terminating NUL
        constexpr std::size_t max_path = sizeof(sockaddr_un::sun_path) - 1;
        if (a.path.size() > max_path)
            throw std::invalid_argument("the unix socket path is " + std::to_string(a.path.size()) +
                                        " bytes long, at most " + std::to_string(max_path) + " fit in a socket address");
        return a;
    }
    if (text.starts_with("[")) {
        const auto close = text.find("]:");
        if (close == std::string_view::npos) throw std::invalid_argument("expected [IPV6]:PORT");
        a.host = std::string(text.substr(1, close - 1));
        in6_addr probe{};
        if (::inet_pton(AF_INET6, a.host.c_str(), &probe) != 1)
            throw std::invalid_argument("'" + a.host + "' is not an IPv6 address");
        a.port = parse_port(text.substr(close + 2));
        return a;
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument("expected HOST:PORT, [V6]:PORT, :PORT or unix:/path");
    a.host = std::string(text.substr(0, colon));
    if (a.host.find(':') != std::string::npos)
        throw std::invalid_argument("write IPv6 addresses in brackets, [::1]:PORT");
    // Digits and dots only: an IPv4 address, which getaddrinfo would otherwise look up as a name
    // ("999.1.1.1"); anything else is a host name resolved at bind.
    if (!a.host.empty()) {
        const bool numeric = std::all_of(a.host.begin(), a.host.end(), [](char c) { return is_digit(c) || c == '.'; });
        in_addr probe{};
        if (numeric && ::inet_pton(AF_INET, a.host.c_str(), &probe) != 1)
            throw std::invalid_argument("'" + a.host + "' is not an IPv4 address (four numbers from 0 to 255)");
        if (!numeric && !is_host_name(a.host))
            throw std::invalid_argument("'" + a.host + "' is not a host name or an IP address");
    }
    a.port = parse_port(text.substr(colon + 1));
    return a;
}

std::vector<Listener> bind_listeners(const std::vector<std::string>& addresses)
{
    std::vector<Listener> out;
    try {
        for (const auto& a : addresses) out.push_back(bind_one(a));
    } catch (...) {
        close_listeners(out, true);
        throw;
    }
    return out;
}

std::string not_a_listener(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) return "is not open";
    if (!S_ISSOCK(st.st_mode)) {
        if (S_ISREG(st.st_mode)) return "is a regular file, not a socket";
        if (S_ISFIFO(st.st_mode)) return "is a pipe, not a socket";
        if (S_ISCHR(st.st_mode)) return "is a character device, not a socket";
        if (S_ISDIR(st.st_mode)) return "is a directory, not a socket";
        return "is not a socket";
    }
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
        return "is not a stream socket (workers accept connections on it)";
    len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
        return "is a socket that does not listen";
    return {};
}

std::optional<std::vector<std::string>> systemd_socket_names(const char* listen_pid, const char* listen_fds,
                                                             const char* listen_fdnames, int self)
{
    if (!listen_pid || !listen_fds) return std::nullopt;
    const std::string_view pid = listen_pid;
    int for_pid = 0;
    const auto [pid_end, pid_ec] = std::from_chars(pid.data(), pid.data() + pid.size(), for_pid);
    if (pid.empty() || pid_ec != std::errc{} || pid_end != pid.data() + pid.size() || for_pid != self) return std::nullopt;
    // As many as a process may have descriptors; a typo must not read as "none".
    unsigned n = 0;
    const std::string_view count = listen_fds;
    const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    if (count.empty() || ec != std::errc{} || end != count.data() + count.size() || n > 65536)
        throw std::runtime_error("LISTEN_FDS='" + printable(count, 64) + "' from systemd is not a number of sockets");
    std::vector<std::string> out;
    out.reserve(n);
    std::string_view names = listen_fdnames ? listen_fdnames : "";
    for (unsigned i = 0; i < n; ++i) {
        const auto colon = names.find(':');
        const std::string_view name = names.substr(0, colon);
        names = colon == std::string_view::npos ? std::string_view{} : names.substr(colon + 1);
        out.push_back(name == "unknown" ? std::string() : printable(name, 256));
    }
    return out;
}

std::vector<Listener> adopt_systemd_listeners()
{
    std::vector<Listener> out;
    const auto meant = systemd_socket_names(std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"),
                                            std::getenv("LISTEN_FDNAMES"), ::getpid());
    if (!meant) return out;
    const std::vector<std::string>& names = *meant;
    const std::string count = std::to_string(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        Listener l;
        l.fd = 3 + int(i);
        // Adopted as it is, anything but a listening socket would fail every accept forever.
        if (const std::string what = not_a_listener(l.fd); !what.empty())
            throw std::runtime_error("fd " + std::to_string(l.fd) + " passed by systemd (LISTEN_FDS=" + count +
                                     ") " + what + ": refusing to start");
        ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            try {
                l.family = listener_family(ss.ss_family);
            } catch (const std::invalid_argument& e) {
                throw std::runtime_error("fd " + std::to_string(l.fd) + " passed by systemd (LISTEN_FDS=" + count +
                                         ") has " + e.what() + ": refusing to start");
            }
        }
        l.address = local_address(l.fd);
        if (!names[i].empty()) l.address += " (" + names[i] + ")";
        out.push_back(l);
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return out;
}

std::string local_address(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) return "unix:" + std::string(reinterpret_cast<sockaddr_un*>(&ss)->sun_path);
    return "?";
}

void close_listeners(std::vector<Listener>& listeners, bool unlink_paths)
{
    for (auto& l : listeners) {
        if (l.fd < 0) continue;
        if (unlink_paths && l.family == ListenerFamily::unix_socket) {
            const std::string where = local_address(l.fd);
            if (where.starts_with("unix:/")) ::unlink(where.c_str() + 5);
        }
        ::close(l.fd);
        l.fd = -1;
    }
}

}  // namespace herd
