// herd::run: from argv to a running manager. Startup errors end here as one line on stderr:
// exit 2 for bad input, 1 for a runtime failure (address in use, pid file held, no permission).
#include <herd/herd.hpp>

#include <herd/detail/worker_runtime.hpp>
#include <herd/listeners.hpp>
#include <herd/log.hpp>
#include <herd/manager.hpp>
#include <herd/pid_file.hpp>
#include <herd/proctitle.hpp>
#include <herd/upgrade.hpp>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <iostream>
#include <optional>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace herd {

namespace {

struct Identity {
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::string user;
};

// --user / --group are resolved at start: a typo is a usage error, not a worker crash loop.
Identity resolve_identity(const Options& o)
{
    Identity id;
    if (!o.user.empty()) {
        const passwd* pw = ::getpwnam(o.user.c_str());
        if (!pw) throw UsageError("invalid value '" + o.user + "' for --user: no such user");
        id.uid = pw->pw_uid;
        id.gid = pw->pw_gid;
        id.user = o.user;
    }
    if (!o.group.empty()) {
        const group* gr = ::getgrnam(o.group.c_str());
        if (!gr) throw UsageError("invalid value '" + o.group + "' for --group: no such group");
        id.gid = gr->gr_gid;
    }
    return id;
}

// Everything checked before a configuration is used, at start and on HUP; throws UsageError.
Identity check(Options& o, const std::string& program)
{
    validate(o);
    for (const auto& a : o.listen) {
        try {
            parse_listen(a);
        } catch (const std::invalid_argument& e) {
            throw UsageError("invalid value " + std::string(e.what()) + " for --listen");
        }
    }
    if (o.name.empty()) o.name = program;
    return resolve_identity(o);
}

void drop_privileges(const Identity& id)
{
    if (id.gid) {
        if (::setgroups(0, nullptr) != 0 && errno != EPERM) throw std::system_error(errno, std::generic_category(), "setgroups");
        if (::setgid(*id.gid) != 0) throw std::system_error(errno, std::generic_category(), "cannot switch to group");
    }
    if (id.uid) {
        if (::initgroups(id.user.c_str(), id.gid.value_or(0)) != 0 && errno != EPERM) {
        }
        if (::setuid(*id.uid) != 0) throw std::system_error(errno, std::generic_category(), "cannot switch to user");
    }
}

// Daemon: the starting command waits on a pipe until the pool is ready (or the manager failed).
int daemonize(int& ready_fd)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    std::fflush(nullptr);
    const pid_t first = ::fork();
    if (first < 0) throw std::system_error(errno, std::generic_category(), "cannot fork");
    if (first > 0) {
        ::close(fds[1]);
        std::string message;
        char buf[512];
        ssize_t n;
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
            if (n > 0) message.append(buf, std::size_t(n));
        if (message.starts_with("ok")) return 0;
        if (message.empty()) message = "the manager exited before its workers were ready (see the log)";
        std::fprintf(stderr, "%s\n", message.c_str());
        return 1;
    }
    ::close(fds[0]);
    ::setsid();
    if (const pid_t second = ::fork(); second != 0) ::_exit(second < 0 ? 1 : 0);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::close(null);
    }
    ready_fd = fds[1];
    return -1;   // continue as the daemon
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

void report(int fd, const std::string& message)
{
    if (fd < 0) return;
    [[maybe_unused]] auto n = ::write(fd, message.data(), message.size());
}

}  // namespace

