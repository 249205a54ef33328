// --listen parsing, and binding real sockets on loopback.
#include <herd/os/listeners.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <optional>
#include <string>
#include <system_error>
#include <vector>
#include <unistd.h>

using namespace herd;

namespace {

// What parse_listen() says of `text`: its error, or "no error".
std::string message(const std::string& text)
{
    try {
        parse_listen(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("every --listen form parses")
{
    CHECK(parse_listen("127.0.0.1:8080") == ListenAddress{ListenAddress::Kind::inet, "127.0.0.1", 8080, ""});
    CHECK(parse_listen("[::1]:8080") == ListenAddress{ListenAddress::Kind::inet, "::1", 8080, ""});
    CHECK(parse_listen(":9000") == ListenAddress{ListenAddress::Kind::inet, "", 9000, ""});
    CHECK(parse_listen("unix:/run/app.sock") == ListenAddress{ListenAddress::Kind::unix_path, "", 0, "/run/app.sock"});
    CHECK(parse_listen("localhost:0").host == "localhost");
}

TEST_CASE("a bad --listen value says what is wrong")
{
    CHECK(message("127.0.0.1:http") == "port 'http' is not a number from 0 to 65535");
    CHECK(message("127.0.0.1:70000") == "port '70000' is not a number from 0 to 65535");
    CHECK(message("127.0.0.1:-1") == "port '-1' is not a number from 0 to 65535");
    CHECK(message("127.0.0.1:") == "port '' is not a number from 0 to 65535");
    CHECK(message("8080") == "expected HOST:PORT, [V6]:PORT, :PORT or unix:/path");
    CHECK(message("::1:80") == "write IPv6 addresses in brackets, [::1]:PORT");
    CHECK(message("[::1]80") == "expected [IPV6]:PORT");
    CHECK(message("[nope]:80") == "'nope' is not an IPv6 address");
    CHECK(message("[]:80") == "'' is not an IPv6 address");
    CHECK(message("[::1]:99999") == "port '99999' is not a number from 0 to 65535");
    CHECK(message("unix:") == "the unix socket path is empty");
}

TEST_CASE("an IPv4 address in --listen has four octets from 0 to 255")
{
    const std::string four = " is not an IPv4 address (four numbers from 0 to 255)";
    CHECK(message("999.1.1.1:80") == "'999.1.1.1'" + four);
    CHECK(message("1.2.3.256:80") == "'1.2.3.256'" + four);
    CHECK(message("1.2.3:80") == "'1.2.3'" + four);
    CHECK(message("1.2.3.4.5:80") == "'1.2.3.4.5'" + four);
    CHECK(message("1..2.3:80") == "'1..2.3'" + four);
    CHECK(message("0.0.0.0:80") == "no error");
    CHECK(message("255.255.255.255:65535") == "no error");
    // Host names are resolved at bind; what cannot be one is refused here
    CHECK(message("localhost:80") == "no error");
    CHECK(message("web-1.example.com:80") == "no error");
    CHECK(message("bad_host:80") == "'bad_host' is not a host name or an IP address");
    CHECK(message("-web:80") == "'-web' is not a host name or an IP address");
    CHECK(message("web..local:80") == "'web..local' is not a host name or an IP address");
    CHECK(message(std::string(64, 'a') + ":80") == "'" + std::string(64, 'a') + "' is not a host name or an IP address");
    CHECK(message(" 127.0.0.1:80") == "' 127.0.0.1' is not a host name or an IP address");
}

TEST_CASE("a unix socket path must fit in a socket address")
{
    const std::string fits = "/" + std::string(106, 'p');   // 107 bytes and the NUL: sun_path's 108
    CHECK(parse_listen("unix:" + fits).path == fits);
    try {
        parse_listen("unix:" + fits + "p");
        FAIL("a 108-byte path was taken");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "the unix socket path is 108 bytes long, at most 107 fit in a socket address");
    }
}

TEST_CASE("binding port 0 listens on a real port that local_address reports")
{
    auto ls = bind_listeners({"127.0.0.1:0"});
    REQUIRE(ls.size() == 1);
    const auto where = local_address(ls[0].fd);
    CHECK(where.starts_with("127.0.0.1:"));
    CHECK(where != "127.0.0.1:0");
    CHECK(ls[0].family == herd::ListenerFamily::ipv4);
    close_listeners(ls, true);
    CHECK(ls[0].fd == -1);
}

TEST_CASE("an address in use is a clear error")
{
    auto first = bind_listeners({"127.0.0.1:0"});
    const auto where = local_address(first[0].fd);
    try {
        bind_listeners({where});
        FAIL("bound twice");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()) == "cannot bind " + where + ": Address already in use");
    }
    close_listeners(first, true);
}

TEST_CASE("a stale unix socket file is replaced, and removed at close")
{
    char dir[] = "/tmp/herd-listen-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    const std::string path = std::string(dir) + "/s.sock";
    auto first = bind_listeners({"unix:" + path});
    ::close(first[0].fd);   // the file stays behind, nobody listens: stale
    auto second = bind_listeners({"unix:" + path});
    CHECK(local_address(second[0].fd) == "unix:" + path);
    close_listeners(second, true);
    CHECK(::access(path.c_str(), F_OK) != 0);
    ::rmdir(dir);
}

TEST_CASE("only a listening stream socket passes for one: what an inherited fd is instead is named")
{
    auto ls = bind_listeners({"127.0.0.1:0"});
    CHECK(not_a_listener(ls[0].fd) == "");
    close_listeners(ls, true);

    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    CHECK(not_a_listener(pipe_fds[0]) == "is a pipe, not a socket");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    CHECK(not_a_listener(pipe_fds[0]) == "is not open");

    const int file = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    REQUIRE(file >= 0);
    CHECK(not_a_listener(file) == "is a regular file, not a socket");
    ::close(file);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(not_a_listener(null) == "is a character device, not a socket");
    ::close(null);

    const int bound = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);   // never listen()ed
    CHECK(not_a_listener(bound) == "is a socket that does not listen");
    ::close(bound);
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(not_a_listener(udp) == "is not a stream socket (workers accept connections on it)");
    ::close(udp);
}

