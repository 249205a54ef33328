// From argv to a running manager, for both kinds of herd binary: a server built on herd::Worker
// (fork mode, herd::run) and herd itself (exec mode, herd::run_exec). Start-up is the same for
// both: options, listeners, pid file, control socket, daemon, the hand-over after USR2's exec. A
// Mode says what differs: the command line's extras, what --check checks beyond the options, and
// how workers start (the ProcessOps). Internal.
#pragma once

#include <herd/manager/hooks.hpp>
#include <herd/os/identity.hpp>
#include <herd/config/options.hpp>
#include <herd/os/process_ops.hpp>
#include <herd/worker/worker.hpp>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace herd {
class Manager;

/// Exec mode, the `herd` binary: `herd [options] -- COMMAND [ARGS...]` runs copies of COMMAND as
/// the workers (README.md, "Exec mode"); returns the exit code.
int run_exec(int argc, char** argv);
}

namespace herd::detail {

/// What a mode's launcher is made from, once start-up has bound the listeners.
struct Startup {
    boost::asio::io_context& io;
    const CommandLine& command_line;       // as parsed at start
    int& ready_fd;                         // --daemon: the pipe the starting command waits on, else -1
    std::function<Manager&()> manager;     // the manager: there from the first spawn on
    std::function<Identity(const std::string& pool)> identity;   // --user and --group of a pool's current options
};

/// What differs between the kinds of herd binary.
struct Mode {
    OptionsExtension ext;                                     // program and usage are filled in from argv[0]
    std::function<void(const CommandLine&)> check;            // beyond the options; throws UsageError
    /// How one pool's workers start; `listeners` are the pool's (a reload may replace them).
    std::function<std::unique_ptr<ProcessOps>(Startup&, const PoolSpec&, std::vector<Listener>& listeners)> make_ops;
    ManagerHooks hooks;
};

/// Parse, check, bind, daemonize or adopt, then run the manager; returns the exit code.
int run(int argc, char** argv, Mode mode);

}  // namespace herd::detail
