// herd-soak's probes: the status through the control socket, and what /proc shows.
#include "soak.hpp"

// Boost.JSON compiled here: herd-soak does not link libherd.
#include <boost/json/src.hpp>

#include <array>
#include <chrono>
#include <map>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace herd::soak {

namespace json = boost::json;
using namespace std::chrono_literals;

const PoolView* StatusView::pool(const std::string& name) const
{
    for (const PoolView& p : pools)
        if (p.name == name) return &p;
    return nullptr;
}

namespace {

std::int64_t integer(const json::object& o, std::string_view key)
{
    const json::value* v = o.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : v && v->is_uint64() ? std::int64_t(v->as_uint64()) : 0;
}

std::string text(const json::object& o, std::string_view key)
{
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool flag(const json::object& o, std::string_view key)
{
    const json::value* v = o.if_contains(key);
    return v && v->is_bool() && v->as_bool();
}

// rollouts.KIND: complete + failed, and failed
void rollouts(const json::object& m, std::string_view kind, unsigned& done, unsigned& failed)
{
    const json::value* r = m.if_contains("rollouts");
    if (!r || !r->is_object()) return;
    const json::value* k = r->as_object().if_contains(kind);
    if (!k || !k->is_object()) return;
    failed = unsigned(integer(k->as_object(), "failed"));
    done = unsigned(integer(k->as_object(), "complete")) + failed;
}

// The first line of /proc/PID/FILE that starts with `key`, without it
std::string proc_field(pid_t pid, const std::string& file, const std::string& key)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key, 0) == 0) return line.substr(key.size());
    return {};
}

std::vector<pid_t> all_pids()
{
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") == std::string::npos) pids.push_back(std::stoi(name));
    }
    return pids;
}

// The process group of pid (from /proc/PID/stat, after the command's closing parenthesis), or -1
pid_t group_of(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return -1;
    const auto close = line.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t ppid = 0, pgrp = -1;
    rest >> state >> ppid >> pgrp;
    return pgrp;
}

std::string command_of(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char& c : raw)
        if (c == '\0') c = ' ';
    while (!raw.empty() && raw.back() == ' ') raw.pop_back();
    return raw;
}

bool has_in_environment(pid_t pid, const std::string& entry)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
    for (std::string item; std::getline(in, item, '\0');)
        if (item == entry) return true;
    return false;
}

}  // namespace

StatusView read_status(const std::string& path)
{
    StatusView s;
    testing::ControlClient client(path, 3000ms);
    if (client.error()) {
        s.error = "cannot connect to " + path + ": " + std::strerror(client.error());
        return s;
    }
    const std::string answer = client.ask("{\"command\":\"status\"}\n");
    json::value v;
    try {
        v = json::parse(answer);
    } catch (const std::exception& e) {
        s.error = "status answer is not JSON (" + std::string(e.what()) + "): " + answer.substr(0, 200);
        return s;
    }
    if (!v.is_object() || !flag(v.as_object(), "ok") || !v.as_object().contains("manager")) {
        s.error = "status failed: " + answer.substr(0, 200);
        return s;
    }
    const json::object& m = v.as_object().at("manager").as_object();
    s.ok = true;
    s.phase = text(m, "phase");
    s.rolling = m.contains("rollout") && !m.at("rollout").is_null();
    s.at_target = flag(m, "at_target");
    s.target = int(integer(m, "target"));
    s.generation = int(integer(m, "generation"));
    rollouts(m, "upgrade", s.upgrades, s.upgrades_failed);
    rollouts(m, "reload", s.reloads, s.reloads_failed);
    if (const json::value* last = m.if_contains("last_rollout"); last && last->is_object())
        s.last_why = text(last->as_object(), "why");
    if (const json::value* pools = v.as_object().if_contains("pools"); pools && pools->is_array()) {
        for (const json::value& p : pools->as_array()) {
            const json::object& o = p.as_object();
            PoolView view{text(o, "name"), text(o, "stage"), int(integer(o, "target")), int(integer(o, "ready")),
                          flag(o, "at_target"), {}};
            if (const json::value* ws = o.if_contains("workers"); ws && ws->is_array())
                for (const json::value& w : ws->as_array())
                    view.workers.emplace_back(int(integer(w.as_object(), "pid")), text(w.as_object(), "state"));
            s.pools.push_back(std::move(view));
        }
    }
    return s;
}

