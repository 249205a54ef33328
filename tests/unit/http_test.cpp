// The example HTTP/1.1 parser and response writer (examples/http.hpp).
#include "http.hpp"
#include "http_response.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using http::Parser;
using http::Request;
using Result = http::Parser::Result;
using namespace std::string_literals;

namespace {

// What a parser makes of `bytes`: every complete request, and how it ended.
struct Parsed {
    std::vector<Request> requests;
    Result last = Result::incomplete;
    int error = 0;
};

Parsed parse(std::string_view bytes, http::Limits limits = {})
{
    Parser parser(limits);
    parser.feed(bytes);
    Parsed out;
    Request r;
    while ((out.last = parser.next(r)) == Result::request) out.requests.push_back(r);
    out.error = parser.error_status();
    return out;
}

int status_of(std::string_view bytes, http::Limits limits = {})
{
    return parse(bytes, limits).error;
}

// The response head up to the empty line, and what follows it.
struct Wire {
    std::string head;
    std::string body;
};

Wire split(const std::string& bytes)
{
    auto end = bytes.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    return {bytes.substr(0, end + 2), bytes.substr(end + 4)};
}

const std::string post = "POST /submit?x=1 HTTP/1.1\r\n"
                         "Host: example.com\r\n"
                         "Content-Type: text/plain\r\n"
                         "Content-Length: 11\r\n"
                         "\r\n"
                         "hello world";

}  // namespace

// Framing
TEST_CASE("a request split at any byte position parses the same as in one piece")
{
    for (std::size_t cut = 0; cut <= post.size(); ++cut) {
        CAPTURE(cut);
        Parser parser;
        Request r;
        parser.feed(std::string_view(post).substr(0, cut));
        if (cut < post.size()) CHECK(parser.next(r) == Result::incomplete);
        parser.feed(std::string_view(post).substr(cut));
        REQUIRE(parser.next(r) == Result::request);
        CHECK(r.method == "POST");
        CHECK(r.path == "/submit");
        CHECK(r.query == "x=1");
        CHECK(r.body == "hello world");
        CHECK(parser.next(r) == Result::incomplete);
        CHECK(parser.idle());
    }
}

TEST_CASE("a request fed one byte at a time parses once its last byte arrives")
{
    Parser parser;
    Request r;
    for (std::size_t i = 0; i + 1 < post.size(); ++i) {
        parser.feed(post.substr(i, 1));
        REQUIRE(parser.next(r) == Result::incomplete);
    }
    parser.feed(post.substr(post.size() - 1));
    REQUIRE(parser.next(r) == Result::request);
    CHECK(r.body == "hello world");
}

TEST_CASE("pipelined requests in one buffer come out one at a time, in order")
{
    auto p = parse("GET /a HTTP/1.1\r\nHost: h\r\n\r\n" + post +
                   "GET /c HTTP/1.1\r\nHost: h\r\n\r\nGET /d HT");
    REQUIRE(p.requests.size() == 3);
    CHECK(p.requests[0].path == "/a");
    CHECK(p.requests[1].path == "/submit");
    CHECK(p.requests[1].body == "hello world");
    CHECK(p.requests[2].path == "/c");
    CHECK(p.last == Result::incomplete);
}

TEST_CASE("a Content-Length body is taken exactly and the bytes after it start the next request")
{
    auto p = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(p.requests.size() == 2);
    CHECK(p.requests[0].body == "abc");
    CHECK(p.requests[1].path == "/next");
    CHECK(p.requests[1].body.empty());
}

TEST_CASE("a request without Content-Length has an empty body")
{
    auto p = parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(p.requests.size() == 1);
    CHECK(p.requests[0].body.empty());
}

TEST_CASE("repeated identical Content-Length values are merged, different ones are refused")
{
    auto same = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok");
    REQUIRE(same.requests.size() == 1);
    CHECK(same.requests[0].body == "ok");
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok") == 400);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 3\r\n\r\nok") == 400);
}

