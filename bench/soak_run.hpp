// herd-soak: one scenario's run (soak.hpp says what a run is).
#pragma once

#include "soak.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace herd::soak {

/// The binaries a run needs.
struct Binaries {
    std::string hello_http;   // the server under test, copied into the run's directory
    std::string broken;       // test-worker-broken: passes --check, its workers abort at boot
    std::string herdctl;
};

/// What one action can be.
enum class Kind {
    kill9,          // kill -9 of a worker
    crash,          // GET /crash
    hang,           // GET /hang: no heartbeat, QUIT ignored, killed
    ttin_ttou,      // a burst of TTIN or TTOU
    scale,          // herdctl scale [POOL] N
    hup,            // HUP, nothing changed
    hup_config,     // HUP with a pool's size or command changed
    usr2_good,      // USR2 to a good binary
    usr2_broken,    // USR2 to a broken one: abandoned or rolled back
    stop_cont,      // SIGSTOP, then SIGCONT 0.1 to 1.5 s later
    nproc,          // a fork-failure window: RLIMIT_NPROC lowered, a worker killed, restored
    pool_restart,   // herdctl restart POOL
    pool_stop,      // herdctl stop POOL, then start POOL
    fork_exit,      // an exec worker forks two children and exits
    flood,          // an exec worker floods its heartbeat channel with garbage
};
const char* to_string(Kind kind);

/// What happened in one phase, per kind of action.
struct Tally {
    unsigned count = 0;
    std::uint64_t failed = 0;   // requests that failed in its phases
    double max_back_ms = 0;     // the longest time to the target again
    std::string note;           // the last thing worth saying (fork failures seen, ...)
};

/// One scenario: "single" (hello-http, 8 workers, one pool) or "pools" (web, jobs, exec).
class Run {
public:
    Run(std::string scenario, std::chrono::milliseconds duration, std::uint64_t seed, Binaries binaries);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

    /// Start, act until the duration is over, stop; false when it could not start.
    bool execute();
    /// Print the summary table; true when nothing was breached.
    bool summary() const;

private:
    struct Outcome {
        bool kills = false;   // a web worker was killed: failed requests are explained
        std::string detail;   // what exactly was done
        std::string breach;   // what went wrong, if anything
    };
    bool start();
    void act(unsigned index, Kind kind, const std::vector<std::uint32_t>& r);
    void finish();

    // Actions (soak_actions.cpp)
    Outcome kill9(const std::vector<std::uint32_t>& r);
    Outcome request(const std::string& path);
    Outcome ttin_ttou(const std::vector<std::uint32_t>& r);
    Outcome scale(const std::vector<std::uint32_t>& r);
    Outcome hup(bool change, const std::vector<std::uint32_t>& r);
    Outcome usr2(bool good, const std::vector<std::uint32_t>& r);
    Outcome stop_cont(const std::vector<std::uint32_t>& r);
    Outcome nproc(const std::vector<std::uint32_t>& r);
    Outcome pool_restart(const std::vector<std::uint32_t>& r);
    Outcome pool_stop(const std::vector<std::uint32_t>& r);
    Outcome exec_signal(int sig, const std::string& what, const std::vector<std::uint32_t>& r);

    // Helpers
    std::string web() const { return scenario_ == "pools" ? "web" : "main"; }
    std::vector<std::string> pool_names() const;
    /// A ready worker of `pool`: the r-th by slot (modulo), or 0.
    int pick(const std::string& pool, std::uint32_t r);
    /// herdctl ARGS...: empty when it exited 0, else what it said.
    std::string herdctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout);
    /// Wait until a rollout of `kind` is counted beyond `before`; the status then, or nothing.
    std::optional<StatusView> wait_rollout(bool upgrade, unsigned before, testing::Deadline deadline);
    /// The first "worker PID reaped: CLASSIFICATION" line after `mark` whose pid and
    /// classification match these regexes; an empty string when found, else what to say.
    std::string wait_reaped(const std::string& pid, const std::string& classification, std::size_t mark,
                            testing::Deadline deadline);
    /// Empty once every pool is at its target, all ready, nothing else running; else why not.
    std::string settled();
    void write_config();
    void breach(const std::string& what);

    std::string scenario_;
    std::chrono::milliseconds duration_;
    std::uint64_t seed_;
    Binaries bin_;
    std::mt19937_64 rng_;
    std::vector<std::pair<Kind, unsigned>> weights_;

    std::unique_ptr<testing::TempDir> dir_;
    std::string app_, control_, config_, marker_;
    std::unique_ptr<testing::Process> manager_;
    pid_t pid_ = -1;
    int port_ = -1;
    unsigned connections_ = 8;
    std::unique_ptr<testing::LoadClient> load_;
    testing::Clock::time_point started_;

    // What the driver expects: each pool's target (none after a TTIN/TTOU burst or a HUP that
    // may restore the file's sizes), and the pools' file sizes and exec variant
    std::map<std::string, std::optional<int>> expected_;
    std::map<std::string, int> file_size_;
    int exec_variant_ = 0;

    // Findings
    std::map<Kind, Tally> tallies_;
    unsigned actions_ = 0;
    std::uint64_t requests_ = 0, failed_ = 0, explained_ = 0, unexplained_ = 0;
    std::vector<double> at_, fds_, rss_;   // samples after each action: its index, the manager's fds and RSS
    std::vector<std::string> shapes_;      // ... and the pools' sizes and standbys then
    int first_fds_ = -1, last_fds_ = -1;
    long first_rss_ = -1, last_rss_ = -1;
    std::vector<int> zombies_;
    std::vector<Stray> orphans_;
    std::vector<std::string> breaches_;
    std::string nproc_skipped_;
    unsigned fork_failures_ = 0;
};

/// A leak is a slope past its limit (per 1000 actions) and a growth past its limit within
/// samples of one shape: a one-off step (a descriptor opened once, a heap that settles) is
/// not a leak, and a real one trips both (docs/benchmark.md says which leaks a run of a given length sees).
inline constexpr double max_fd_slope = 20;
inline constexpr double max_fd_growth = 5;
inline constexpr double max_rss_slope_kb = 4096;
inline constexpr double max_rss_growth_kb = 1024;

}  // namespace herd::soak
