// The response side of the example HTTP/1.1 server (RFC 9112): the bytes to write for a
// response, status phrases, error answers and the Date header. No I/O, as http.hpp.
#pragma once

#include "http.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace http {

/// A response; Content-Length and Connection are written by serialize().
struct Response {
    int status = 200;
    std::vector<Header> headers;   // e.g. Content-Type; values must not contain CR or LF
    std::string body;
    bool keep_alive = true;        // false: "Connection: close", the server closes after writing
    bool head = false;             // an answer to HEAD: Content-Length of the body, no body
};

/// The interim answer to "Expect: 100-continue".
inline constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";

/// The bytes to send for `r`.
std::string serialize(const Response& r);
/// "OK", "Not Found", ...; "Unknown" for a status without a known phrase.
std::string_view reason_phrase(int status);
/// A plain-text error response ("404 Not Found\n"); by default it closes the connection,
/// as it must after a parser error.
Response error_response(int status, bool keep_alive = false);
/// An IMF-fixdate for the Date header: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point t);

}  // namespace http
