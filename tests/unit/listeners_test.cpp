// --listen parsing, and binding real sockets on loopback.
#include <herd/listeners.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

using namespace herd;

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
    auto message = [](const char* text) {
        try {
            parse_listen(text);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message("127.0.0.1:http") == "'127.0.0.1:http': port 'http' is not a number from 0 to 65535");
    CHECK(message("127.0.0.1:70000") == "'127.0.0.1:70000': port '70000' is not a number from 0 to 65535");
    CHECK(message("8080") == "'8080': expected HOST:PORT, [V6]:PORT, :PORT or unix:/path");
    CHECK(message("::1:80") == "'::1:80': write IPv6 addresses in brackets, [::1]:PORT");
    CHECK(message("[::1]80") == "'[::1]80': expected [IPV6]:PORT");
    CHECK(message("[nope]:80") == "'[nope]:80': 'nope' is not an IPv6 address");
    CHECK(message("unix:") == "'unix:': unix socket path is empty");
}

TEST_CASE("binding port 0 listens on a real port that local_address reports")
{
    auto ls = bind_listeners({"127.0.0.1:0"});
    REQUIRE(ls.size() == 1);
    const auto where = local_address(ls[0].fd);
    CHECK(where.starts_with("127.0.0.1:"));
    CHECK(where != "127.0.0.1:0");
    CHECK(ls[0].family == AF_INET);
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
