// The hand-over record's encoder (upgrade.hpp describes the record, version by version).
#include <herd/manager/upgrade.hpp>

#include <herd/core/text.hpp>
#include <herd/manager/upgrade_text.hpp>
#include <herd/os/listeners.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace herd {

namespace {

using namespace detail;
// Version 2: the control socket, the clients waiting on it, and the history status reports.
void encode_control(std::ostream& out, const Handover& h)
{
    if (h.control_fd >= 0) out << "control " << h.control_fd << " " << h.control_path << "\n";
    if (h.upgrade_requested != TimePoint{}) out << "upgrade_requested " << ns(h.upgrade_requested) << "\n";
    for (const auto& [fd, op] : h.clients) out << "client " << fd << " " << to_string(op) << "\n";
    write_counts(out, "rollouts", h.history.rollouts);
    if (const auto& r = h.history.last_rollout)
        out << "last_rollout " << reason_key(r->kind) << " " << r->generation << " " << (r->failed ? 1 : 0) << " "
            << ns(r->at) << " " << r->why << "\n";
    for (const auto& [slot, exits] : h.history.exits)
        for (auto e = exits.rbegin(); e != exits.rend(); ++e)   // oldest first: decoding adds newest first
            out << "slot_exit " << slot << " " << e->pid << " " << e->ran.count() << " " << ns(e->at) << " "
                << e->outcome << "\n";
}

// The manager's own items
void encode_manager(std::ostream& out, const Handover& h)
{
    if (h.pid_file_fd >= 0) out << "pid_file " << h.pid_file_fd << " " << h.pid_file_path << "\n";
    if (h.previous_binary_fd >= 0) out << "previous_binary " << h.previous_binary_fd << "\n";
    out << "binary " << h.binary << "\n";
    out << "started " << ns(h.started) << "\n";
    if (h.rollback_from) out << "rollback " << h.rollback_from << " " << h.rollback_why << "\n";
    if (h.version >= 2) encode_control(out, h);
}

// A pool's state: what every version writes of it
void encode_state(std::ostream& out, const PoolState& p)
{
    out << "generation " << p.generation << "\n";
    out << "last_generation " << p.last_generation << "\n";
    out << "target " << p.target << "\n";
    out << "seed " << p.seed << "\n";
    out << "ever_ready " << (p.ever_ready ? 1 : 0) << "\n";
    out << "backoff " << p.backoff_level << " " << (p.backoff_until ? ns(*p.backoff_until) : -1) << " "
        << (p.backoff_mark ? ns(*p.backoff_mark) : -1) << "\n";
    for (TimePoint t : p.failures) out << "failure " << ns(t) << "\n";
    write_counts(out, "exits", p.exits);
}

void encode_listeners(std::ostream& out, const std::vector<Listener>& listeners)
{
    for (const auto& l : listeners) out << "listener " << l.fd << " " << address_family(l.family) << " " << l.address << "\n";
}

void encode_workers(std::ostream& out, const PoolState& p, const std::map<int, int>& fds,
                    const std::map<int, std::vector<int>>& outputs, const std::map<int, int>& pages)
{
    for (const auto& w : p.workers) {
        const auto fd = fds.find(w.pid);
        out << "worker pid=" << w.pid << " slot=" << w.slot << " gen=" << w.generation
            << " fd=" << (fd != fds.end() ? fd->second : -1) << " spawned=" << ns(w.spawned_at)
            << " ready=" << opt_ns(w.ready_at) << " beat=" << ns(w.last_heartbeat) << " requests=" << w.requests
            << " age_limit=" << w.age_limit.count() << " request_limit=" << w.request_limit
            << " reason=" << reason_key(w.reason) << " quit=" << opt_ns(w.quit_at) << " term=" << opt_ns(w.term_at)
            << " kill=" << opt_ns(w.kill_at) << " kill_reason=" << reason_key(w.kill_reason);
        if (w.beating) out << " beating=1";   // optional: absent in records of earlier images
        if (const auto page = pages.find(w.pid); page != pages.end()) out << " page=" << page->second;   // optional too
        if (const auto it = outputs.find(w.pid); it != outputs.end()) {
            out << " out=" << it->second.front();   // stdout's pipe (or the only one), then stderr's
            if (it->second.size() > 1) out << " err=" << it->second[1];
        }
        out << "\n";
    }
}

// Version 3: a pool's block opens with what the supervisor knows of it beside its state
void encode_supervised(std::ostream& out, const HandoverPool& p)
{
    out << "pool " << p.name << "\n";
    out << "phase " << phase_key(p.state.phase) << "\n";
    out << "stage " << to_string(p.stage) << "\n";
    out << "reported " << to_string(p.reported) << "\n";
    out << "wanted " << p.wanted << "\n";
    out << "step " << p.step << "\n";
    out << "runs " << p.runs << "\n";
    out << "last_restart " << opt_ns(p.last_restart) << "\n";
    out << "restart_pending " << (p.restart_pending ? 1 : 0) << "\n";
    if (!p.why.empty()) out << "why " << replaced(p.why, '\n', ' ') << "\n";
    for (const auto& [slot, until] : p.state.held)
        out << "held " << slot << " " << (until == TimePoint::max() ? "-" : std::to_string(ns(until))) << "\n";
}

// Version 3's names are read back from the rest of a line: one line each, none twice
void check_names(const std::vector<HandoverPool>& pools, const std::optional<std::string>& failed)
{
    for (auto p = pools.begin(); p != pools.end(); ++p) {
        if (p->name.empty() || p->name.find('\n') != std::string::npos || std::isspace((unsigned char)p->name[0]))
            throw std::invalid_argument("pool name '" + printable(p->name) + "' cannot be handed over");
        if (std::any_of(pools.begin(), p, [&](const auto& q) { return q.name == p->name; }))
            throw std::invalid_argument("pool '" + printable(p->name) + "' is handed over twice");
    }
    if (failed && std::none_of(pools.begin(), pools.end(), [&](const auto& p) { return p.name == *failed; }))
        throw std::invalid_argument("the failed pool '" + printable(*failed) + "' is not handed over");
}

// Versions 1 and 2 hold one pool: `pool` and `listeners` unless the pools are given
HandoverPool one_pool(const Handover& h)
{
    HandoverPool main;
    main.name = "main";
    main.state = h.pool;
    main.wanted = h.pool.target;
    main.listeners = h.listeners;
    return main;
}

std::string names(const std::vector<HandoverPool>& pools)
{
    std::string text;
    for (const auto& p : pools) text += (text.empty() ? "" : ", ") + printable(p.name);
    return text;
}

}  // namespace

