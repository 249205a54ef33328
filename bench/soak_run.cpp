// herd-soak: one scenario's run: start, one phase per action, stop, the summary.
#include "soak_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <unistd.h>

namespace herd::soak {

using namespace std::chrono_literals;
using namespace herd::testing;

namespace {

/// The uid and gid the manager runs as when herd-soak runs as root: RLIMIT_NPROC binds neither
/// root nor a process with CAP_SYS_ADMIN, so the fork-failure window needs another user.
constexpr int nobody = 65534;

/// The pool's target every run starts with, and to which a single pool's HUP goes back.
constexpr int single_workers = 8;

/// The longest a pool may take to be back at its target after an action.
constexpr auto back_within = 30s;

// Supervision timing: quick enough for many actions a minute, slow enough for a busy machine.
const std::vector<std::string> timing = {
    "heartbeat-interval = 200ms", "heartbeat-timeout = 2s", "graceful-timeout = 3s", "kill-timeout = 2s",
    "boot-timeout = 5s", "restart-limit = 30/10s"};

std::vector<std::string> timing_options()
{
    std::vector<std::string> args;
    for (const std::string& line : timing) {
        const auto eq = line.find(" = ");
        args.push_back("--" + line.substr(0, eq));
        args.push_back(line.substr(eq + 3));
    }
    return args;
}

// The exec pool's program: heartbeats every 200 ms; USR1: fork two children and exit; USR2:
// flood the heartbeat channel with 500 malformed records. $1 is a variant that a HUP changes.
const char* exec_program = R"(#!/bin/sh
# herd-soak's exec worker, variant $1
trap 'sleep 1 & sleep 1 & exit 0' USR1
flood=0
trap 'flood=1' USR2
trap 'exit 0' TERM
while :; do
  if [ "$flood" = 1 ]; then
    i=0
    while [ $i -lt 500 ]; do printf 'garbage\001\033[31m zzz=%s\r\n' "$i" >&"$HERD_HEARTBEAT_FD"; i=$((i+1)); done
    flood=0
  fi
  echo >&"$HERD_HEARTBEAT_FD"
  sleep 0.2
done
)";

}  // namespace

const char* to_string(Kind kind)
{
    switch (kind) {
    case Kind::kill9: return "kill -9";
    case Kind::crash: return "GET /crash";
    case Kind::hang: return "GET /hang";
    case Kind::ttin_ttou: return "TTIN/TTOU burst";
    case Kind::scale: return "herdctl scale";
    case Kind::hup: return "HUP";
    case Kind::hup_config: return "HUP, file changed";
    case Kind::usr2_good: return "USR2, good binary";
    case Kind::usr2_broken: return "USR2, broken binary";
    case Kind::stop_cont: return "SIGSTOP/SIGCONT";
    case Kind::nproc: return "fork failures";
    case Kind::pool_restart: return "herdctl restart POOL";
    case Kind::pool_stop: return "herdctl stop/start POOL";
    case Kind::fork_exit: return "worker forks, exits";
    case Kind::flood: return "heartbeat garbage";
    }
    return "?";
}

Run::Run(std::string scenario, std::chrono::milliseconds duration, std::uint64_t seed, Binaries binaries)
    : scenario_(std::move(scenario)), duration_(duration), seed_(seed), bin_(std::move(binaries)),
      rng_(seed + (scenario_ == "pools" ? 0x9e3779b97f4a7c15ULL : 0))
{
    if (scenario_ == "pools") {
        weights_ = {{Kind::kill9, 3}, {Kind::crash, 2}, {Kind::hang, 1}, {Kind::scale, 2}, {Kind::hup, 1},
                    {Kind::hup_config, 2}, {Kind::usr2_good, 1}, {Kind::usr2_broken, 1}, {Kind::stop_cont, 2},
                    {Kind::nproc, 1}, {Kind::pool_restart, 2}, {Kind::pool_stop, 2}, {Kind::fork_exit, 2},
                    {Kind::flood, 2}};
        file_size_ = {{"web", 4}, {"jobs", 2}, {"exec", 2}};
    } else {
        weights_ = {{Kind::kill9, 3}, {Kind::crash, 2}, {Kind::hang, 1}, {Kind::ttin_ttou, 2}, {Kind::scale, 2},
                    {Kind::hup, 2}, {Kind::usr2_good, 2}, {Kind::usr2_broken, 1}, {Kind::stop_cont, 2},
                    {Kind::nproc, 1}};
        file_size_ = {{"main", single_workers}};
    }
    for (const auto& [name, size] : file_size_) expected_[name] = size;
}

