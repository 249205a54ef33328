// The registry of Worker types a binary names in its main (herd.hpp): herd::main<Web, Jobs>.
#include <herd/herd.hpp>

#include <doctest/doctest.h>

#include <boost/program_options.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace po = boost::program_options;

struct Web : herd::Worker {
    static constexpr const char* worker_type = "web";
    static void add_options(po::options_description& d) { d.add_options()("greeting", po::value<std::string>(), ""); }
    int run() override { return 7; }
};

struct Jobs : herd::Worker {
    static constexpr const char* worker_type = "jobs";
    static void add_options(po::options_description& d) { d.add_options()("job-size", po::value<unsigned>(), ""); }
    int run() override { return 8; }
};

struct Plain : herd::Worker {
    int run() override { return 9; }
};

std::vector<std::string> preloaded;   // who preloaded, in order

struct Cached : herd::Worker {
    static constexpr const char* worker_type = "cached";
    static void preload(const herd::Options& o, const po::variables_map&)
    {
        preloaded.push_back("cached with " + std::to_string(o.workers) + " workers");
    }
    int run() override { return 10; }
};

// What herd::main<W...> hands to herd::run, without running anything.
template <class... W>
herd::App registered()
{
    herd::App app;
    herd::detail::register_workers<W...>(app);
    return app;
}

}  // namespace

TEST_CASE("a binary of several Worker types makes each by its name, the first by default")
{
    const herd::App app = registered<Web, Jobs>();
    CHECK(app.type_names() == std::vector<std::string>{"web", "jobs"});
    CHECK(app.make("web")->run() == 7);
    CHECK(app.make("jobs")->run() == 8);
    CHECK(app.make("")->run() == 7);
}

TEST_CASE("an unknown worker type is refused with the names this binary has")
{
    const herd::App app = registered<Web, Jobs>();
    CHECK_THROWS_WITH_AS(app.make("cache"), "unknown worker type 'cache': this binary has web, jobs", std::invalid_argument);
}

TEST_CASE("one Worker type needs no name: it is the default, and no pool can name it")
{
    const herd::App app = registered<Plain>();
    CHECK(app.type_names().empty());
    CHECK(app.make("")->run() == 9);
    CHECK_THROWS_WITH_AS(app.make("web"), "unknown worker type 'web': this binary has no named worker type",
                         std::invalid_argument);
}

TEST_CASE("an App made by hand with only make_worker keeps working")
{
    herd::App app;
    app.make_worker = [] { return std::make_unique<Plain>(); };
    CHECK(app.make("")->run() == 9);
    CHECK(app.type_names().empty());
}

TEST_CASE("every registered type's options are on the command line")
{
    const herd::App app = registered<Web, Jobs>();
    po::options_description d;
    REQUIRE(app.add_options);
    app.add_options(d);
    CHECK(d.find_nothrow("greeting", false));
    CHECK(d.find_nothrow("job-size", false));
    CHECK_FALSE(registered<Plain>().add_options);
    static_assert(herd::detail::names_are_distinct<Web, Jobs>());
    static_assert(!herd::detail::names_are_distinct<Web, Web>());
}

TEST_CASE("a Worker type's static preload becomes the App's preload hook, after the App's own")
{
    preloaded.clear();
    CHECK_FALSE(registered<Web, Jobs>().hooks.preload);   // no type preloads: no hook at all
    herd::App app;
    app.hooks.preload = [](const herd::Options&, const po::variables_map&) { preloaded.push_back("app"); };
    herd::detail::register_workers<Web, Cached>(app);
    REQUIRE(app.hooks.preload);
    herd::Options options;
    options.workers = 3;
    const po::variables_map args;
    app.hooks.preload(options, args);
    CHECK(preloaded == std::vector<std::string>{"app", "cached with 3 workers"});
}
