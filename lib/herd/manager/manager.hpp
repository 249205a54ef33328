// The manager: the imperative shell around the policy core. It owns the pool's state, turns
// signals, heartbeats and exits into events, asks plan() what to do and does it, one syscall
// and one log line per action. Single-threaded; it sleeps until the next event or deadline.
#pragma once

#include <herd/manager/control.hpp>
#include <herd/manager/control_server.hpp>
#include <herd/manager/control_status.hpp>
#include <herd/core/heartbeat.hpp>
#include <herd/manager/hooks.hpp>
#include <herd/manager/runner.hpp>
#include <herd/config/options.hpp>
#include <herd/core/policy.hpp>
#include <herd/core/supervisor.hpp>
#include <herd/os/process_ops.hpp>
#include <herd/os/switching_ops.hpp>
#include <herd/manager/upgrade.hpp>
#include <herd/worker/worker.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace herd {

namespace detail {
class Preflight;
struct PreflightOutcome;
}  // namespace detail

/// One pool as run.cpp sets it up: its name, options and supervision, how its workers start and
/// the sockets they serve.
struct ManagedPool {
    std::string name;
    Options options;
    Supervision supervision;
    std::string program;   // what its workers run (program_of): a reload that changes it replaces them
    ProcessOps& ops;
    std::vector<Listener>& listeners;
};

class Manager {
public:
    /// A manager of these pools, in this order; `options` holds the manager-wide options.
    Manager(boost::asio::io_context& io, Options options, Strategy strategy, std::vector<ManagedPool> pools,
            ManagerHooks hooks = {});
    /// A manager of one pool, `main`, as the command line alone makes it.
    Manager(boost::asio::io_context& io, Options options, std::vector<Listener>& listeners, ProcessOps& ops,
            ManagerHooks hooks = {});
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    /// Keep the pool until shutdown; returns the manager's exit code.
    int run();
    /// In a freshly forked worker: close what only the manager may hold, restore signal defaults;
    /// forked for pool `own`: every other pool's sockets too.
    void close_in_child(std::string_view own = {});
    /// Called once, the first time the pool reaches its target of ready workers.
    void on_first_ready(std::function<void()> callback) { on_first_ready_ = std::move(callback); }
    /// Descriptors the manager keeps open that children must not inherit (closed in close_in_child).
    void keep_private(int fd) { private_fds_.push_back(fd); }
    /// What USR2 execs: the binary as started, with the original arguments.
    void set_binary(std::string binary, std::vector<std::string> argv);
    /// How HUP re-reads the configuration: the whole command line, its pools included (throws
    /// UsageError when it is invalid).
    void set_reread(std::function<CommandLine()> reread) { reread_ = std::move(reread); }
    /// How HUP makes a new pool's process ops, given the sockets it bound for it (the shell keeps both).
    using PoolFactory = std::function<std::unique_ptr<ProcessOps>(const PoolSpec&, std::vector<Listener>&)>;
    void set_pool_factory(PoolFactory factory) { pool_factory_ = std::move(factory); }
    /// The pid file to hand over to the next image.
    void set_pid_file(int fd, std::string path);
    /// Serve the control socket (DESIGN.md §6) on a bound listening socket; before adopt() and run().
    void set_control(int fd, std::string path);
    /// Take over the state a previous image handed over (USR2, or a rollback); before run().
    void adopt(const Handover& handover);

