// The control protocol's JSON text, shared by control.cpp and control_status.cpp (internal).
#pragma once

#include <boost/json/fwd.hpp>

#include <string>
#include <string_view>

namespace herd::control::detail {

/// `v` as compact JSON, like json::serialize, but seconds print as 0.639, not 6.39E-1: people
/// read --json output too.
std::string json_text(const boost::json::value& v);

/// json_text and '\n': one answer line.
std::string json_line(const boost::json::value& v);

/// Pieces of JSON text written in place, as json_text writes them: a string (quoted, escaped),
/// seconds (0.639), an integer.
void append_string(std::string& out, std::string_view text);
void append_seconds(std::string& out, double seconds);
void append_integer(std::string& out, long long n);
void append_unsigned(std::string& out, unsigned long long n);

}  // namespace herd::control::detail
