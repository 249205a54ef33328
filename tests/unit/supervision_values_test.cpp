// The text of the supervision values of several pools: restart types, strategies, restart limits,
// plans and their counts (supervision_values.hpp, DESIGN.md §7a).
#include <herd/config/supervision_values.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using herd::PlanStep;
using Steps = std::vector<PlanStep>;

namespace {

const PlanStep restart_now{PlanStep::Kind::restart, {}};
const PlanStep wait_step{PlanStep::Kind::wait, {}};
const PlanStep stop_step{PlanStep::Kind::stop, {}};
const PlanStep delete_step{PlanStep::Kind::close, {}};

PlanStep restart_after(herd::Duration delay)
{
    return {PlanStep::Kind::restart, delay};
}

/// What parse_plan says about `text`, or "" if it takes it.
std::string plan_error(const std::string& text)
{
    try {
        herd::parse_plan(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("restart types have OTP's names and the aliases always, on-failure and never")
{
    using herd::RestartType;
    CHECK(herd::parse_restart_type("permanent") == RestartType::permanent);
    CHECK(herd::parse_restart_type("transient") == RestartType::transient);
    CHECK(herd::parse_restart_type("temporary") == RestartType::temporary);
    CHECK(herd::parse_restart_type("always") == RestartType::permanent);
    CHECK(herd::parse_restart_type("on-failure") == RestartType::transient);
    CHECK(herd::parse_restart_type("never") == RestartType::temporary);
    for (RestartType t : {RestartType::permanent, RestartType::transient, RestartType::temporary})
        CHECK(herd::parse_restart_type(herd::to_string(t)) == t);
    CHECK_THROWS_WITH_AS(herd::parse_restart_type("Permanent"),
                         "expected permanent, transient or temporary (or always, on-failure, never)",
                         std::invalid_argument);
    CHECK_THROWS_AS(herd::parse_restart_type(""), std::invalid_argument);
}

TEST_CASE("strategies are one, rest and all")
{
    using herd::Strategy;
    for (Strategy s : {Strategy::one, Strategy::rest, Strategy::all})
        CHECK(herd::parse_strategy(herd::to_string(s)) == s);
    CHECK(herd::to_string(Strategy::rest) == "rest");
    CHECK_THROWS_WITH_AS(herd::parse_strategy("one_for_one"), "expected one, rest or all", std::invalid_argument);
}

TEST_CASE("past the restart limit a pool backs off, waits or stops")
{
    using herd::OnRestartLimit;
    for (OnRestartLimit a : {OnRestartLimit::backoff, OnRestartLimit::wait, OnRestartLimit::stop})
        CHECK(herd::parse_on_restart_limit(herd::to_string(a)) == a);
    CHECK(herd::to_string(OnRestartLimit::wait) == "wait");
    CHECK_THROWS_WITH_AS(herd::parse_on_restart_limit("exit"), "expected backoff, wait or stop", std::invalid_argument);
}

TEST_CASE("a plan is a list of steps; blanks around them do not matter")
{
    CHECK(herd::parse_plan("restart, restart 5s, wait, stop") == Steps{restart_now, restart_after(5s), wait_step, stop_step});
    CHECK(herd::parse_plan("  restart ,restart   250ms,delete,wait  ") ==
          Steps{restart_now, restart_after(250ms), delete_step, wait_step});
    CHECK(herd::parse_plan("restart\t1.5s") == Steps{restart_after(1500ms)});
    CHECK(herd::parse_plan("restart 2") == Steps{restart_after(2s)});
    CHECK(herd::parse_plan("delete") == Steps{delete_step});
}

TEST_CASE("a plan shows in the syntax it is read in, and reads back the same")
{
    const Steps steps{restart_now, restart_after(5s), restart_after(250ms), restart_after(1500ms),
                      wait_step,   delete_step,       stop_step};
    CHECK(herd::to_string(steps) == "restart, restart 5s, restart 250ms, restart 1.5s, wait, delete, stop");
    CHECK(herd::parse_plan(herd::to_string(steps)) == steps);
    for (const char* text : {"restart", "wait, restart 3m", "delete, delete, restart 90s", "restart 0s, stop"}) {
        CAPTURE(text);
        const Steps parsed = herd::parse_plan(text);
        CHECK(herd::parse_plan(herd::to_string(parsed)) == parsed);
    }
    CHECK(herd::to_string(herd::parse_plan("restart 0s")) == "restart");
}

TEST_CASE("a plan that is empty, or has an empty, unknown or malformed step, is refused naming the step")
{
    const std::string expected = "expected restart, restart D (a delay such as 5s), wait, stop or delete";
    CHECK(plan_error("") == "the plan is empty; " + expected);
    CHECK(plan_error("  ") == "the plan is empty; " + expected);
    CHECK(plan_error("restart,,wait") == "step 2 is empty; " + expected);
    CHECK(plan_error("restart, wait,") == "step 3 is empty; " + expected);
    CHECK(plan_error("restart, rstart") == "unknown step 'rstart'; " + expected);
    CHECK(plan_error("Restart") == "unknown step 'Restart'; " + expected);
    CHECK(plan_error("restart5s") == "unknown step 'restart5s'; " + expected);
    CHECK(plan_error("restart 5x") == "step 'restart 5x': expected a duration such as 250ms, 2s, 1.5s, 3m or 1h");
    CHECK(plan_error("restart -5s") == "step 'restart -5s': a duration cannot be negative");
    CHECK(plan_error("wait 5s") == "step 'wait 5s': only restart takes a delay");
    CHECK(plan_error("delete 1s") == "step 'delete 1s': only restart takes a delay");
}

TEST_CASE("a step after stop is refused: the pool has failed by then")
{
    CHECK(plan_error("restart, stop, wait") == "step 'wait' comes after stop and would never be taken");
    CHECK(plan_error("stop, stop") == "step 'stop' comes after stop and would never be taken");
    CHECK(plan_error("restart, stop").empty());
}

TEST_CASE("a plan count is a number of at least 1, or infinity")
{
    CHECK(herd::parse_plan_count("3") == 3u);
    CHECK(herd::parse_plan_count("1") == 1u);
    CHECK_FALSE(herd::parse_plan_count("infinity").has_value());
    CHECK(herd::plan_count_to_string(3u) == "3");
    CHECK(herd::plan_count_to_string(std::nullopt) == "infinity");
    CHECK(herd::parse_plan_count(herd::plan_count_to_string(7u)) == 7u);
    CHECK_FALSE(herd::parse_plan_count(herd::plan_count_to_string(std::nullopt)).has_value());
    for (const char* bad : {"0", "-1", "", "inf", "3 times", "99999999999"}) {
        CAPTURE(bad);
        CHECK_THROWS_WITH_AS(herd::parse_plan_count(bad), "expected a count of at least 1, or infinity",
                             std::invalid_argument);
    }
}
