// The umbrella header: everything an application needs.
//
//   class Hello : public herd::Worker { int run() override { ... } };
//   int main(int argc, char** argv) { return herd::main<Hello>(argc, argv); }
//
// A binary with several Worker types (one per pool, docs/tutorial.md, "Several pools") registers them all;
// each names itself, and a pool's `worker = NAME` picks one:
//
//   class Web : public herd::Worker { public: static constexpr const char* worker_type = "web"; ... };
//   class Jobs : public herd::Worker { public: static constexpr const char* worker_type = "jobs"; ... };
//   int main(int argc, char** argv) { return herd::main<Web, Jobs>(argc, argv); }
#pragma once

#include <herd/export.hpp>
#include <herd/hooks.hpp>
#include <herd/option_types.hpp>
#include <herd/options.hpp>
#include <herd/worker.hpp>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// A herd::Worker type of this binary: the name a pool's `worker =` gives, how to make one, the
/// options it adds.
struct WorkerType {
    std::string name;   // W::worker_type; empty for the one type of herd::main<W> when W names none
    std::function<std::unique_ptr<Worker>()> make;
    std::function<void(boost::program_options::options_description&)> add_options;
    std::function<void(const Options&, const boost::program_options::variables_map&)> preload;   // W::preload, if any
};

/// An application: how to make its workers, which options it adds, its hooks.
struct App {
    std::string version = "0.0.0";
    std::function<std::unique_ptr<Worker>()> make_worker;   // the default type: the first registered
    std::function<void(boost::program_options::options_description&)> add_options;   // every type's
    ManagerHooks hooks;
    std::vector<WorkerType> worker_types;                   // in registration order

    /// A new Worker of the type named `type`; "" is the default type (make_worker). Throws
    /// std::invalid_argument naming the type and the ones this binary has.
    std::unique_ptr<Worker> make(std::string_view type) const
    {
        if (type.empty() && make_worker) return make_worker();
        for (const WorkerType& t : worker_types)
            if (t.name == type && t.make) return t.make();
        const std::vector<std::string> names = type_names();
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        throw std::invalid_argument("unknown worker type '" + std::string(type) + "': this binary has " +
                                    (known.empty() ? std::string("no named worker type") : known));
    }
    /// The names a pool's `worker =` may give, in registration order.
    std::vector<std::string> type_names() const
    {
        std::vector<std::string> names;
        for (const WorkerType& t : worker_types)
            if (!t.name.empty()) names.push_back(t.name);
        return names;
    }
};

/// Parse the command line, bind the listeners, run the manager; returns the exit code.
HERD_API int run(int argc, char** argv, App app);

namespace detail {

template <class W>
concept NamedWorker = requires { std::string_view(W::worker_type); };

template <class W>
WorkerType worker_type()
{
    WorkerType t;
    if constexpr (NamedWorker<W>) t.name = std::string(std::string_view(W::worker_type));
    t.make = [] { return std::make_unique<W>(); };
    if constexpr (requires(boost::program_options::options_description& d) { W::add_options(d); })
        t.add_options = [](boost::program_options::options_description& d) { W::add_options(d); };
    if constexpr (requires(const Options& o, const boost::program_options::variables_map& a) { W::preload(o, a); })
        t.preload = [](const Options& o, const boost::program_options::variables_map& a) { W::preload(o, a); };
    return t;
}

template <class... W>
consteval bool names_are_distinct()
{
    const std::string_view names[] = {std::string_view(W::worker_type)...};
    for (std::size_t i = 0; i < sizeof...(W); ++i) {
        if (names[i].empty()) return false;
        for (std::size_t j = i + 1; j < sizeof...(W); ++j)
            if (names[i] == names[j]) return false;
    }
    return true;
}

}  // namespace detail

namespace detail {

/// What herd::main<W, More...> puts in the App: the types, the default, every type's options.
template <class W, class... More>
void register_workers(App& app)
{
    if constexpr (sizeof...(More) > 0) {
        static_assert((NamedWorker<W> && ... && NamedWorker<More>),
                      "several Worker types: each names itself, static constexpr const char* worker_type = \"...\"");
        static_assert(names_are_distinct<W, More...>(), "each Worker type needs a name of its own, not empty");
    }
    app.worker_types = {worker_type<W>(), worker_type<More>()...};
    app.make_worker = app.worker_types.front().make;
    std::vector<std::function<void(boost::program_options::options_description&)>> adds;
    for (const WorkerType& t : app.worker_types)
        if (t.add_options) adds.push_back(t.add_options);
    if (!adds.empty())
        app.add_options = [adds](boost::program_options::options_description& d) {
            for (const auto& add : adds) add(d);
        };
    // Every type's preload, after the App's own hook
    std::vector<std::function<void(const Options&, const boost::program_options::variables_map&)>> preloads;
    if (app.hooks.preload) preloads.push_back(app.hooks.preload);
    for (const WorkerType& t : app.worker_types)
        if (t.preload) preloads.push_back(t.preload);
    if (preloads.size() > 1 || (preloads.size() == 1 && !app.hooks.preload))
        app.hooks.preload = [preloads](const Options& o, const boost::program_options::variables_map& a) {
            for (const auto& preload : preloads) preload(o, a);
        };
}

}  // namespace detail

/// The one line in an application's main(): `return herd::main<MyWorker>(argc, argv);`, or with
/// several Worker types `herd::main<Web, Jobs>(argc, argv)` (the first is the default: a pool
/// that names no `worker =` runs it). A worker class may add options with
/// `static void add_options(options_description&)`; every type's options are on the command line.
/// A worker class may build state once in the manager, before the first fork, with
/// `static void preload(const herd::Options&, const boost::program_options::variables_map& args)`
/// (see ManagerHooks::preload); its workers read it.
template <class W, class... More>
int main(int argc, char** argv, App app = {})
{
    detail::register_workers<W, More...>(app);
    return run(argc, argv, std::move(app));
}

}  // namespace herd