Run::~Run()
{
    if (load_) load_->stop();
    if (manager_) manager_->kill_group();
}

std::vector<std::string> Run::pool_names() const
{
    if (scenario_ == "pools") return {"web", "jobs", "exec"};
    return {"main"};
}

void Run::breach(const std::string& what)
{
    std::printf("  BREACH: %s\n", what.c_str());
    std::fflush(stdout);
    breaches_.push_back(what);
}

void Run::write_config()
{
    std::string text = "# herd-soak's pools: web (HTTP, under load), jobs, and an exec pool\nname = soak\n"
                       "restart-strategy = one\ncontrol = " + control_ + "\ntest-endpoints = true\n"
                       "job-interval = 200ms\nupgrade-timeout = 20s\n[pool]\n";
    for (const std::string& line : timing) text += line + "\n";
    text += fmt::format("[pool.web]\nworker = web\nworkers = {}\nlisten = 127.0.0.1:{}\n", file_size_["web"], port_);
    text += fmt::format("[pool.jobs]\nworker = jobs\nworkers = {}\n", file_size_["jobs"]);
    text += fmt::format("[pool.exec]\ncommand = /bin/sh {} v{}\nworkers = {}\nready-after = 300ms\n",
                        dir_->operator/("worker.sh"), exec_variant_, file_size_["exec"]);
    write_file(config_, text);
}

bool Run::start()
{
    dir_ = std::make_unique<TempDir>();
    app_ = *dir_ / "app";
    control_ = *dir_ / "control.sock";
    config_ = *dir_ / "pools.conf";
    marker_ = "HERD_SOAK_RUN=" + dir_->path();
    deploy(bin_.hello_http, app_);
    {
        LoopbackListener probe;   // a free port, given back at once
        port_ = probe.port;
    }
    std::vector<std::string> argv;
    if (::geteuid() == 0) {
        if (::chown(dir_->path().c_str(), nobody, nobody) != 0) std::perror("chown");
        argv = {"/usr/bin/setpriv", "--reuid=" + std::to_string(nobody), "--regid=" + std::to_string(nobody),
                "--clear-groups", "--"};
    }
    argv.push_back(app_);
    if (scenario_ == "pools") {
        write_file(*dir_ / "worker.sh", exec_program);
        write_config();
        argv = concat(argv, {"--config", config_});
    } else {
        argv = concat(argv, {"-w", std::to_string(single_workers), "-l", "127.0.0.1:" + std::to_string(port_),
                             "--test-endpoints", "--control", control_, "--name", "soak", "--upgrade-timeout", "20s"});
        argv = concat(argv, timing_options());
    }
    argv = concat(argv, {"--pid-file", *dir_ / "app.pid"});
    manager_ = std::make_unique<Process>(argv, std::vector<std::string>{marker_});
    pid_ = manager_->pid();

    std::string why;
    const bool up = poll_until([&] { manager_->pump(); return manager_->status() || (why = settled()).empty(); }, in(30s), 50ms);
    if (!up || manager_->status()) {
        std::printf("herd-soak: the manager did not start (%s):\n%s\n", why.c_str(), manager_->output().c_str());
        return false;
    }
    nproc_skipped_ = nproc_binds(pid_);
    load_ = std::make_unique<LoadClient>(LoadOptions{.port = port_, .path = "/pid", .connections = connections_,
                                                     .pause = 5ms, .duration = duration_ + 600s,
                                                     .request_timeout = 10s});
    if (!load_->wait_answered(100, in(10s))) {
        std::printf("herd-soak: the load got no answers: %s\n", load_->stats().describe().c_str());
        return false;
    }
    return true;
}

