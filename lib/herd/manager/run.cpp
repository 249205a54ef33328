// herd::run and herd::run_exec: from argv to a running manager. Startup errors end here as one
// line on stderr: exit 2 for bad input, 1 for a runtime failure (address in use, pid file held,
// no permission). Both kinds of binary share this start-up (detail/run.hpp); they differ in the
// Mode: fork mode forks herd::Workers of this program, exec mode execs a command (exec_ops.hpp).
#include <herd/herd.hpp>

#include <herd/manager/run.hpp>
#include <herd/config/pools.hpp>
#include <herd/config/config_file.hpp>
#include <herd/worker/worker_runtime.hpp>
#include <herd/os/child_environment.hpp>
#include <herd/os/daemon.hpp>
#include <herd/os/exec_ops.hpp>
#include <herd/os/fd.hpp>
#include <herd/os/listeners.hpp>
#include <herd/os/log.hpp>
#include <herd/manager/manager.hpp>
#include <herd/os/pid_file.hpp>
#include <herd/os/proctitle.hpp>
#include <herd/os/signals.hpp>
#include <herd/manager/upgrade.hpp>
#include <herd/os/time_slice.hpp>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <optional>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace herd {

namespace {

// Everything checked before a configuration is used, at start and on HUP; throws UsageError.
Identity check(CommandLine& cl, const std::string& program, const detail::Mode& mode)
{
    // --listen addresses were checked as they were parsed; named pools were validated there too,
    // the command line's own options are when they make the one pool.
    if (cl.pools.size() <= 1) validate(cl.options);
    if (cl.options.name.empty()) cl.options.name = program;
    for (auto& pool : cl.pools) {
        if (pool.options.name.empty()) pool.options.name = program;
        resolve_identity(pool.options);   // --user and --group must exist
    }
    if (mode.check) mode.check(cl);
    return resolve_identity(cl.options);
}

std::string read_all(int fd)
{
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "cannot read the hand-over record");
        if (n == 0) return text;
        text.append(buf, std::size_t(n));
    }
}

// The levels of a pool's workers' output: its current options (a reload may change them).
std::function<OutputLevels()> output_levels(detail::Startup& s, const std::string& pool)
{
    return [&s, pool] {
        const Options& o = s.manager().pool_options(pool);
        return OutputLevels{o.stdout_level, o.stderr_level};
    };
}

std::string path_env()
{
    const char* path = std::getenv("PATH");
    return std::string(path ? path : "/usr/local/bin:/usr/bin:/bin");
}

// A pool that runs a command: copies of it, exec'd by the manager (exec mode, or a command pool of
// a server binary)
std::unique_ptr<ProcessOps> exec_ops(detail::Startup& s, const PoolSpec& spec, std::vector<Listener>& listeners)
{
    Program program = resolve_command(spec.command, path_env());
    const Options& o = spec.options;
    std::string shown = program.path;
    for (std::size_t i = 1; i < program.argv.size(); ++i) shown += " " + program.argv[i];
    const std::string who = s.command_line.pools.size() > 1 ? "pool " + spec.name + ": " : "";
    const bool off = o.heartbeat == HeartbeatMode::off || o.heartbeat_timeout.count() == 0;
    if (off && o.ready_after)
        spdlog::info("{}workers run {}; each is ready once it has run {} (--ready-after) and is asked to stop with {}",
                     who, shown, format_duration(*o.ready_after), signal_name(o.stop_signal));
    else if (o.heartbeat == HeartbeatMode::automatic && o.ready_after)
        spdlog::info("{}workers run {}; each is ready at its first heartbeat on HERD_HEARTBEAT_FD or once it has run "
                     "{} (--ready-after), is retired after {} of silence only once it has sent one (--heartbeat "
                     "auto), and is asked to stop with {}",
                     who, shown, format_duration(*o.ready_after), format_duration(o.heartbeat_timeout),
                     signal_name(o.stop_signal));
    else
        spdlog::info("{}workers run {}; each is ready at its first heartbeat on HERD_HEARTBEAT_FD and is asked to "
                     "stop with {}", who, shown, signal_name(o.stop_signal));
    auto ops = std::make_unique<ExecOps>(s.io, PoolSetup{spec.name, "", output_levels(s, spec.name)}, std::move(program),
                                         listeners, [&s, name = spec.name] { return s.identity(name); });
    return ops;
}