int run(int argc, char** argv, App app)
{
    const std::string program = std::filesystem::path(argc > 0 ? argv[0] : "herd").filename().string();
    CommandLine cl;
    Identity identity;
    OptionsExtension ext;
    ext.program = program;
    ext.version = app.version;
    ext.usage = program + " [options]";
    ext.add_options = app.add_options;
    try {
        cl = parse_command_line(argc, argv, ext);
        if (cl.help) {
            std::cout << cl.help_text;
            return 0;
        }
        if (cl.version) {
            std::cout << program << " " << app.version << " (herd " << HERD_VERSION << ")\n";
            return 0;
        }
        identity = check(cl.options, program);
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

    // Listeners and pid file: failures here are runtime failures, exit 1
    std::vector<Listener> listeners;
    std::optional<PidFile> pid_file;
    int control_fd = -1;
    std::string control_path = options.control;
    try {
        if (handover) {
            listeners = handover->listeners;
            for (const auto& l : listeners) ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
            if (handover->pid_file_fd >= 0) pid_file.emplace(PidFile::adopt(handover->pid_file_path, handover->pid_file_fd));
            if (handover->control_fd >= 0) {
                control_fd = handover->control_fd;
                control_path = handover->control_path;
                ::fcntl(control_fd, F_SETFD, FD_CLOEXEC);
            }
        } else {
            listeners = adopt_systemd_listeners();
            if (listeners.empty()) listeners = bind_listeners(options.listen);
            if (!options.pid_file.empty()) pid_file.emplace(PidFile::acquire(options.pid_file, ::getpid()));
        }
        // An image adopting a record of version 1 (no control socket yet) binds its own.
        if (control_fd < 0 && !control_path.empty()) control_fd = control::Server::bind(control_path);
    } catch (const std::exception& e) {
        const std::string line = program + ": " + e.what();
        std::fprintf(stderr, "%s\n", line.c_str());
        report(ready_fd, line + "\n");
        close_listeners(listeners, true);
        return 1;
    }
    if (!handover)
        for (const auto& l : listeners) spdlog::info("listening on {}", local_address(l.fd));
    if (control_fd >= 0 && !(handover && handover->control_fd >= 0)) spdlog::info("control socket at {}", control_path);

    proctitle::init(argc, argv);
    proctitle::set(options.name + ": manager");
    ::prctl(PR_SET_PDEATHSIG, 0);
    if (yield_to_workers()) spdlog::debug("manager time slice 50 ms: serving processes that wake up preempt the manager");

    // The manager and how its children start
    boost::asio::io_context io;
    const auto* args = cl.app_args.get();
    std::unique_ptr<Manager> manager;
    ForkOps ops([&](const SpawnRequest& request) {
        if (ready_fd >= 0) ::close(ready_fd);
        const Options& opts = manager->options();   // after a reload, the new ones
        const std::string role = "worker[" + std::to_string(request.slot) + "]";
        log::set_role(role);
        proctitle::set(opts.name + ": " + role + " gen " + std::to_string(request.generation));
        // The identity resolved at start, unless a reload changed --user or --group since.
        const bool same = opts.user == options.user && opts.group == options.group;
        drop_privileges(same ? identity : resolve_identity(opts));
        auto worker = app.make_worker();
        detail::WorkerRuntime runtime(*worker, {request.slot, request.generation, request.heartbeat_fd, &opts, args,
                                                listeners});
        return runtime.run();
    }, options.spare > 0);   // --spare 0: no extra process at all, not even a standby
    manager = std::make_unique<Manager>(io, options, listeners, ops, app.hooks);
    ops.set_child_setup([&] { manager->close_in_child(); });
    if (pid_file) manager->set_pid_file(pid_file->fd(), pid_file->path());
    if (control_fd >= 0) manager->set_control(control_fd, control_path);
    manager->set_binary(handover ? handover->binary : resolve_binary(cl.argv.empty() ? program : cl.argv[0]), cl.argv);
    // HUP parses the same command line again, with the config file as it is now.
    manager->set_reread([&] {
        std::vector<const char*> args;
        for (const auto& a : cl.argv) args.push_back(a.c_str());
        Options fresh = parse_command_line(int(args.size()), args.data(), ext).options;
        check(fresh, program);
        return fresh;
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
    close_listeners(listeners, true);
    return code;
}

}  // namespace herd