std::string encode(const Handover& h)
{
    std::vector<HandoverPool> given;
    if (h.pools.empty()) given.push_back(one_pool(h));
    const std::vector<HandoverPool>& pools = h.pools.empty() ? given : h.pools;
    if (h.version < 3 && pools.size() > 1)
        throw std::invalid_argument("version " + std::to_string(h.version) + " of the hand-over record holds one pool, not " +
                                    std::to_string(pools.size()) + " (" + names(pools) + ")");
    if (h.version >= 3) check_names(pools, h.failed);
    const std::map<int, int> fds(h.channels.begin(), h.channels.end());
    const std::map<int, int> pages(h.pages.begin(), h.pages.end());
    std::map<int, std::vector<int>> outputs;
    for (const auto& [pid, fd] : h.outputs) outputs[pid].push_back(fd);

    std::ostringstream out;
    out << "herd-handover " << h.version << "\n";
    if (h.version < 3) {
        // The one pool, its sockets, the manager, the workers: as versions 1 and 2 always wrote them
        encode_state(out, pools.front().state);
        encode_listeners(out, pools.front().listeners);
        encode_manager(out, h);
        encode_workers(out, pools.front().state, fds, outputs, pages);
    } else {
        encode_manager(out, h);
        if (h.failed) out << "failed " << *h.failed << "\n";
        for (const auto& p : pools) {
            encode_supervised(out, p);
            encode_state(out, p.state);
            encode_listeners(out, p.listeners);
            encode_workers(out, p.state, fds, outputs, pages);
        }
    }
    out << "end\n";
    return out.str();
}

}  // namespace herd
