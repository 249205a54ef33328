// The text of the supervision values of several pools (DESIGN.md §7a, core/supervision.hpp):
// restart types, strategies, what the restart limit does, restart plans and their counts. Each
// parser throws std::invalid_argument saying what was expected (the caller adds the option's name
// and where it was given); each to_string gives the text its parser reads back to the same value.
// The config file and `herdctl plan POOL "restart, wait"` both use them.
#pragma once

#include <herd/core/supervision.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// "permanent", "transient", "temporary", or their aliases "always", "on-failure", "never".
RestartType parse_restart_type(std::string_view text);
std::string to_string(RestartType type);

/// "one", "rest" or "all".
Strategy parse_strategy(std::string_view text);
std::string to_string(Strategy strategy);

/// "backoff", "wait" or "stop".
OnRestartLimit parse_on_restart_limit(std::string_view text);
std::string to_string(OnRestartLimit action);

/// "restart, restart 5s, wait, stop, delete": comma-separated steps, blanks around each ignored.
/// An empty plan, an empty or unknown step, a bad delay, a delay on a step other than restart and
/// a step after `stop` (it could never be taken) are refused, naming the step.
std::vector<PlanStep> parse_plan(std::string_view text);
/// "restart, restart 5s, wait": the parser's own syntax, delays as --restart-limit shows them.
std::string to_string(const std::vector<PlanStep>& steps);

/// "3" (at least 1) or "infinity" (nullopt).
std::optional<unsigned> parse_plan_count(std::string_view text);
std::string plan_count_to_string(std::optional<unsigned> count);

}  // namespace herd
