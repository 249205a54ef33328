// The control protocol's JSON text, shared by control.cpp and control_status.cpp (internal).
#pragma once

#include <boost/json/fwd.hpp>

#include <string>

namespace herd::control::detail {

/// `v` as compact JSON, like json::serialize, but seconds print as 0.639, not 6.39E-1: people
/// read --json output too.
std::string json_text(const boost::json::value& v);

/// json_text and '\n': one answer line.
std::string json_line(const boost::json::value& v);

}  // namespace herd::control::detail
