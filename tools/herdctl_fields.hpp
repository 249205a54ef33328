// herdctl's reading of the manager's answer: a missing or mistyped field names itself.
//
// Each reader throws std::runtime_error naming the field ("no \"pid\"", "\"slot\" is not a whole number");
// interpret() turns that into "malformed answer from the manager: ...". Internal to herdctl's core.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace herdctl {

/// "\"key\" is not <expected>", for a field of the wrong type.
std::runtime_error wrong_type(std::string_view key, std::string_view expected);

/// The field `key` of `o`; throws if it is missing.
const boost::json::value& field(const boost::json::object& o, std::string_view key);

/// The number at `key`, as T (an integral T wants a whole number).
template <class T>
T number(const boost::json::object& o, std::string_view key)
{
    boost::system::error_code ec;
    const T n = field(o, key).to_number<T>(ec);
    if (ec) throw wrong_type(key, std::is_integral_v<T> ? "a whole number" : "a number");
    return n;
}

/// The whole number at `key`, as decimal text.
std::string integer_text(const boost::json::object& o, std::string_view key);

/// A number that may be null.
std::optional<double> optional_number(const boost::json::object& o, std::string_view key);

/// The string at `key`.
std::string text_field(const boost::json::object& o, std::string_view key);

/// The boolean at `key`.
bool bool_field(const boost::json::object& o, std::string_view key);

/// The object at `key`.
const boost::json::object& object_field(const boost::json::object& o, std::string_view key);

/// An object that may be null.
const boost::json::object* optional_object(const boost::json::object& o, std::string_view key);

/// The array at `key`.
const boost::json::array& array_field(const boost::json::object& o, std::string_view key);

/// An element of the array named `array`, which must be an object.
const boost::json::object& element(const boost::json::value& v, std::string_view array);

/// The answer line as a JSON object.
boost::json::object parse_answer(std::string_view line);

}  // namespace herdctl
