// herd-soak's actions: each does one thing to the running manager and says what it did; the
// run then waits for the pools to be back at their targets (soak_run.cpp).
#include "soak_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace herd::soak {

using namespace std::chrono_literals;
using namespace herd::testing;

int Run::pick(const std::string& pool, std::uint32_t r)
{
    const StatusView s = read_status(control_);
    const PoolView* p = s.pool(pool);
    if (!p) return 0;
    std::vector<int> ready;
    for (const auto& [pid, state] : p->workers)
        if (state == "ready") ready.push_back(pid);
    return ready.empty() ? 0 : ready[r % ready.size()];
}

std::string Run::herdctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout)
{
    const RunResult r = run(concat({bin_.herdctl, "-c", control_}, args), timeout);
    if (r.status && r.status->exited() && r.status->code == 0) return {};
    std::string said = r.lines.empty() ? "" : ": " + r.lines.back();
    return "herdctl " + [&] { std::string a; for (const auto& x : args) a += (a.empty() ? "" : " ") + x; return a; }() +
           (r.status ? " ended with " + r.status->describe() : " did not finish in time") + said;
}

std::optional<StatusView> Run::wait_rollout(bool upgrade, unsigned before, Deadline deadline)
{
    std::optional<StatusView> found;
    poll_until(
        [&] {
            manager_->pump();
            StatusView s = read_status(control_);
            if (s.ok && (upgrade ? s.upgrades : s.reloads) > before) found = std::move(s);
            return found.has_value() || manager_->status().has_value();
        },
        deadline, 50ms);
    return found;
}

std::string Run::wait_reaped(const std::string& pid, const std::string& classification, std::size_t mark,
                             Deadline deadline)
{
    const std::regex re("worker (" + pid + ") reaped: (" + classification + "), slot");
    if (manager_->wait_for_line(re, deadline, mark)) return {};
    return "no line 'worker " + pid + " reaped: " + classification + "' in time";
}

Run::Outcome Run::kill9(const std::vector<std::uint32_t>& r)
{
    const std::vector<std::string> pools = pool_names();
    const std::string pool = pools[r[1] % pools.size()];
    const int pid = pick(pool, r[2]);
    if (pid <= 0) return {false, "no ready worker in pool " + pool, {}};
    const std::size_t mark = manager_->lines().size();
    ::kill(pid, SIGKILL);
    return {pool == web(), fmt::format("worker {} of pool {} killed", pid, pool),
            wait_reaped(std::to_string(pid), "crashed \\(signal 9\\)", mark, in(5s))};
}

Run::Outcome Run::request(const std::string& path)
{
    // /crash aborts the worker that accepts it; /hang stops its loop for good (killed after the
    // heartbeat and graceful timeouts). Either way the request itself gets no answer.
    const std::size_t mark = manager_->lines().size();
    const HttpResult h = http_get("127.0.0.1", port_, path, path == "/hang" ? 300ms : 2000ms);
    if (h.status != 0)
        return {false, path + " answered " + std::to_string(h.status), path + " was answered: are the test endpoints on?"};
    // Its end is part of the phase: a crash is reaped at once, a hang after the heartbeat
    // timeout (2 s) and the graceful timeout (3 s)
    const std::string end = path == "/hang" ? wait_reaped("\\d+", "no heartbeat|killed after graceful timeout", mark, in(15s))
                                            : wait_reaped("\\d+", "crashed \\(signal 6\\)", mark, in(5s));
    return {true, "a worker got " + path + " (" + (h.error.empty() ? "no answer" : h.error) + ")", end};
}

Run::Outcome Run::ttin_ttou(const std::vector<std::uint32_t>& r)
{
    const StatusView s = read_status(control_);
    const PoolView* p = s.pool(web());
    if (!p) return {false, "no pool", "status has no pool " + web()};
    const int k = 1 + int(r[1] % 3);
    const bool up = p->target <= 5 ? true : p->target >= 11 ? false : r[2] % 2 == 0;
    for (int i = 0; i < k; ++i) {
        manager_->signal(up ? SIGTTIN : SIGTTOU);
        std::this_thread::sleep_for(2ms);
    }
    // Signals coalesce: the target moves by 1 to k
    int now = p->target;
    poll_until([&] { const StatusView t = read_status(control_); if (t.pool(web())) now = t.pool(web())->target; return now != p->target; }, in(3s), 20ms);
    expected_[web()].reset();
    const int moved = up ? now - p->target : p->target - now;
    std::string detail = fmt::format("{} x{}: target {} -> {}", up ? "TTIN" : "TTOU", k, p->target, now);
    if (moved < 1 || moved > k) return {false, detail, fmt::format("the target moved by {}, not 1 to {}", moved, k)};
    return {false, detail, {}};
}