std::string Run::settled()
{
    const StatusView s = read_status(control_);
    if (!s.ok) return s.error;
    if (s.phase != "running") return "the manager is " + s.phase;
    if (s.rolling) return "a rollout is under way";
    int total = 0;
    for (const std::string& name : pool_names()) {
        const PoolView* p = s.pool(name);
        if (!p) return "no pool " + name + " in status";
        if (p->stage != "running") return "pool " + name + " is " + p->stage;
        if (const auto& e = expected_[name]; e && *e != p->target)
            return fmt::format("pool {}: target {}, expected {}", name, p->target, *e);
        if (p->ready != p->target || int(p->workers.size()) != p->target)
            return fmt::format("pool {}: {} of {} ready, {} workers", name, p->ready, p->target, p->workers.size());
        for (const auto& [pid, state] : p->workers)
            if (state != "ready") return fmt::format("pool {}: worker {} is {}", name, pid, state);
        total += p->target;
    }
    // Nothing runs under the manager but its workers and a standby per pool (docs/design.md, "Supervision policy"):
    // no stray child, no pre-flight left
    int running = 0, standby = 0;
    for (const Child& c : children_of(pid_)) {
        const bool is_standby = c.title.size() >= 7 && c.title.compare(c.title.size() - 7, 7, "standby") == 0;
        standby += c.state != 'Z' && is_standby;
        running += c.state != 'Z' && !is_standby;
    }
    if (running != total) return fmt::format("{} processes under the manager, {} workers in status", running, total);
    if (standby > int(pool_names().size())) return fmt::format("{} standby processes under the manager", standby);
    return {};
}

bool Run::execute()
{
    std::printf("\nherd-soak: scenario %s, seed %llu, %.0f s\n", scenario_.c_str(), (unsigned long long)seed_,
                duration_.count() / 1000.0);
    std::fflush(stdout);
    if (!start()) {
        breach("the " + scenario_ + " scenario could not start");
        return false;
    }
    std::printf("  manager %d (%s), port %d, %u keep-alive connections; fork-failure window: %s\n", int(pid_),
                real_uid(pid_) == 0 ? "root" : ("uid " + std::to_string(real_uid(pid_))).c_str(), port_,
                connections_, nproc_skipped_.empty() ? "on" : ("skipped: " + nproc_skipped_).c_str());
    started_ = Clock::now();
    unsigned total_weight = 0;
    for (const auto& w : weights_) total_weight += w.second;
    const Deadline end = started_ + duration_;
    for (unsigned i = 1; Clock::now() < end && !manager_->status(); ++i) {
        // The schedule: four draws per action whatever it is, so that a seed replays it
        std::vector<std::uint32_t> r(4);
        for (auto& x : r) x = std::uint32_t(rng_());
        unsigned pick = r[0] % total_weight;
        Kind kind = weights_.front().first;
        for (const auto& [k, w] : weights_) {
            if (pick < w) {
                kind = k;
                break;
            }
            pick -= w;
        }
        act(i, kind, r);
        if (breaches_.size() > 20) break;   // the run has said enough
    }
    finish();
    return true;
}