TEST_CASE("a malformed Content-Length is refused with 400")
{
    for (const char* value : {"", "-1", "+5", "5a", "0x10", "1 2"}) {
        CAPTURE(value);
        CHECK(status_of(std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ") + value + "\r\n\r\n") == 400);
    }
}

TEST_CASE("empty lines before a request line are ignored")
{
    auto p = parse("\r\n\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(p.requests.size() == 1);
    CHECK(p.requests[0].path == "/");
}

TEST_CASE("bare LF line ends are accepted")
{
    auto p = parse("GET /lf HTTP/1.1\nHost: h\nX-A: 1\n\nGET /next HTTP/1.1\nHost: h\n\n");
    REQUIRE(p.requests.size() == 2);
    CHECK(p.requests[0].header("x-a") == "1");
    CHECK(p.requests[1].path == "/next");
}

// Request line and headers
TEST_CASE("the query string is split from the path")
{
    auto p = parse("GET /sleep?ms=20&x=y%20z&flag HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(p.requests.size() == 1);
    const Request& r = p.requests[0];
    CHECK(r.target == "/sleep?ms=20&x=y%20z&flag");
    CHECK(r.path == "/sleep");
    CHECK(r.query == "ms=20&x=y%20z&flag");
    CHECK(r.query_param("ms") == "20");
    CHECK(r.query_param("x") == "y%20z");
    CHECK(r.query_param("flag") == "");
    CHECK_FALSE(r.query_param("m").has_value());
}

TEST_CASE("an absolute-form target yields its path and query")
{
    auto p = parse("GET http://example.com:80/pid?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
                   "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(p.requests.size() == 2);
    CHECK(p.requests[0].path == "/pid");
    CHECK(p.requests[0].query == "a=1");
    CHECK(p.requests[1].path == "/");
}

TEST_CASE("header names are looked up without regard to letter case and values are trimmed")
{
    auto p = parse("GET / HTTP/1.1\r\nHOST: h\r\nX-Thing: \t value with  spaces \t\r\n\r\n");
    REQUIRE(p.requests.size() == 1);
    CHECK(p.requests[0].header("host") == "h");
    CHECK(p.requests[0].header("x-thing") == "value with  spaces");
    CHECK_FALSE(p.requests[0].header("x-other").has_value());
}

// Keep-alive
TEST_CASE("an HTTP/1.1 request keeps the connection alive unless it says Connection: close")
{
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").requests.at(0).keep_alive);
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").requests.at(0).keep_alive);
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n").requests.at(0).keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n").requests.at(0).keep_alive);
}

TEST_CASE("an HTTP/1.0 request closes the connection unless it asks for keep-alive")
{
    CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").requests.at(0).keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.at(0).keep_alive);
    CHECK_FALSE(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").requests.at(0).keep_alive);
}

TEST_CASE("a connection is idle only when no byte of a next request has arrived")
{
    Parser parser;
    Request r;
    CHECK(parser.idle());
    parser.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\nG");
    CHECK_FALSE(parser.idle());
    REQUIRE(parser.next(r) == Result::request);
    CHECK_FALSE(parser.idle());
    parser.feed("ET / HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(parser.next(r) == Result::request);
    CHECK(parser.idle());
    parser.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
    CHECK(parser.next(r) == Result::incomplete);
    CHECK_FALSE(parser.idle());
}

TEST_CASE("Expect: 100-continue is reported once while the body is still to come")
{
    Parser parser;
    Request r;
    parser.feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    CHECK(parser.next(r) == Result::incomplete);
    CHECK(parser.take_continue());
    CHECK_FALSE(parser.take_continue());
    parser.feed("data");
    REQUIRE(parser.next(r) == Result::request);
    CHECK(r.body == "data");
    CHECK_FALSE(parser.take_continue());
}

// Limits
TEST_CASE("a header section over the limit is refused with 431, even before it ends")
{
    http::Limits limits{.max_header_bytes = 100};
    std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(100, 'a') + "\r\n\r\n";
    CHECK(status_of(big, limits) == 431);
    CHECK(status_of(big.substr(0, 110), limits) == 431);
    CHECK(status_of(big.substr(0, 90), limits) == 0);

    std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 1000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(status_of(many + "\r\n") == 431);
}

TEST_CASE("a header section exactly at the limit is accepted")
{
    std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    head += std::string(100 - head.size() - 4, 'a') + "\r\n\r\n";
    REQUIRE(head.size() == 100);
    CHECK(parse(head, {.max_header_bytes = 100}).requests.size() == 1);
    CHECK(status_of(head, {.max_header_bytes = 99}) == 431);
}

TEST_CASE("a request line over the limit is refused with 414")
{
    CHECK(status_of("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n") == 414);
    CHECK(status_of("GET /" + std::string(9000, 'a')) == 414);
}

TEST_CASE("a body over the limit is refused with 413 before any of it arrives")
{
    http::Limits limits{.max_body_bytes = 10};
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits) == 413);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n") == 413);
    auto ok = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits);
    CHECK(ok.requests.size() == 1);
    // The default limit is 1 MiB.
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n") == 413);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n") == 0);
}

