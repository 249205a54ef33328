// The hand-over record's decoder (upgrade.hpp describes the record, version by version).
#include <herd/manager/upgrade.hpp>

#include <herd/core/text.hpp>
#include <herd/manager/upgrade_text.hpp>
#include <herd/os/listeners.hpp>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace herd {

namespace {

using namespace detail;

template <std::size_t N>
bool one_of(const std::string_view (&keys)[N], std::string_view key)
{
    return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

// A pool's items in every version, and those version 3 adds
constexpr std::string_view state_items[] = {"generation", "last_generation", "target", "seed",    "ever_ready",
                                            "backoff",    "failure",         "exits",  "listener", "worker"};
constexpr std::string_view supervised_items[] = {"phase", "stage",        "reported",        "wanted", "step",
                                                 "runs",  "last_restart", "restart_pending", "why",    "held"};
// Items that end in free text (or key=value fields) consume the whole line themselves.
constexpr std::string_view free_text_items[] = {"worker",  "listener",     "pid_file",  "binary", "rollback",
                                                "control", "last_rollout", "slot_exit", "pool",   "failed",
                                                "why"};

// Reads a record line by line: the manager's items into the Handover, a pool's into its pool.
struct Reader {
    Handover h;
    std::set<int> pids;      // the workers read so far, in every pool
    int failed_line = 0;     // the line naming the failed pool

    void header(std::istringstream& in)
    {
        std::string key;
        in >> key;
        if (key != "herd-handover") throw std::invalid_argument("not a herd hand-over record");
        in >> h.version;
        if (!can_adopt(h.version))
            throw std::invalid_argument("hand-over version " + std::to_string(h.version) +
                                        " is not supported (this binary adopts versions 1 to " +
                                        std::to_string(handover_version) + ")");
        // Versions 1 and 2 have one pool; it is `main`, as a command line without pools makes it.
        if (h.version < 3) h.pools.emplace_back().name = "main";
    }

    // A target no configuration could give is refused: the new image would plan that many spawns.
    static void pool_size(const std::string& key, unsigned n)
    {
        if (n > max_workers)
            throw std::invalid_argument(key + " " + std::to_string(n) + " is above " + std::to_string(max_workers) +
                                        ", the most workers a pool may have");
    }

    // One item; false: this version knows no such item
    bool item(const std::string& key, std::istringstream& in, int n)
    {
        if (one_of(state_items, key) || (h.version >= 3 && one_of(supervised_items, key)))
            pool_item(pool_for(key), key, in);
        else if (h.version >= 3 && key == "pool") open_pool(rest_of(in));
        else if (h.version >= 3 && key == "failed") {
            h.failed = rest_of(in);
            if (h.failed->empty()) throw std::invalid_argument("failed without a pool name");
            failed_line = n;
        } else return manager_item(key, in);
        return true;
    }

    // A pool item belongs to the pool of the latest "pool" line (versions 1 and 2: `main`)
    HandoverPool& pool_for(const std::string& key)
    {
        if (h.pools.empty()) throw std::invalid_argument("'" + printable(key) + "' before any 'pool' line");
        return h.pools.back();
    }

    void open_pool(const std::string& name)
    {
        if (name.empty()) throw std::invalid_argument("pool without a name");
        for (const auto& p : h.pools)
            if (p.name == name) throw std::invalid_argument("pool '" + printable(name) + "' appears twice");
        h.pools.emplace_back().name = name;
    }

    void pool_item(HandoverPool& p, const std::string& key, std::istringstream& in)
    {
        PoolState& s = p.state;
        std::string token;
        int flag = 0;
        if (key == "generation") in >> s.generation;
        else if (key == "last_generation") in >> s.last_generation;
        else if (key == "target") {
            in >> s.target;
            pool_size(key, s.target);
        }
        else if (key == "seed") in >> s.seed;
        else if (key == "ever_ready") { in >> flag; s.ever_ready = flag != 0; }
        else if (key == "backoff") {
            std::int64_t until = -1, mark = -1;
            in >> s.backoff_level >> until >> mark;
            if (until >= 0) s.backoff_until = at(until);
            if (mark >= 0) s.backoff_mark = at(mark);
        } else if (key == "failure") {
            std::int64_t t = 0;
            in >> t;
            s.failures.push_back(at(t));
        } else if (key == "exits") read_count(in, s.exits);
        else if (key == "listener") {
            Listener l;
            int af = 0;
            in >> l.fd >> af;
            l.family = listener_family(af);
            l.address = rest_of(in);
            p.listeners.push_back(l);
        } else if (key == "worker") worker(s, in);
        // Version 3
        else if (key == "phase") { in >> token; s.phase = phase_from(token); }
        else if (key == "stage") { in >> token; p.stage = stage_from(token); }
        else if (key == "reported") { in >> token; p.reported = stage_from(token); }
        else if (key == "wanted") {
            in >> p.wanted;
            pool_size(key, p.wanted);
        }
        else if (key == "step") in >> p.step;
        else if (key == "runs") in >> p.runs;
        else if (key == "last_restart") { in >> token; p.last_restart = opt_at(token); }
        else if (key == "restart_pending") { in >> flag; p.restart_pending = flag != 0; }
        else if (key == "why") p.why = rest_of(in);
        else if (key == "held") {
            int slot = 0;
            if (!(in >> slot >> token)) throw std::invalid_argument("malformed value");
            s.held[slot] = token == "-" ? TimePoint::max() : at(number(token));
        }
    }

    void worker(PoolState& s, std::istringstream& in)
    {
        std::map<std::string, std::string> f;
        std::string field;
        while (in >> field) {
            const auto eq = field.find('=');
            if (eq == std::string::npos) throw std::invalid_argument("field '" + printable(field, 64) + "' is not key=value");
            f[field.substr(0, eq)] = field.substr(eq + 1);
        }
        const auto get = [&](const char* name) -> const std::string& {
            auto it = f.find(name);
            if (it == f.end()) throw std::invalid_argument(std::string("worker without ") + name);
            return it->second;
        };
        WorkerRecord w;
        w.pid = int(number(get("pid")));
        w.slot = int(number(get("slot")));
        w.generation = unsigned(number(get("gen")));
        w.spawned_at = at(number(get("spawned")));
        w.ready_at = opt_at(get("ready"));
        w.beating = f.count("beating") && f["beating"] == "1";
        w.last_heartbeat = at(number(get("beat")));
        w.requests = std::uint64_t(number(get("requests")));
        w.age_limit = Duration(number(get("age_limit")));
        w.request_limit = std::uint64_t(number(get("request_limit")));
        w.reason = reason_from(get("reason"));
        w.quit_at = opt_at(get("quit"));
        w.term_at = opt_at(get("term"));
        w.kill_at = opt_at(get("kill"));
        w.kill_reason = reason_from(get("kill_reason"));
        // Channels and outputs are keyed by pid: one pid in two places would be adopted twice.
        if (!pids.insert(w.pid).second) throw std::invalid_argument("worker " + std::to_string(w.pid) + " appears twice");
        const int fd = int(number(get("fd")));
        if (fd >= 0) h.channels.emplace_back(w.pid, fd);
        if (f.count("out")) h.outputs.emplace_back(w.pid, int(number(f["out"])));
        if (f.count("err")) h.outputs.emplace_back(w.pid, int(number(f["err"])));
        if (f.count("page")) h.pages.emplace_back(w.pid, int(number(f["page"])));
        s.workers.push_back(w);
    }

    bool manager_item(const std::string& key, std::istringstream& in)
    {
        if (key == "pid_file") {
            in >> h.pid_file_fd;
            h.pid_file_path = rest_of(in);
        } else if (key == "previous_binary") in >> h.previous_binary_fd;
        else if (key == "binary") h.binary = rest_of(in);
        else if (key == "started") { std::int64_t t = 0; in >> t; h.started = at(t); }
        else if (key == "rollback") {
            in >> h.rollback_from;
            h.rollback_why = rest_of(in);
        } else if (key == "control") {
            in >> h.control_fd;
            h.control_path = rest_of(in);
        } else if (key == "upgrade_requested") {
            std::int64_t t = 0;
            in >> t;
            h.upgrade_requested = at(t);
        } else if (key == "client") {
            int fd = -1;
            std::string op;
            in >> fd >> op;
            const auto parsed = command_from(op);
            if (!parsed) throw std::invalid_argument("unknown control operation '" + printable(op, 64) + "'");
            h.clients.emplace_back(fd, *parsed);
        } else if (key == "rollouts") {
            read_count(in, h.history.rollouts);
        } else if (key == "last_rollout") {
            control::RolloutRecord r;
            std::string kind;
            int failed = 0;
            std::int64_t t = 0;
            in >> kind >> r.generation >> failed >> t;
            r.kind = reason_from(kind);
            r.failed = failed != 0;
            r.at = at(t);
            r.why = rest_of(in);
            h.history.last_rollout = r;
        } else if (key == "slot_exit") {
            int slot = 0;
            control::ExitRecord e;
            std::int64_t ran = 0, t = 0;
            in >> slot >> e.pid >> ran >> t;
            e.ran = Duration(ran);
            e.at = at(t);
            e.outcome = rest_of(in);
            h.history.add(slot, e);
        } else return false;
        return true;
    }

    // After "end": what no single line could check
    void finish()
    {
        if (h.pools.empty()) throw std::invalid_argument("hand-over record has no 'pool' line");
        if (h.failed && std::none_of(h.pools.begin(), h.pools.end(), [&](const auto& p) { return p.name == *h.failed; }))
            throw std::invalid_argument("hand-over line " + std::to_string(failed_line) + ": failed pool '" +
                                        printable(*h.failed) + "' has no 'pool' line");
        for (auto& p : h.pools)
            std::sort(p.state.workers.begin(), p.state.workers.end(),
                      [](const auto& a, const auto& b) { return a.pid < b.pid; });
        if (h.version < 3) h.pools.front().wanted = h.pools.front().state.target;
        h.pool = h.pools.front().state;
        h.listeners = h.pools.front().listeners;
    }
};

}  // namespace

Handover decode_handover(std::string_view text)
{
    Reader reader;
    std::istringstream lines{std::string(text)};
    std::string line;
    int n = 0;
    bool ended = false;
    while (std::getline(lines, line)) {
        ++n;
        std::istringstream in(line);
        try {
            if (n == 1) {
                reader.header(in);
                continue;
            }
            std::string key;
            in >> key;
            if (key == "end") {
                ended = true;
                break;
            }
            const bool known = reader.item(key, in, n);
            // Version 3 skips what a later image of version 3 may have added; 1 and 2 never did.
            if (!known && reader.h.version < 3 && !key.empty())
                throw std::invalid_argument("unknown item '" + printable(key) + "'");
            if (known && !one_of(free_text_items, key) && in.fail()) throw std::invalid_argument("malformed value");
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("hand-over line " + std::to_string(n) + ": " + e.what());
        }
    }
    if (n == 0) throw std::invalid_argument("hand-over record is empty");
    if (!ended) throw std::invalid_argument("hand-over record is truncated (no 'end' line)");
    reader.finish();
    return reader.h;
}

}  // namespace herd