TEST_CASE("systemd's variables: sockets only for our own pid, one name each, a bad count refused")
{
    using Names = std::vector<std::string>;
    CHECK(systemd_socket_names(nullptr, "1", nullptr, 42) == std::nullopt);
    CHECK(systemd_socket_names("42", nullptr, nullptr, 42) == std::nullopt);
    CHECK(systemd_socket_names("41", "1", nullptr, 42) == std::nullopt);
    // A LISTEN_PID that is not exactly a pid is not ours (atoi would have read "42x" as 42)
    for (const char* pid : {"", "42x", " 42", "-42", "99999999999999999999"})
        CHECK(systemd_socket_names(pid, "1", nullptr, 42) == std::nullopt);

    CHECK(systemd_socket_names("42", "0", nullptr, 42) == Names{});
    CHECK(systemd_socket_names("42", "2", nullptr, 42) == Names{"", ""});
    CHECK(systemd_socket_names("42", "3", "web:unknown", 42) == Names{"web", "", ""});
    CHECK(systemd_socket_names("42", "1", "a:b:c", 42) == Names{"a"});
    CHECK(systemd_socket_names("42", "1", "bad\x1b[0m", 42) == Names{"bad\\x1b[0m"});
    CHECK(systemd_socket_names("42", "65536", nullptr, 42)->size() == 65536);

    for (const char* count : {"", "x", "-1", "1 ", "65537", "4294967296"}) {
        CAPTURE(count);
        CHECK_THROWS_WITH_AS(systemd_socket_names("42", count, nullptr, 42),
                             ("LISTEN_FDS='" + std::string(count) + "' from systemd is not a number of sockets").c_str(),
                             std::runtime_error);
    }
}