Run::Outcome Run::scale(const std::vector<std::uint32_t>& r)
{
    std::vector<std::string> args{"scale"};
    std::string pool = web();
    int n = 4 + int(r[2] % 7);
    if (scenario_ == "pools") {
        pool = pool_names()[r[1] % 3];
        n = pool == "web" ? 2 + int(r[2] % 5) : 1 + int(r[2] % 3);
        args.push_back(pool);
    }
    args.push_back(std::to_string(n));
    expected_[pool] = n;
    const std::string error = herdctl(args, 30s);
    return {false, fmt::format("pool {} to {} workers", pool, n), error};
}

Run::Outcome Run::hup(bool change, const std::vector<std::uint32_t>& r)
{
    const StatusView s = read_status(control_);
    std::string detail = "nothing changed";
    if (change) {
        if (r[1] % 2 == 0) {
            file_size_["jobs"] = file_size_["jobs"] == 2 ? 3 : 2;
            detail = fmt::format("pool jobs: workers = {}", file_size_["jobs"]);
        } else {
            exec_variant_ = 1 - exec_variant_;
            detail = fmt::format("pool exec: command variant v{}", exec_variant_);
        }
        write_config();
    }
    manager_->signal(SIGHUP);
    const auto done = wait_rollout(false, s.reloads, in(40s));
    // A reload goes back to the sizes of the file (a single pool: --workers); whether a pool
    // that the file leaves alone keeps a size set at run time is the manager's to say.
    for (auto& [name, e] : expected_) e.reset();
    if (scenario_ != "pools") expected_["main"] = file_size_["main"];
    else if (change && r[1] % 2 == 0) expected_["jobs"] = file_size_["jobs"];
    if (!done) return {false, detail, "no reload result in status within 40 s"};
    if (done->reloads_failed > s.reloads_failed) return {false, detail, "the reload failed: " + done->last_why};
    return {false, detail + "; reload complete", {}};
}

Run::Outcome Run::usr2(bool good, const std::vector<std::uint32_t>& r)
{
    const StatusView s = read_status(control_);
    std::string detail = "good binary";
    if (good) {
        deploy(bin_.hello_http, app_);
    } else if (r[1] % 2 == 0) {
        detail = "a binary whose --check fails";
        deploy_script("#!/bin/sh\necho 'herd-soak: a broken build' >&2\nexit 2\n", app_);
    } else if (scenario_ == "pools") {
        // The broken test worker has no `web` or `jobs` type: a missing exec bit instead
        detail = "a binary without its exec bit";
        deploy(bin_.hello_http, app_);
        ::chmod(app_.c_str(), 0644);
    } else {
        // Passes --check; every new worker aborts at boot: rolled back
        detail = "a binary whose workers crash at boot";
        deploy(bin_.broken, app_);
    }
    manager_->signal(SIGUSR2);
    const auto done = wait_rollout(true, s.upgrades, in(60s));
    if (!good) deploy(bin_.hello_http, app_);   // the next upgrade or rollback finds a good file
    if (!done) return {false, detail, "no upgrade result in status within 60 s"};
    const bool failed = done->upgrades_failed > s.upgrades_failed;
    detail += failed ? "; failed: " + done->last_why : "; complete, generation " + std::to_string(done->generation);
    if (good && failed) return {false, detail, "the upgrade to a good binary failed"};
    if (!good && !failed) return {false, detail, "the upgrade to a broken binary did not fail"};
    return {false, detail, {}};
}

Run::Outcome Run::stop_cont(const std::vector<std::uint32_t>& r)
{
    const int pid = pick(web(), r[1]);
    if (pid <= 0) return {false, "no ready worker", {}};
    const auto stopped = std::chrono::milliseconds(100 + r[2] % 2400);
    ::kill(pid, SIGSTOP);
    const Deadline until = in(stopped);
    poll_until([&] { manager_->pump(); return false; }, until, 20ms);
    // Stopped past --heartbeat-timeout (2 s), it was asked to retire: it does so once continued
    ::kill(pid, SIGCONT);
    return {false, fmt::format("worker {} stopped for {} ms", pid, stopped.count()), {}};
}