// Every pool's command must be one execve can run, at start, in --check and on HUP; in exec mode
// every pool has one.
void check_commands(const CommandLine& cl, bool exec)
{
    for (const auto& pool : cl.pools)   // the one pool `main` without [pool.NAME] sections
        if (exec || !pool.command.empty()) resolve_command(pool.command, path_env());
}

}  // namespace

int detail::run(int argc, char** argv, Mode mode)
{
    // The manager's signals are blocked from the first instruction on, and read from its signalfd
    // once it runs. Until then they wait, queued: a QUIT sent during start-up is acted on, not lost.
    // (A program started in the background by a shell inherits QUIT and INT ignored, and the kernel
    // drops an ignored signal that is not blocked; with the default action it would end the
    // manager half started instead.)
    sigset_t handled;
    ::sigemptyset(&handled);
    for (int s : manager_signals()) ::sigaddset(&handled, s);
    ::pthread_sigmask(SIG_BLOCK, &handled, nullptr);
    const std::string program = std::filesystem::path(argc > 0 ? argv[0] : "herd").filename().string();
    CommandLine cl;
    Identity identity;
    OptionsExtension& ext = mode.ext;
    ext.program = program;
    try {
        cl = parse_command_line(argc, argv, ext);
        if (cl.help) {
            std::cout << cl.help_text;
            return 0;
        }
        if (cl.version) {
            // A server names its own version and herd's; herd itself has only the one.
            if (ext.version.empty()) std::cout << program << " " << HERD_VERSION << "\n";
            else std::cout << program << " " << ext.version << " (herd " << HERD_VERSION << ")\n";
            return 0;
        }
        identity = check(cl, program, mode);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
        return 2;
    }
    Options& options = cl.options;
    if (options.check) {
        // USR2's pre-flight asks whether this binary can adopt the running manager's state.
        if (options.adopt_check && !can_adopt(options.adopt_check)) {
            std::fprintf(stderr, "%s: cannot adopt hand-over version %u (this binary adopts versions 1 to %u)\n",
                         program.c_str(), options.adopt_check, handover_version);
            return 2;
        }
        std::printf("%s: configuration is valid\n", program.c_str());
        return 0;
    }
    // An image started by USR2 (or going back after one) adopts what the previous image handed over.
    std::optional<Handover> handover;
    if (const char* fd_text = std::getenv(handover_env)) {
        const int fd = std::atoi(fd_text);
        ::unsetenv(handover_env);
        try {
            handover = decode_handover(read_all(fd));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: cannot adopt the running manager's state: %s\n", program.c_str(), e.what());
            return 1;
        }
        ::close(fd);
    }

    int ready_fd = -1;
    try {
        log::setup(options.log_level, options.log_file, "manager");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
        return 1;
    }
    if (options.daemon && !handover) {
        try {
            if (int code = daemonize(ready_fd); code >= 0) return code;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
            return 1;
        }
        log::set_role("manager");   // the pid changed
    }

    // Listeners and pid file: failures here are runtime failures, exit 1. Each pool serves its own sockets.
    const std::vector<PoolSpec>& pools = cl.pools;
    std::deque<std::vector<Listener>> listeners(pools.size());
    // One line on stderr (and to the command waiting for a daemon), nothing left bound.
    const auto failed_at_start = [&](const std::exception& e) {
        const std::string line = program + ": " + e.what();
        std::fprintf(stderr, "%s\n", line.c_str());
        report(ready_fd, line + "\n");
        for (auto& l : listeners) close_listeners(l, true);
        return 1;
    };
    std::optional<PidFile> pid_file;
    int control_fd = -1;
    std::string control_path = options.control;
    try {
        if (handover) {
            for (std::size_t i = 0; i < pools.size(); ++i) {
                const auto from = std::find_if(handover->pools.begin(), handover->pools.end(),
                                               [&](const HandoverPool& p) { return p.name == pools[i].name; });
                // A pool new in this configuration binds its own sockets.
                listeners[i] = from != handover->pools.end() ? from->listeners : bind_listeners(pools[i].options.listen);
                for (const auto& l : listeners[i]) ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
            }
            for (const auto& from : handover->pools)
                for (const auto& l : from.listeners) ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
            if (handover->pid_file_fd >= 0) pid_file.emplace(PidFile::adopt(handover->pid_file_path, handover->pid_file_fd));
            if (handover->control_fd >= 0) {
                control_fd = handover->control_fd;
                control_path = handover->control_path;
                ::fcntl(control_fd, F_SETFD, FD_CLOEXEC);
            }
        } else {
            auto systemd = adopt_systemd_listeners();
            // Both would be a guess at what the operator meant: one socket too many, or one missing.
            if (!systemd.empty() && (!options.listen.empty() || pools.size() > 1))
                throw UsageError((pools.size() > 1 ? std::string("several pools are") : "--listen " + options.listen.front() + " is") +
                                 " refused: systemd passed " + std::to_string(systemd.size()) +
                                 (systemd.size() == 1 ? " socket" : " sockets") +
                                 " (LISTEN_FDS); listen by one or the other");
            for (std::size_t i = 0; i < pools.size(); ++i)
                listeners[i] = !systemd.empty() ? std::move(systemd) : bind_listeners(pools[i].options.listen);
            if (!options.pid_file.empty()) pid_file.emplace(PidFile::acquire(options.pid_file, ::getpid()));
        }
        // An image adopting a record of version 1 (no control socket yet) binds its own.
        if (control_fd < 0 && !control_path.empty()) control_fd = control::Server::bind(control_path);
    } catch (const UsageError& e) {
        failed_at_start(e);
        return 2;
    } catch (const std::exception& e) {
        return failed_at_start(e);
    }
    if (!handover) {
        for (std::size_t i = 0; i < pools.size(); ++i)
            for (const auto& l : listeners[i]) {
                if (pools.size() == 1) spdlog::info("listening on {}", local_address(l.fd));
                else spdlog::info("pool {}: listening on {}", pools[i].name, local_address(l.fd));
            }
    }
    if (control_fd >= 0 && !(handover && handover->control_fd >= 0)) spdlog::info("control socket at {}", control_path);

    proctitle::init(argc, argv);
    proctitle::set(options.name + ": manager");
    ::prctl(PR_SET_PDEATHSIG, 0);
    if (yield_to_workers()) spdlog::debug("manager time slice 50 ms: serving processes that wake up preempt the manager");

    // The manager and how each pool's children start
    boost::asio::io_context io;
    const std::vector<int> io_fds = event_descriptors(io);   // closed in every forked child
    std::vector<std::unique_ptr<ProcessOps>> ops;
    std::unique_ptr<Manager> manager;
    detail::Startup startup{io, cl, ready_fd, [&]() -> Manager& { return *manager; },
                            [&](const std::string& pool) {
                                // The identity resolved at start, unless a pool's --user or --group differ or
                                // a reload changed them since.
                                const Options& now = manager->pool_options(pool);
                                const bool same = now.user == options.user && now.group == options.group;
                                return same ? identity : resolve_identity(now);
                            }};
    std::vector<ManagedPool> managed;
    try {
        // Preload: the application's shared state, built once here so that every worker forked
        // from now on shares its pages copy-on-write (after --daemon, so the manager builds it)
        if (mode.hooks.preload) {
            const auto started = std::chrono::steady_clock::now();
            try {
                mode.hooks.preload(options, options.app_args.map ? *options.app_args.map : *cl.app_args);
            } catch (const std::exception& e) {
                throw std::runtime_error(std::string("preload failed: ") + e.what());
            }
            spdlog::info("manager {} preloaded the application in {}", ::getpid(),
                         format_duration(std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - started)));
        }
        for (std::size_t i = 0; i < pools.size(); ++i) {
            ops.push_back(mode.make_ops(startup, pools[i], listeners[i]));
            managed.push_back(ManagedPool{pools[i].name, pools[i].options, pools[i].supervision, program_of(pools[i]),
                                          *ops.back(), listeners[i]});
        }
    } catch (const std::exception& e) {
        return failed_at_start(e);
    }
    manager = std::make_unique<Manager>(io, options, cl.strategy, std::move(managed), mode.hooks);
    for (int fd : io_fds) manager->keep_private(fd);
    if (pid_file) manager->set_pid_file(pid_file->fd(), pid_file->path());
    if (control_fd >= 0) manager->set_control(control_fd, control_path);
    manager->set_binary(handover ? handover->binary : resolve_binary(cl.argv.empty() ? program : cl.argv[0]), cl.argv);
    // HUP parses the same command line again, with the config file as it is now.
    manager->set_reread([&] {
        std::vector<const char*> args;
        for (const auto& a : cl.argv) args.push_back(a.c_str());
        CommandLine fresh = parse_command_line(int(args.size()), args.data(), ext);
        check(fresh, program, mode);
        return fresh;
    });
    // A pool a reload adds: its process ops, made as at start (the manager keeps them and its sockets).
    manager->set_pool_factory([&](const PoolSpec& spec, std::vector<Listener>& sockets) {
        return mode.make_ops(startup, spec, sockets);
    });
    if (handover) manager->adopt(*handover);
    manager->on_first_ready([&] {
        report(ready_fd, "ok\n");
        if (ready_fd >= 0) ::close(std::exchange(ready_fd, -1));
    });

    int code = 1;
    try {
        code = manager->run();
    } catch (const std::exception& e) {
        spdlog::critical("manager failed: {}", e.what());
    }
    for (auto& l : listeners) close_listeners(l, true);
    return code;
}