void Run::act(unsigned index, Kind kind, const std::vector<std::uint32_t>& r)
{
    const LoadStats before = load_->stats();
    const auto t0 = Clock::now();
    Outcome o;
    switch (kind) {
    case Kind::kill9: o = kill9(r); break;
    case Kind::crash: o = request("/crash"); break;
    case Kind::hang: o = request("/hang"); break;
    case Kind::ttin_ttou: o = ttin_ttou(r); break;
    case Kind::scale: o = scale(r); break;
    case Kind::hup: o = hup(false, r); break;
    case Kind::hup_config: o = hup(true, r); break;
    case Kind::usr2_good: o = usr2(true, r); break;
    case Kind::usr2_broken: o = usr2(false, r); break;
    case Kind::stop_cont: o = stop_cont(r); break;
    case Kind::nproc: o = nproc(r); break;
    case Kind::pool_restart: o = pool_restart(r); break;
    case Kind::pool_stop: o = pool_stop(r); break;
    case Kind::fork_exit: o = exec_signal(SIGUSR1, "forks two children and exits", r); break;
    case Kind::flood: o = exec_signal(SIGUSR2, "floods its heartbeat channel", r); break;
    }
    const std::string what = fmt::format("#{} {}", index, to_string(kind));
    std::printf("  [%6.1f s] %s: %s\n", std::chrono::duration<double>(t0 - started_).count(), what.c_str(), o.detail.c_str());
    std::fflush(stdout);
    if (!o.breach.empty()) breach(what + ": " + o.breach);

    // Back at the target, and serving
    std::string why;
    const bool back = poll_until([&] { manager_->pump(); return manager_->status() || (why = settled()).empty(); }, in(back_within), 50ms);
    const double back_ms = ms_since(t0);
    if (manager_->status()) {
        breach(what + ": the manager exited (" + manager_->status()->describe() + ")");
        return;
    }
    if (!back) breach(fmt::format("{}: not back at the target within {} s: {}", what, back_within.count(), why));
    if (!load_->wait_answered(20, in(10s))) breach(what + ": no request answered for 10 s after it");
    const StatusView s = read_status(control_);
    for (const std::string& name : pool_names())
        if (!expected_[name] && s.pool(name)) expected_[name] = s.pool(name)->target;

    // Failed requests: explained only by a web worker killed in this phase, one per connection
    const LoadStats after = load_->stats();
    const std::uint64_t failed = after.failed() - before.failed();
    const std::uint64_t explained = o.kills ? std::min<std::uint64_t>(failed, connections_) : 0;
    explained_ += explained;
    unexplained_ += failed - explained;
    if (failed > explained) {
        // The client keeps the first few failures of each connection: those that are new here
        std::string first;
        for (const std::string& e : after.first_errors)
            if (std::find(before.first_errors.begin(), before.first_errors.end(), e) == before.first_errors.end() && first.size() < 400)
                first += "; " + e;
        breach(fmt::format("{}: {} failed requests that no kill explains{}", what, failed - explained, first));
    }

    // The manager's descriptors and memory, with the pools' sizes and standbys (each worker and
    // standby has its pipes): the standbys are forked once the pools are steady, waited for
    std::string shape;
    auto standbys = [&] {
        int n = 0;
        for (const Child& c : children_of(pid_)) n += c.title.find("standby") != std::string::npos;
        return n;
    };
    const int cxx_pools = scenario_ == "pools" ? 2 : 1;
    poll_until([&] { return standbys() >= cxx_pools; }, in(1s), 10ms);
    for (const std::string& name : pool_names())
        shape += name + "=" + std::to_string(s.pool(name) ? s.pool(name)->target : -1) + " ";
    shape += "standbys=" + std::to_string(standbys());
    const int fds = open_fds(pid_);
    const long rss = vm_rss_kb(pid_);
    if (back && fds > 0 && rss > 0) {
        at_.push_back(index);
        shapes_.push_back(shape);
        fds_.push_back(fds);
        rss_.push_back(double(rss));
        if (first_fds_ < 0) first_fds_ = fds, first_rss_ = rss;
        last_fds_ = fds, last_rss_ = rss;
    }
    for (int z : lasting_zombies(pid_, 300ms)) {
        zombies_.push_back(z);
        breach(fmt::format("{}: child {} of the manager is a zombie for 300 ms and more", what, z));
    }

    Tally& t = tallies_[kind];
    ++t.count;
    t.failed += failed;
    t.max_back_ms = std::max(t.max_back_ms, back_ms);
    ++actions_;
    std::printf("             back in %.2f s; %llu failed requests%s; fds %d, RSS %ld kB\n", back_ms / 1000,
                (unsigned long long)failed, failed == 0 ? "" : o.kills ? " (a web worker was killed)" : " (UNEXPLAINED)",
                fds, rss);
    std::fflush(stdout);
}