Run::Outcome Run::nproc(const std::vector<std::uint32_t>& r)
{
    if (!nproc_skipped_.empty()) return {false, "skipped: " + nproc_skipped_, {}};
    // prlimit(1) as the manager's own uid: another uid needs CAP_SYS_RESOURCE to change its limits
    const long uid = real_uid(pid_);
    std::vector<std::string> as_manager;
    if (::geteuid() == 0 && uid != 0)
        as_manager = {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(uid), "--clear-groups", "--"};
    auto set_soft = [&](const std::string& soft) {
        const RunResult p = run(concat(as_manager, {"/usr/bin/prlimit", "--pid", std::to_string(pid_), "--nproc=" + soft + ":"}), 5000ms);
        return p.status && p.status->exited() && p.status->code == 0 ? std::string() : "prlimit --nproc=" + soft + ": " + p.output();
    };
    // Its soft limit now, from /proc/PID/limits ("Max processes  SOFT  HARD  processes")
    std::string restore;
    for (const std::string& line : read_lines("/proc/" + std::to_string(pid_) + "/limits"))
        if (line.rfind("Max processes", 0) == 0) std::istringstream(line.substr(13)) >> restore;
    if (restore.empty()) return {false, "reading the manager's RLIMIT_NPROC", "no 'Max processes' in /proc/PID/limits"};
    // Two processes fewer than the uid has now, and two workers killed: the standby replaces the
    // first without a fork (and cannot be forked again), the second needs a fork, which fails
    const int count = processes_of(uid);
    const int low = std::max(1, count - 2);
    const std::size_t mark = manager_->lines().size();
    if (std::string error = set_soft(std::to_string(low)); !error.empty()) return {false, "lowering RLIMIT_NPROC", error};
    const int pid = pick(web(), r[1]);
    if (pid > 0) ::kill(pid, SIGKILL);
    wait_reaped(std::to_string(pid), ".*", mark, in(2s));
    const int second = pick(web(), r[1] + 1);
    if (second > 0 && second != pid) ::kill(second, SIGKILL);
    static const std::regex cannot{R"(cannot spawn a worker in slot \d+: .*Resource temporarily unavailable)"};
    const auto window = std::chrono::milliseconds(500 + r[2] % 1500);
    poll_until([&] { manager_->pump(); return false; }, in(window), 20ms);
    const std::string restored = set_soft(restore);
    const std::size_t failures = manager_->count(cannot, mark);
    fork_failures_ += unsigned(failures);
    return {pid > 0,
            fmt::format("RLIMIT_NPROC {} (uid {} had {} tasks) for {} ms, workers {} and {} killed: {} failed spawns", low,
                        uid, count, window.count(), pid, second, failures),
            restored};
}

Run::Outcome Run::pool_restart(const std::vector<std::uint32_t>& r)
{
    const std::string pool = pool_names()[r[1] % 3];
    return {false, "pool " + pool + " restarted", herdctl({"restart", pool}, 60s)};
}

Run::Outcome Run::pool_stop(const std::vector<std::uint32_t>& r)
{
    // Not web: the load would find nobody accepting (stopping the pool that serves is not chaos)
    const std::string pool = r[1] % 2 ? "jobs" : "exec";
    if (std::string error = herdctl({"stop", pool}, 30s); !error.empty()) return {false, "stop " + pool, error};
    const StatusView s = read_status(control_);
    const PoolView* p = s.pool(pool);
    if (!p || p->stage != "stopped" || !p->workers.empty())
        return {false, "stop " + pool,
                fmt::format("after herdctl stop, pool {} is {} with {} workers", pool, p ? p->stage : "missing",
                            p ? p->workers.size() : 0)};
    return {false, "pool " + pool + " stopped, then started", herdctl({"start", pool}, 30s)};
}

Run::Outcome Run::exec_signal(int sig, const std::string& what, const std::vector<std::uint32_t>& r)
{
    const int pid = pick("exec", r[1]);
    if (pid <= 0) return {false, "no ready exec worker", {}};
    const std::size_t mark = manager_->lines().size();
    ::kill(pid, sig);
    Outcome o{false, fmt::format("exec worker {} {}", pid, what), {}};
    if (sig == SIGUSR1) o.breach = wait_reaped(std::to_string(pid), "finished \\(exit 0\\)", mark, in(5s));
    if (sig == SIGUSR2) {
        // Garbage gets a line or a few, not one per record: wait for the worker to be dealt with
        poll_until([&] { manager_->pump(); return false; }, in(1500ms), 20ms);
        const std::size_t lines = manager_->count(std::regex("\\b" + std::to_string(pid) + "\\b"), mark);
        o.detail += fmt::format(" ({} manager lines about it)", lines);
        if (lines > 20) o.breach = fmt::format("{} log lines about one worker's 500 bad records", lines);
    }
    return o;
}

}  // namespace herd::soak