    /// The first pool's state (the only one, with one pool).
    const PoolState& state() const { return supervisor_.pools.front().state; }
    const Supervisor& supervisor() const { return supervisor_; }
    /// The manager-wide options, and the per-worker defaults the command line and the file's top gave.
    const Options& options() const { return options_; }
    /// A pool's options (after a reload, the new ones).
    const Options& pool_options(std::size_t pool) const { return supervisor_.pools.at(pool).options; }
    /// A pool's options by name; the manager's own when no pool has that name.
    const Options& pool_options(std::string_view name) const;

private:
    void manage();
    void prepare_ahead();
    // A pool's side of the shell: how its workers start, the sockets they serve, its runner.
    struct Shell {
        SwitchingOps ops;                          // how its workers start, signalled and reaped
        std::vector<Listener>* listeners;
        std::unique_ptr<Runner> runner;
        std::optional<Options> previous_options;   // reload: what to go back to if it fails
        std::optional<std::string> previous_program;   // reload: the program to go back to if it fails
        std::vector<Listener> previous_listeners;  // reload: closed once the old generation is gone
        bool ready = false;                        // at its target, as last announced
        control::History history;                  // its workers' exits by slot, for status
        std::vector<Listener> own_listeners;       // a pool adopted from a hand-over only: its sockets
        std::unique_ptr<std::vector<Listener>> own_sockets;   // a pool added by HUP: its sockets (listeners and its ops refer to them)
        std::size_t memory_cursor = 0;             // --max-worker-memory: where the next tick's samples start
    };
    void handle(std::size_t pool, const Event& event, TimePoint now);
    void handle(const SupervisorEvent& event, TimePoint now);
    void execute(const SupervisorActions& actions, TimePoint now);
    void execute(const SupervisorAction& action, TimePoint now);
    void execute(std::size_t pool, const Action& action, TimePoint now);
    void report_stage(const SupervisorAction& action, TimePoint now);
    std::string in_pool(std::size_t pool) const;
    Shell& shell_of(std::size_t pool) { return *shells_.at(pool); }
    Pool& pool(std::size_t i) { return supervisor_.pools.at(i); }
    const Pool& pool(std::size_t i) const { return supervisor_.pools.at(i); }
    std::size_t worker_count() const;
    std::size_t target_count() const;
    void on_signal(int signal);
    void reopen_logs(const std::string& said);
    void scale(std::size_t pool, const Scale& request, const std::string& said,
               std::optional<std::uint64_t> client = {}, bool named = false);
    void steer(std::size_t pool, const Request& request, const std::string& said, std::uint64_t client);
    void change_plan(std::uint64_t client, std::size_t pool, const std::optional<std::string>& text);
    control::PoolView view(std::size_t pool) const;
    void answer_pools();
    void stop(bool graceful, const std::string& said, std::optional<std::uint64_t> client = {});
    void shut_down(bool graceful);
    std::optional<std::string> rollout_refusal() const;
    void start_rollout(Reason kind, const std::string& said, std::optional<std::uint64_t> client = {});
    void on_request(std::uint64_t client, const control::Peer& peer, const Request& request);
    void answer_waiting(Command command, const std::string& line);
    void fail_waiting(Command command, const std::string& why);
    void report_rollout_failure(Reason kind, unsigned generation, const std::string& why);
    void watch_signals();
    void dispatch_signals(const char* data, std::size_t n);
    void read_pending_signals();
    void spawn(std::size_t pool, int slot, unsigned generation, TimePoint now);
    void take_news();
    /// The workers' heartbeat pages read, what moved on applied (runner.hpp, Runner::sample): before
    /// every plan at or past a deadline, so that no silence is judged on a page not read. Every page,
    /// not only the due one's: the deadlines then move on together, and the manager wakes about once
    /// per --heartbeat-timeout, not once per worker.
    void sample_beats(TimePoint now);
    void heard(std::size_t pool, const Event& event, TimePoint now);
    void reap(int pid, int status);
    void reap_exited();
    void check_readiness();
    void stop_listening();
    void finish();
    void notify_reloading();
    void use_options(Options next);
    void start_reload(const std::string& said);
    void reload_pools(const std::string& said, const CommandLine& fresh);
    void add_shell(std::size_t pool, const PoolSpec& spec, std::vector<Listener> listeners);
    void reload_progress();
    void reload_overdue();
    void forget_gone_pools();
    void refuse_reload(const std::string& line, const std::string& why);
    void abandon_upgrade(const std::string& why);
    void start_upgrade();
    void finish_preflight(const detail::PreflightOutcome& outcome);
    void abandon_preflight();
    bool is_preflight(int pid) const;
    void rollout_done(std::size_t pool, const RolloutDone& done);
    void rollout_failed(std::size_t pool, const RolloutFailed& failed);
    void settle_rollout();
    void exec_image(int binary_fd, unsigned rollback_from, const std::string& why);
    void watch_watchdog();
    void watch_memory();
    void sample_memory();
    WorkerEvent describe(std::size_t pool, const WorkerRecord& worker, std::string outcome = {}) const;

    boost::asio::io_context& io_;
    Options options_;
    ManagerHooks hooks_;
    boost::asio::posix::stream_descriptor signal_fd_;   // signalfd: the manager's signals, read as data
    Supervisor supervisor_;
    std::vector<std::unique_ptr<Shell>> shells_;        // one per pool, in the supervisor's order
    ProcessOps& system_;                                // the seam for what is the whole process's (reap, exec)
    std::vector<int> private_fds_;
    std::optional<int> exit_code_;
    TimePoint started_at_{};
    TimePoint wake_at_{};          // the deadline the loop sleeps to
    bool replan_ = true;           // an event changed the state: plan() again before sleeping
    bool all_ready_ = false;
    bool adopted_ = false;         // this image took over from another (USR2 or a rollback)
    std::function<void()> on_first_ready_;
    bool reaps_orphans_ = false;   // PID 1 or a subreaper: every exited child is ours to reap

    // Reload and upgrade
    std::unique_ptr<detail::Preflight> preflight_;   // USR2's --check of the new binary, while it runs
    std::string binary_;
    std::vector<std::string> argv_;
    std::function<CommandLine()> reread_;
    PoolFactory pool_factory_;
    bool reloading_pools_ = false;                // a reload of several pools: complete when each rolled or started
    std::vector<std::string> reload_starting_;    // ... the pools it added, until each is ready
    std::unique_ptr<boost::asio::steady_timer> reload_timer_;   // ... or until --upgrade-timeout
    std::optional<Reason> rollout_;               // the manager's reload or upgrade, while its pools roll
    int pid_file_fd_ = -1;
    std::string pid_file_path_;
    int previous_binary_fd_ = -1;                 // upgrade: the binary to roll back to
    std::unique_ptr<boost::asio::steady_timer> watchdog_;
    std::unique_ptr<boost::asio::steady_timer> memory_timer_;   // --max-worker-memory: samples while it is on
    unsigned adopted_version_ = handover_version;  // the version the previous image wrote: a rollback writes it too

    // Control socket
    struct Waiting {
        std::uint64_t client;
        Command command;
        std::size_t pool = 0;   // scale, stop, start, restart: the pool it is for
        bool named = false;     // the request named its pool: answered with the pool's state
    };
    std::unique_ptr<control::Server> control_;
    std::vector<Waiting> waiting_;                // clients waiting for an operation to finish
    TimePoint rollout_requested_{};               // when the latest reload or upgrade was asked for
    control::History history_;
};

}  // namespace herd