// Refusals
TEST_CASE("garbage is refused with 400")
{
    for (const std::string& bytes : {
             "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"s,   // a TLS hello
             "hello\r\n\r\n"s,
             "GET\r\n\r\n"s,
             "GET /\r\n\r\n"s,
             "GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n"s,
             "GET  / HTTP/1.1\r\nHost: h\r\n\r\n"s,
             "G(T / HTTP/1.1\r\nHost: h\r\n\r\n"s,
             "GET / http/1.1\r\nHost: h\r\n\r\n"s,
             "GET / HTTP/1.x\r\nHost: h\r\n\r\n"s,
             "GET relative HTTP/1.1\r\nHost: h\r\n\r\n"s,
             "GET * HTTP/1.1\r\nHost: h\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\n: empty name\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n"s,
             "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s,
         }) {
        CAPTURE(bytes);
        CHECK(status_of(bytes) == 400);
    }
}

TEST_CASE("a request that does not start with a method is refused before its line ends")
{
    CHECK(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s) == 400);   // a TLS hello
    CHECK(status_of("GE\x01"s) == 400);
    CHECK(status_of("GET /partial"s) == 0);
    CHECK(status_of("\r"s) == 0);
}

TEST_CASE("an HTTP/1.1 request without exactly one Host is refused with 400")
{
    CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
    CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
    CHECK(status_of("GET / HTTP/1.0\r\n\r\n") == 0);
}

TEST_CASE("Transfer-Encoding is refused with 501, with or without Content-Length")
{
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") == 501);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == 501);
}

TEST_CASE("an HTTP major version other than 1 is refused with 505")
{
    CHECK(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
    CHECK(status_of("GET / HTTP/0.9\r\n\r\n") == 505);
}

TEST_CASE("after an error the parser stays in error")
{
    Parser parser;
    Request r;
    parser.feed("BAD\r\n\r\n");
    CHECK(parser.next(r) == Result::error);
    parser.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(parser.next(r) == Result::error);
    CHECK(parser.error_status() == 400);
}

// Responses
TEST_CASE("a response's Content-Length is the size of its body")
{
    http::Response resp;
    resp.headers.push_back({"Content-Type", "text/plain"});
    for (const std::string& body : {""s, "Hello, world!\n"s, std::string(100000, 'x')}) {
        resp.body = body;
        Wire w = split(http::serialize(resp));
        CHECK(w.head.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(w.head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
        CHECK(w.head.find("\r\nContent-Type: text/plain\r\n") != std::string::npos);
        CHECK(w.body == body);
    }
}

TEST_CASE("a response says Connection: keep-alive or close as asked")
{
    http::Response resp;
    resp.body = "x";
    CHECK(split(http::serialize(resp)).head.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
    resp.keep_alive = false;
    CHECK(split(http::serialize(resp)).head.find("\r\nConnection: close\r\n") != std::string::npos);
}

TEST_CASE("a response to HEAD announces the body length but carries no body")
{
    http::Response resp;
    resp.body = "Hello, world!\n";
    resp.head = true;
    Wire w = split(http::serialize(resp));
    CHECK(w.head.find("\r\nContent-Length: 14\r\n") != std::string::npos);
    CHECK(w.body.empty());
}

TEST_CASE("204 and 304 responses have neither Content-Length nor body")
{
    for (int status : {204, 304}) {
        http::Response resp;
        resp.status = status;
        resp.body = "ignored";
        Wire w = split(http::serialize(resp));
        CHECK(w.head.find("Content-Length") == std::string::npos);
        CHECK(w.body.empty());
    }
}

TEST_CASE("an error response names its status in the body and closes by default")
{
    std::string bytes = http::serialize(http::error_response(431));
    CHECK(bytes.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    CHECK(split(bytes).body == "431 Request Header Fields Too Large\n");
    CHECK(bytes.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(http::serialize(http::error_response(404, true)).find("\r\nConnection: keep-alive\r\n") != std::string::npos);
}

TEST_CASE("http_date formats an IMF-fixdate")
{
    using namespace std::chrono;
    auto t = system_clock::time_point(seconds(784111777));   // RFC 9110's example
    CHECK(http::http_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
}