// Fork mode: workers are herd::Workers of this program, forked by the manager (and pools with a
// command, exec'd)
int run(int argc, char** argv, App app)
{
    detail::Mode mode;
    mode.ext.version = app.version;
    mode.ext.add_options = app.add_options;
    mode.ext.worker_types = app.type_names();
    mode.hooks = app.hooks;
    mode.check = [names = app.type_names()](const CommandLine& cl) {
        check_commands(cl, false);
        // The parser checks `worker =` against the names; a binary that named none is checked here.
        for (const auto& pool : cl.pools)
            if (!pool.worker.empty() && std::find(names.begin(), names.end(), pool.worker) == names.end())
                throw UsageError(config_location(cl.options.config, pool.line) + "unknown worker type '" +
                                 pool.worker + "': this binary has no named worker type");
    };
    mode.make_ops = [types = std::make_shared<const App>(app)](detail::Startup& s, const PoolSpec& spec,
                                                               std::vector<Listener>& listeners)
        -> std::unique_ptr<ProcessOps> {
        if (!spec.command.empty()) return exec_ops(s, spec, listeners);
        auto ops = std::make_unique<ForkOps>(
            s.io, PoolSetup{spec.name, spec.worker, output_levels(s, spec.name)},
            [&s, &listeners, types](const SpawnRequest& request) {
                if (s.ready_fd >= 0) ::close(s.ready_fd);
                forget_manager_variables();   // systemd hears the manager alone
                const Options& opts = s.manager().pool_options(request.pool);   // after a reload, the new ones
                log::set_role(worker_role(request.pool, request.slot));
                proctitle::set(worker_title(opts.name, request.pool, request.slot, request.generation));
                if (const int err = take_identity(s.identity(std::string(request.pool))))
                    throw std::system_error(err, std::generic_category(), "cannot switch to --user or --group");
                auto worker = types->make(request.worker_type);
                detail::WorkerRuntime runtime(*worker, {request.slot, request.generation, request.heartbeat_fd, &opts,
                                                        opts.app_args.map ? opts.app_args.map.get()
                                                                          : s.command_line.app_args.get(),
                                                        listeners, request.beat});
                return runtime.run();
            },
            spec.options.spare > 0);   // --spare 0: no extra process at all, not even a standby
        ops->set_child_setup([&s, own = spec.name] { s.manager().close_in_child(own); });
        return ops;
    };
    return detail::run(argc, argv, std::move(mode));
}

// Exec mode: workers are copies of each pool's command (the one after `--`, or its `command =`)
int run_exec(int argc, char** argv)
{
    detail::Mode mode;
    mode.ext.version = "";   // --version: herd's own
    mode.ext.accepts_command = true;
    mode.ext.defaults = exec_defaults();
    mode.check = [](const CommandLine& cl) { check_commands(cl, true); };
    mode.make_ops = [](detail::Startup& s, const PoolSpec& spec, std::vector<Listener>& listeners) {
        return exec_ops(s, spec, listeners);
    };
    return detail::run(argc, argv, std::move(mode));
}

}  // namespace herd