void Run::finish()
{
    load_->stop();
    const LoadStats stats = load_->stats();
    requests_ = stats.requests();
    failed_ = stats.failed();
    if (!manager_->status()) {
        for (int z : lasting_zombies(pid_, 300ms)) {
            zombies_.push_back(z);
            breach(fmt::format("at the end: child {} of the manager is a zombie", z));
        }
        manager_->signal(SIGQUIT);
        const auto status = manager_->wait_exit(in(30s));
        if (!status) breach("the manager did not exit within 30 s of QUIT");
        else if (!status->exited() || status->code != 0) breach("the manager exited with " + status->describe() + " after QUIT");
    }
    if (const char* log = std::getenv("HERD_SOAK_LOG"); log && *log) write_file(std::string(log) + "." + scenario_, manager_->output());
    // Whatever the run started is gone within a few seconds of the manager (a child an exec
    // worker forked lives 1 s)
    std::vector<Stray> left;
    poll_until([&] { return (left = strays(pid_, marker_)).empty(); }, in(5s), 50ms);
    for (const Stray& s : left) {
        orphans_.push_back(s);
        breach(fmt::format("process {} ({}) outlived the run", s.pid, s.command));
        ::kill(s.pid, SIGKILL);
    }
}

bool Run::summary() const
{
    std::printf("\nherd-soak summary: scenario %s, seed %llu, %u actions in %.0f s\n", scenario_.c_str(),
                (unsigned long long)seed_, actions_, duration_.count() / 1000.0);
    std::printf("  %-24s %6s %16s %12s\n", "action", "count", "failed requests", "back within");
    for (const auto& [kind, t] : tallies_)
        std::printf("  %-24s %6u %16llu %10.2f s\n", to_string(kind), t.count, (unsigned long long)t.failed, t.max_back_ms / 1000);
    std::printf("  requests: %llu, failed %llu: %llu explained, %llu unexplained\n", (unsigned long long)requests_,
                (unsigned long long)failed_, (unsigned long long)explained_, (unsigned long long)unexplained_);
    const double fd_slope = slope(at_, shapes_, fds_) * 1000, rss_slope = slope(at_, shapes_, rss_) * 1000;
    const double fd_growth = growth(shapes_, fds_), rss_growth = growth(shapes_, rss_);
    std::printf("  manager fds: %d -> %d, slope %+.1f per 1000 actions, %+.0f within a shape (limits %.0f and %.0f; %zu samples)\n",
                first_fds_, last_fds_, fd_slope, fd_growth, max_fd_slope, max_fd_growth, fds_.size());
    std::printf("  manager RSS: %ld -> %ld kB, slope %+.0f kB per 1000 actions, %+.0f kB within a shape (limits %.0f and %.0f)\n",
                first_rss_, last_rss_, rss_slope, rss_growth, max_rss_slope_kb, max_rss_growth_kb);
    std::printf("  zombies: %zu, orphans after the run: %zu\n", zombies_.size(), orphans_.size());
    if (nproc_skipped_.empty()) std::printf("  fork-failure windows: %u failed spawns logged\n", fork_failures_);
    else std::printf("  fork-failure windows: skipped: %s\n", nproc_skipped_.c_str());
    std::vector<std::string> all = breaches_;
    if (fd_slope > max_fd_slope && fd_growth > max_fd_growth)
        all.push_back(fmt::format("the manager's descriptors grow: {:+.1f} per 1000 actions, {:+.0f} in all", fd_slope, fd_growth));
    if (rss_slope > max_rss_slope_kb && rss_growth > max_rss_growth_kb)
        all.push_back(fmt::format("the manager's RSS grows: {:+.0f} kB per 1000 actions, {:+.0f} kB in all", rss_slope, rss_growth));
    if (all.empty()) {
        std::printf("  result: PASS\n");
        return true;
    }
    std::printf("  result: %zu BREACHES\n", all.size());
    for (const std::string& b : all) std::printf("    %s\n", b.c_str());
    return false;
}

}  // namespace herd::soak
