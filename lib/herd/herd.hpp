// The umbrella header: everything an application needs.
//
//   class Hello : public herd::Worker { int run() override { ... } };
//   int main(int argc, char** argv) { return herd::main<Hello>(argc, argv); }
#pragma once

#include <herd/export.hpp>
#include <herd/hooks.hpp>
#include <herd/options.hpp>
#include <herd/worker.hpp>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>

#include <functional>
#include <memory>
#include <string>

namespace herd {

/// An application: how to make its worker, which options it adds, its hooks.
struct App {
    std::string version = "0.0.0";
    std::function<std::unique_ptr<Worker>()> make_worker;
    std::function<void(boost::program_options::options_description&)> add_options;
    ManagerHooks hooks;
};

/// Parse the command line, bind the listeners, run the manager; returns the exit code.
HERD_API int run(int argc, char** argv, App app);

/// Exec mode, the `herd` binary: `herd [options] -- COMMAND [ARGS...]` runs copies of COMMAND as
/// the workers (README.md, "Exec mode"); returns the exit code.
HERD_API int run_exec(int argc, char** argv);

/// The one line in an application's main(): `return herd::main<MyWorker>(argc, argv);`.
/// A worker class may add options with `static void add_options(options_description&)`.
template <class W>
int main(int argc, char** argv, App app = {})
{
    app.make_worker = [] { return std::make_unique<W>(); };
    if constexpr (requires(boost::program_options::options_description& d) { W::add_options(d); })
        app.add_options = [](boost::program_options::options_description& d) { W::add_options(d); };
    return run(argc, argv, std::move(app));
}

}  // namespace herd
