// herd-soak: a bounded, seeded chaos run against real managers (docs/benchmark.md, "Soak: herd-soak").
//
// A scenario starts a manager (hello-http with 8 workers in one pool, or three pools: web, jobs
// and an exec pool of /bin/sh), puts HTTP load on its web pool with the harness's keep-alive
// client, and performs actions drawn from a seeded generator, one at a time. Each action is a
// phase: it is done, the manager must bring every pool back to its target (checked through the
// control socket and /proc), the load must be answered again, and only then does the next action
// start. The requests that failed during a phase are charged to it: a phase that killed a web
// worker (kill -9, /crash, /hang, the fork-failure window) explains at most as many failures as
// there are client connections; in every other phase a failure is unexplained.
//
// soak.hpp: the probes (status, /proc scans, slopes); soak_run.hpp: one scenario's run.
#pragma once

#include "harness.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace herd::soak {

/// One pool as `status` tells it.
struct PoolView {
    std::string name;
    std::string stage;   // running, stopped, ...
    int target = 0;
    int ready = 0;
    bool at_target = false;
    std::vector<std::pair<int, std::string>> workers;   // pid and state, by slot
};

/// The manager as `status` tells it.
struct StatusView {
    bool ok = false;
    std::string error;       // why not ok
    std::string phase;       // running, stopping
    bool rolling = false;    // an upgrade, reload or restart is under way
    bool at_target = false;
    int target = 0;
    int generation = 0;
    unsigned upgrades = 0, upgrades_failed = 0;   // rollouts done, failed ones among them
    unsigned reloads = 0, reloads_failed = 0;
    std::string last_why;    // last_rollout.why
    std::vector<PoolView> pools;

    const PoolView* pool(const std::string& name) const;
};

/// Ask the control socket at `path` for the status.
StatusView read_status(const std::string& path);

/// The least-squares slope of y over x within groups (y = a[group] + b x: b), so that what
/// differs between groups (the number of workers, a standby or not) is not taken for growth
/// with x; 0 without two points in one group.
double slope(const std::vector<double>& x, const std::vector<std::string>& group, const std::vector<double>& y);

/// How much y grew within one group: the most, over groups, of its last value less its first.
double growth(const std::vector<std::string>& group, const std::vector<double>& y);

/// Children of `parent` that are zombies now and still the same zombies `grace` later.
std::vector<int> lasting_zombies(pid_t parent, testing::milliseconds grace);

/// A process of the run found after the run: in the process group `group`, or with
/// `marker` (NAME=VALUE) in its environment.
struct Stray {
    int pid = 0;
    std::string command;
};
std::vector<Stray> strays(pid_t group, const std::string& marker);

/// The real uid of pid, or -1.
long real_uid(pid_t pid);
/// How many processes the real uid `uid` has (RLIMIT_NPROC counts these).
int processes_of(long uid);
/// Whether RLIMIT_NPROC binds pid: its uid is not root and it has neither CAP_SYS_RESOURCE nor
/// CAP_SYS_ADMIN. Empty when it does, else why not.
std::string nproc_binds(pid_t pid);

}  // namespace herd::soak
