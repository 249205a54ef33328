// A small incremental HTTP/1.1 request parser and response writer (RFC 9112), without I/O:
// the connection feeds the bytes it read, takes out whole requests, and writes what
// serialize() returns (http_response.hpp). Used by hello-http; unit-tested in
// tests/unit/http_test.cpp.
//
// What it accepts:
//   - requests split anywhere across reads, and several pipelined requests in one read;
//   - CRLF or bare LF line ends (RFC 9112 §2.2), empty lines before a request line (§2.2);
//   - origin-form ("/p?q"), absolute-form ("http://host/p?q") and "*" (OPTIONS) targets;
//   - bodies framed by Content-Length (repeated identical values are merged, §6.3).
// What it refuses (the status to answer with; the connection must then be closed):
//   400 garbage: a malformed request line, header line, Content-Length or Host (HTTP/1.1 needs
//       exactly one), whitespace before a colon, obsolete line folding;
//   414 a request line longer than the header limit;  431 a header section over the limit;
//   413 a Content-Length over the body limit (refused before any of the body is read);
//   501 any Transfer-Encoding: chunked request bodies are not supported. Clients send them
//       rarely, and refusing them closes the door to request smuggling (TE vs. CL);
//   505 an HTTP major version other than 1.
// After an error the parser stays in error: what follows cannot be framed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace http {

/// One header field; the name as the peer spelled it.
struct Header {
    std::string name;
    std::string value;
};

/// A complete request, body included.
struct Request {
    std::string method;            // "GET", case-sensitive as the RFC says
    std::string target;            // as sent: "/sleep?ms=20"
    std::string path;              // "/sleep" (not percent-decoded)
    std::string query;             // "ms=20", without the '?'
    int minor_version = 1;         // HTTP/1.<minor>
    std::vector<Header> headers;
    std::string body;
    bool keep_alive = true;        // what the request asks for (version default and Connection)

    /// The first value of header `name` (any letter case), or nullopt.
    std::optional<std::string_view> header(std::string_view name) const;
    /// The value of query parameter `key` ("ms" in "ms=20&x=1"), or nullopt; not decoded.
    std::optional<std::string_view> query_param(std::string_view key) const;
};

/// Sizes past which a request is refused.
struct Limits {
    std::size_t max_header_bytes = 8 * 1024;    // request line + header fields → 414/431
    std::size_t max_body_bytes = 1024 * 1024;   // Content-Length → 413
};

/// Incremental request parser for one connection.
class Parser {
public:
    enum class Result { incomplete, request, error };

    /// A parser with the given limits.
    explicit Parser(Limits limits = {});

    /// Append bytes read from the connection.
    void feed(std::string_view bytes);
    /// Take the next complete request out of the buffered bytes into `out`.
    /// `request`: `out` holds it (call again for a pipelined one); `incomplete`: feed more;
    /// `error`: answer error_status() and close.
    Result next(Request& out);
    /// The status to answer with after Result::error (400, 413, 414, 431, 501, 505), else 0.
    int error_status() const noexcept { return error_; }
    /// True once per request whose head asked for "Expect: 100-continue" and whose body is
    /// still to come: the server should write continue_response first.
    bool take_continue() noexcept;
    /// True when no byte of a next request has arrived (an idle keep-alive connection).
    bool idle() const noexcept;
    /// True while the head of a request is parsed and its body is still to come.
    bool in_body() const noexcept { return in_body_; }

private:
    Result fail(int status);
    int parse_head(std::string_view head);   // 0, or the status to refuse it with

    Limits limits_;
    std::string buffer_;
    std::size_t pos_ = 0;            // start of the bytes not consumed yet
    std::size_t scan_ = 0;           // where the search for the end of the head resumes (from pos_)
    bool in_body_ = false;           // head parsed into current_, waiting for the body
    bool continue_ = false;
    std::size_t body_length_ = 0;
    Request current_;
    int error_ = 0;
};

}  // namespace http
