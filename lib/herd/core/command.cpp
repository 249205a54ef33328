#include <herd/core/command.hpp>

#include <utility>

namespace herd {

namespace {

constexpr std::pair<Command, std::string_view> names[] = {
    {Command::status, "status"}, {Command::scale, "scale"},     {Command::reload, "reload"},
    {Command::upgrade, "upgrade"}, {Command::stop, "stop"},     {Command::restart, "restart"},
    {Command::start, "start"},   {Command::plan, "plan"},       {Command::reopen_logs, "reopen-logs"},
};

}  // namespace

std::string_view to_string(Command command)
{
    for (const auto& [c, name] : names)
        if (c == command) return name;
    return "unknown";
}

std::optional<Command> command_from(std::string_view name)
{
    for (const auto& [c, n] : names)
        if (n == name && c != Command::reopen_logs) return c;
    return std::nullopt;
}

}  // namespace herd
