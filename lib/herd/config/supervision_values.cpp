// The text of the supervision values (see supervision_values.hpp).
#include <herd/config/supervision_values.hpp>

#include <herd/config/option_values.hpp>
#include <herd/config/options.hpp>

#include <algorithm>
#include <stdexcept>

namespace herd {

namespace {

constexpr const char* plan_expected = "expected restart, restart D (a delay such as 5s), wait, stop or delete";

/// A delay as the options take it: "5s", "1.5s", "250ms".
std::string compact(Duration d)
{
    std::string text = format_duration(d);
    std::erase(text, ' ');
    return text;
}

PlanStep parse_step(std::string_view text, std::size_t number)
{
    const std::string quoted = "'" + std::string(text) + "'";
    if (text.empty()) throw std::invalid_argument("step " + std::to_string(number) + " is empty; " + plan_expected);
    const std::size_t blank = std::min(text.find_first_of(" \t"), text.size());
    const std::string_view word = text.substr(0, blank);
    const std::string_view rest = trim(text.substr(blank));
    PlanStep step;
    if (word == "restart") step.kind = PlanStep::Kind::restart;
    else if (word == "wait") step.kind = PlanStep::Kind::wait;
    else if (word == "stop") step.kind = PlanStep::Kind::stop;
    else if (word == "delete") step.kind = PlanStep::Kind::close;
    else throw std::invalid_argument("unknown step " + quoted + "; " + plan_expected);
    if (rest.empty()) return step;
    if (step.kind != PlanStep::Kind::restart)
        throw std::invalid_argument("step " + quoted + ": only restart takes a delay");
    try {
        step.delay = parse_duration(rest);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("step " + quoted + ": " + e.what());
    }
    return step;
}

}  // namespace

// Restart types, strategies, restart limits
RestartType parse_restart_type(std::string_view text)
{
    if (text == "permanent" || text == "always") return RestartType::permanent;
    if (text == "transient" || text == "on-failure") return RestartType::transient;
    if (text == "temporary" || text == "never") return RestartType::temporary;
    throw std::invalid_argument("expected permanent, transient or temporary (or always, on-failure, never)");
}

std::string to_string(RestartType type)
{
    switch (type) {
    case RestartType::permanent: return "permanent";
    case RestartType::transient: return "transient";
    case RestartType::temporary: return "temporary";
    }
    return "?";
}

Strategy parse_strategy(std::string_view text)
{
    if (text == "one") return Strategy::one;
    if (text == "rest") return Strategy::rest;
    if (text == "all") return Strategy::all;
    throw std::invalid_argument("expected one, rest or all");
}

std::string to_string(Strategy strategy)
{
    switch (strategy) {
    case Strategy::one: return "one";
    case Strategy::rest: return "rest";
    case Strategy::all: return "all";
    }
    return "?";
}

OnRestartLimit parse_on_restart_limit(std::string_view text)
{
    if (text == "backoff") return OnRestartLimit::backoff;
    if (text == "wait") return OnRestartLimit::wait;
    if (text == "stop") return OnRestartLimit::stop;
    throw std::invalid_argument("expected backoff, wait or stop");
}

std::string to_string(OnRestartLimit action)
{
    switch (action) {
    case OnRestartLimit::backoff: return "backoff";
    case OnRestartLimit::wait: return "wait";
    case OnRestartLimit::stop: return "stop";
    }
    return "?";
}

// Plans
std::vector<PlanStep> parse_plan(std::string_view text)
{
    if (trim(text).empty()) throw std::invalid_argument("the plan is empty; " + std::string(plan_expected));
    std::vector<PlanStep> steps;
    while (true) {
        // The pool has failed at `stop`: a step after it could never be taken.
        const std::size_t comma = std::min(text.find(','), text.size());
        const std::string_view step_text = trim(text.substr(0, comma));
        const PlanStep step = parse_step(step_text, steps.size() + 1);
        if (!steps.empty() && steps.back().kind == PlanStep::Kind::stop)
            throw std::invalid_argument("step '" + std::string(step_text) + "' comes after stop and would never be taken");
        steps.push_back(step);
        if (comma == text.size()) break;
        text.remove_prefix(comma + 1);
    }
    return steps;
}

std::string to_string(const std::vector<PlanStep>& steps)
{
    std::string out;
    for (const PlanStep& step : steps) {
        if (!out.empty()) out += ", ";
        switch (step.kind) {
        case PlanStep::Kind::restart:
            out += step.delay.count() > 0 ? "restart " + compact(step.delay) : "restart";
            break;
        case PlanStep::Kind::wait: out += "wait"; break;
        case PlanStep::Kind::stop: out += "stop"; break;
        case PlanStep::Kind::close: out += "delete"; break;
        }
    }
    return out;
}

std::optional<unsigned> parse_plan_count(std::string_view text)
{
    constexpr const char* expected = "expected a count of at least 1, or infinity";
    if (text == "infinity") return std::nullopt;
    unsigned count = 0;
    try {
        count = parse_unsigned(text);
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument(expected);
    }
    if (count == 0) throw std::invalid_argument(expected);
    return count;
}

std::string plan_count_to_string(std::optional<unsigned> count)
{
    return count ? std::to_string(*count) : "infinity";
}

}  // namespace herd
