// herdctl's reading of the manager's answer: see herdctl_fields.hpp.
#include "herdctl_fields.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cstdint>
#include <utility>

namespace herdctl {

namespace json = boost::json;

std::runtime_error wrong_type(std::string_view key, std::string_view expected)
{
    return std::runtime_error(fmt::format("\"{}\" is not {}", key, expected));
}

const json::value& field(const json::object& o, std::string_view key)
{
    if (const json::value* v = o.if_contains(key)) return *v;
    throw std::runtime_error(fmt::format("no \"{}\"", key));
}

std::string integer_text(const json::object& o, std::string_view key)
{
    return std::to_string(number<std::int64_t>(o, key));
}

std::optional<double> optional_number(const json::object& o, std::string_view key)
{
    if (field(o, key).is_null()) return std::nullopt;
    return number<double>(o, key);
}

std::string text_field(const json::object& o, std::string_view key)
{
    if (const json::string* s = field(o, key).if_string()) return std::string(s->data(), s->size());
    throw wrong_type(key, "a string");
}

bool bool_field(const json::object& o, std::string_view key)
{
    if (const bool* b = field(o, key).if_bool()) return *b;
    throw wrong_type(key, "true or false");
}

const json::object& object_field(const json::object& o, std::string_view key)
{
    if (const json::object* v = field(o, key).if_object()) return *v;
    throw wrong_type(key, "an object");
}

const json::object* optional_object(const json::object& o, std::string_view key)
{
    return field(o, key).is_null() ? nullptr : &object_field(o, key);
}

const json::array& array_field(const json::object& o, std::string_view key)
{
    if (const json::array* v = field(o, key).if_array()) return *v;
    throw wrong_type(key, "an array");
}

const json::object& element(const json::value& v, std::string_view array)
{
    if (const json::object* o = v.if_object()) return *o;
    throw wrong_type(fmt::format("{}[]", array), "an object");
}

json::object parse_answer(std::string_view line)
{
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(line.data(), line.size()), ec);
    if (ec) throw std::runtime_error(ec.message());
    if (json::object* o = v.if_object()) return std::move(*o);
    throw std::runtime_error("not a JSON object");
}

}  // namespace herdctl
