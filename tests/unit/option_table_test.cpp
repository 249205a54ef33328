// The table of the standard options: scopes, names, modes (option_table.hpp, DESIGN.md §2 and §7a).
#include <herd/config/option_table.hpp>

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using herd::OptionScope;

/// Every standard option of exec mode (a server binary's are the same, without exec mode's own)
/// with the scope DESIGN.md §7a gives it. A new option is added here with its scope decided.
const std::map<std::string, OptionScope> scopes = {
    // Per worker (§2), so per pool (§7a)
    {"workers", OptionScope::pool},
    {"listen", OptionScope::pool},
    {"spare", OptionScope::pool},
    {"restart-limit", OptionScope::pool},
    {"max-worker-age", OptionScope::pool},
    {"max-worker-age-jitter", OptionScope::pool},
    {"max-requests", OptionScope::pool},
    {"max-requests-jitter", OptionScope::pool},
    {"max-worker-memory", OptionScope::pool},
    {"max-worker-memory-window", OptionScope::pool},
    {"heartbeat-interval", OptionScope::pool},
    {"heartbeat-timeout", OptionScope::pool},
    {"boot-timeout", OptionScope::pool},
    {"graceful-timeout", OptionScope::pool},
    {"kill-timeout", OptionScope::pool},
    {"user", OptionScope::pool},
    {"group", OptionScope::pool},
    {"heartbeat", OptionScope::pool},
    {"ready-after", OptionScope::pool},
    {"stop-signal", OptionScope::pool},
    {"stdout-level", OptionScope::pool},
    {"stderr-level", OptionScope::pool},
    // How a pool is supervised (§7a)
    {"restart", OptionScope::pool},
    {"plan", OptionScope::pool},
    {"plan-count", OptionScope::pool},
    {"on-restart-limit", OptionScope::pool},
    // Manager-wide (§7a), and the manager process's own
    {"control", OptionScope::manager},
    {"pid-file", OptionScope::manager},
    {"log-level", OptionScope::manager},
    {"log-file", OptionScope::manager},
    {"upgrade-timeout", OptionScope::manager},
    {"restart-strategy", OptionScope::manager},
    {"name", OptionScope::manager},
    {"config", OptionScope::manager},
    {"daemon", OptionScope::manager},
    {"check", OptionScope::manager},
    {"adopt-check", OptionScope::manager},
    {"help", OptionScope::manager},
    {"version", OptionScope::manager},
};

std::vector<std::string> names_of(const std::vector<herd::OptionSpec>& specs)
{
    std::vector<std::string> names;
    for (const auto& spec : specs) names.push_back(herd::long_name(spec));
    return names;
}

}  // namespace

TEST_CASE("every option has a scope: the manager's or a pool's")
{
    for (const bool exec : {false, true}) {
        for (const herd::OptionSpec& spec : herd::standard_specs(exec ? herd::exec_defaults() : herd::Options{}, exec)) {
            const std::string name = herd::long_name(spec);
            CAPTURE(exec);
            CAPTURE(name);
            CHECK((spec.scope == OptionScope::manager || spec.scope == OptionScope::pool));
            REQUIRE(scopes.contains(name));
            CHECK(spec.scope == scopes.at(name));
        }
    }
    CHECK(herd::standard_specs(herd::exec_defaults(), true).size() == scopes.size());
}

TEST_CASE("the manager-wide options of DESIGN.md §7a are the manager's")
{
    std::map<std::string, OptionScope> table;
    for (const herd::OptionSpec& spec : herd::standard_specs(herd::exec_defaults(), true))
        table[herd::long_name(spec)] = spec.scope;
    for (const char* name : {"control", "pid-file", "log-level", "log-file", "upgrade-timeout", "restart-strategy"}) {
        CAPTURE(name);
        REQUIRE(table.contains(name));
        CHECK(table.at(name) == OptionScope::manager);
    }
    // ... and user and group are a pool's: each pool's workers may run as their own user.
    CHECK(table.at("user") == OptionScope::pool);
    CHECK(table.at("group") == OptionScope::pool);
}

TEST_CASE("a server binary's options are exec mode's without --heartbeat, --ready-after and --stop-signal")
{
    std::vector<std::string> exec = names_of(herd::standard_specs(herd::exec_defaults(), true));
    std::erase_if(exec, [](const std::string& name) {
        return name == "heartbeat" || name == "ready-after" || name == "stop-signal";
    });
    CHECK(names_of(herd::standard_specs(herd::Options{}, false)) == exec);
}

TEST_CASE("every option has one long name")
{
    const std::vector<std::string> names = names_of(herd::standard_specs(herd::exec_defaults(), true));
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
}
