// Listening sockets: bound once by the manager (or adopted from systemd's LISTEN_FDS) and
// inherited by every worker.
//
// --listen forms: HOST:PORT, [V6]:PORT, :PORT (all IPv4 interfaces), unix:/path.
// systemd socket activation: LISTEN_PID == our pid, LISTEN_FDS = n, fds 3..3+n-1,
// LISTEN_FDNAMES = colon-separated names. The variables are removed once adopted, so that
// children do not take them for their own.
#pragma once

#include <herd/worker/worker.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// A parsed --listen value.
struct ListenAddress {
    enum class Kind { inet, unix_path } kind = Kind::inet;
    std::string host;     // "127.0.0.1", "::1", "" for every interface
    std::uint16_t port = 0;
    std::string path;     // unix sockets
    friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

/// The family of a socket of address family `af` (AF_INET, AF_INET6, AF_UNIX); throws
/// std::invalid_argument for any other.
ListenerFamily listener_family(int af);
/// The address family (AF_INET, AF_INET6, AF_UNIX) of a listener's family: what the upgrade's
/// hand-over record carries.
int address_family(ListenerFamily family);

/// Parse a --listen value; throws std::invalid_argument naming what is wrong.
ListenAddress parse_listen(std::string_view text);

/// Bind and listen on every address; throws std::system_error "cannot bind ADDR: reason".
std::vector<Listener> bind_listeners(const std::vector<std::string>& addresses);

/// What systemd's variables say (their values, nullptr when unset): the name of each socket passed
/// at fds 3, 4, ..., in order ("" where LISTEN_FDNAMES gives none, or "unknown"; made printable);
/// nothing when they are not meant for process `self` (LISTEN_PID or LISTEN_FDS unset, LISTEN_PID
/// not a pid or another one). Pure; throws std::runtime_error when LISTEN_FDS is not a number of
/// sockets (0 to 65536).
std::optional<std::vector<std::string>> systemd_socket_names(const char* listen_pid, const char* listen_fds,
                                              const char* listen_fdnames, int self);

/// Adopt sockets passed by systemd (empty when none are meant for this process); throws
/// std::runtime_error naming the fd when one is not a listening stream socket (it would fail
/// every accept), and when LISTEN_FDS is not a number.
std::vector<Listener> adopt_systemd_listeners();

/// Empty when fd is a listening stream socket, else what it is instead: "is not open", "is a
/// regular file", "is a socket that does not listen", ...
std::string not_a_listener(int fd);

/// Where a socket really listens: "127.0.0.1:43567", "[::1]:8080", "unix:/run/app.sock".
std::string local_address(int fd);

/// Close the sockets (and remove unix socket files we created, when asked to).
void close_listeners(std::vector<Listener>& listeners, bool unlink_paths);

}  // namespace herd