double slope(const std::vector<double>& x, const std::vector<std::string>& group, const std::vector<double>& y)
{
    const std::size_t n = std::min({x.size(), group.size(), y.size()});
    std::map<std::string, std::array<double, 3>> sums;   // per group: count, sum x, sum y
    for (std::size_t i = 0; i < n; ++i) {
        auto& g = sums[group[i]];
        g[0] += 1, g[1] += x[i], g[2] += y[i];
    }
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& g = sums[group[i]];
        const double dx = x[i] - g[1] / g[0], dy = y[i] - g[2] / g[0];
        sxy += dx * dy, sxx += dx * dx;
    }
    return sxx > 0 ? sxy / sxx : 0;
}

double growth(const std::vector<std::string>& group, const std::vector<double>& y)
{
    std::map<std::string, std::pair<double, double>> ends;   // first and last value per group
    for (std::size_t i = 0; i < std::min(group.size(), y.size()); ++i) {
        auto [it, added] = ends.try_emplace(group[i], y[i], y[i]);
        if (!added) it->second.second = y[i];
    }
    // The most in one group: a one-off step shows in every group that spans it, a leak most in
    // the group that spans the most actions
    double most = 0;
    for (const auto& [g, e] : ends) most = std::max(most, e.second - e.first);
    return most;
}

std::vector<int> lasting_zombies(pid_t parent, testing::milliseconds grace)
{
    std::set<int> first;
    for (const testing::Child& c : testing::children_of(parent))
        if (c.state == 'Z') first.insert(c.pid);
    if (first.empty()) return {};
    // A zombie is normal for the moment between an exit and its reap: only one that lasts counts.
    std::this_thread::sleep_for(grace);
    std::vector<int> lasting;
    for (const testing::Child& c : testing::children_of(parent))
        if (c.state == 'Z' && first.count(c.pid)) lasting.push_back(c.pid);
    return lasting;
}

std::vector<Stray> strays(pid_t group, const std::string& marker)
{
    std::vector<Stray> found;
    const pid_t self = ::getpid();
    for (pid_t pid : all_pids()) {
        if (pid == self) continue;
        if (group_of(pid) == group || has_in_environment(pid, marker)) found.push_back({pid, command_of(pid)});
    }
    return found;
}

long real_uid(pid_t pid)
{
    std::istringstream in(proc_field(pid, "status", "Uid:"));
    long uid = -1;
    in >> uid;
    return uid;
}

int processes_of(long uid)
{
    // RLIMIT_NPROC counts tasks: threads too.
    int n = 0;
    for (pid_t pid : all_pids()) {
        if (real_uid(pid) != uid) continue;
        const std::string threads = proc_field(pid, "status", "Threads:");
        n += threads.empty() ? 1 : std::max(1, std::atoi(threads.c_str()));
    }
    return n;
}

std::string nproc_binds(pid_t pid)
{
    const long uid = real_uid(pid);
    if (uid < 0) return "cannot read /proc/" + std::to_string(pid) + "/status";
    if (uid == 0) return "the manager runs as root, which RLIMIT_NPROC does not bind";
    const std::string caps = proc_field(pid, "status", "CapEff:");
    const std::uint64_t eff = caps.empty() ? 0 : std::stoull(caps, nullptr, 16);
    constexpr int cap_sys_admin = 21, cap_sys_resource = 24;
    if (eff & (std::uint64_t(1) << cap_sys_admin)) return "the manager has CAP_SYS_ADMIN, which RLIMIT_NPROC does not bind";
    if (eff & (std::uint64_t(1) << cap_sys_resource)) return "the manager has CAP_SYS_RESOURCE, which RLIMIT_NPROC does not bind";
    return {};
}

}  // namespace herd::soak
