#include <herd/manager/upgrade.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace herd {

namespace {

std::int64_t ns(TimePoint t)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint at(std::int64_t value)
{
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(value)));
}

std::string opt_ns(const std::optional<TimePoint>& t)
{
    return t ? std::to_string(ns(*t)) : "-";
}

constexpr Reason all_reasons[] = {Reason::none,         Reason::ttou,         Reason::max_age,
                                  Reason::max_requests, Reason::reload,       Reason::upgrade,
                                  Reason::shutdown,     Reason::no_heartbeat, Reason::boot_timeout,
                                  Reason::graceful_timeout, Reason::kill_timeout, Reason::bad_heartbeat,
                                  Reason::max_memory};

// Names with spaces ("max age", "no heartbeat") travel as one token each: "max_age".
std::string replaced(std::string text, char from, char to)
{
    std::replace(text.begin(), text.end(), from, to);
    return text;
}

std::string reason_key(Reason r)
{
    return replaced(to_string(r), ' ', '_');
}

Reason reason_from(const std::string& key)
{
    for (Reason r : all_reasons)
        if (reason_key(r) == key) return r;
    throw std::invalid_argument("unknown reason '" + key + "'");
}

// "KEY NAME_WITH_UNDERSCORES N" lines: counters by name (exits by classification, rollouts by result).
void write_counts(std::ostream& out, const char* key, const std::map<std::string, std::uint64_t>& counts)
{
    for (const auto& [name, n] : counts) out << key << " " << replaced(name, ' ', '_') << " " << n << "\n";
}

void read_count(std::istream& in, std::map<std::string, std::uint64_t>& counts)
{
    std::string name;
    std::uint64_t n = 0;
    in >> name >> n;
    counts[replaced(name, '_', ' ')] = n;
}

std::int64_t number(std::string_view text)
{
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        throw std::invalid_argument("'" + std::string(text) + "' is not a number");
    return value;
}

std::optional<TimePoint> opt_at(const std::string& text)
{
    if (text == "-") return std::nullopt;
    return at(number(text));
}

std::string rest_of(std::istringstream& in)
{
    std::string rest;
    std::getline(in >> std::ws, rest);
    return rest;
}

}  // namespace

bool can_adopt(unsigned version)
{
    return version >= 1 && version <= handover_version;
}

// Version 2: the control socket, the clients waiting on it, and the history status reports.
void encode_control(std::ostream& out, const Handover& h)
{
    if (h.control_fd >= 0) out << "control " << h.control_fd << " " << h.control_path << "\n";
    if (h.upgrade_requested != TimePoint{}) out << "upgrade_requested " << ns(h.upgrade_requested) << "\n";
    for (const auto& [fd, op] : h.clients) out << "client " << fd << " " << control::to_string(op) << "\n";
    write_counts(out, "rollouts", h.history.rollouts);
    if (const auto& r = h.history.last_rollout)
        out << "last_rollout " << reason_key(r->kind) << " " << r->generation << " " << (r->failed ? 1 : 0) << " "
            << ns(r->at) << " " << r->why << "\n";
    for (const auto& [slot, exits] : h.history.exits)
        for (auto e = exits.rbegin(); e != exits.rend(); ++e)   // oldest first: decoding adds newest first
            out << "slot_exit " << slot << " " << e->pid << " " << e->ran.count() << " " << ns(e->at) << " "
                << e->outcome << "\n";
}

std::string encode(const Handover& h)
{
    std::ostringstream out;
    const PoolState& p = h.pool;
    out << "herd-handover " << h.version << "\n";
    out << "generation " << p.generation << "\n";
    out << "last_generation " << p.last_generation << "\n";
    out << "target " << p.target << "\n";
    out << "seed " << p.seed << "\n";
    out << "ever_ready " << (p.ever_ready ? 1 : 0) << "\n";
    out << "backoff " << p.backoff_level << " " << (p.backoff_until ? ns(*p.backoff_until) : -1) << " "
        << (p.backoff_mark ? ns(*p.backoff_mark) : -1) << "\n";
    for (TimePoint t : p.failures) out << "failure " << ns(t) << "\n";
    write_counts(out, "exits", p.exits);
    for (const auto& l : h.listeners) out << "listener " << l.fd << " " << l.family << " " << l.address << "\n";
    if (h.pid_file_fd >= 0) out << "pid_file " << h.pid_file_fd << " " << h.pid_file_path << "\n";
    if (h.previous_binary_fd >= 0) out << "previous_binary " << h.previous_binary_fd << "\n";
    out << "binary " << h.binary << "\n";
    out << "started " << ns(h.started) << "\n";
    if (h.rollback_from) out << "rollback " << h.rollback_from << " " << h.rollback_why << "\n";
    if (h.version >= 2) encode_control(out, h);
    std::map<int, int> fds(h.channels.begin(), h.channels.end());
    std::map<int, std::vector<int>> outputs;   // stdout's pipe (or the only one), then stderr's
    for (const auto& [pid, fd] : h.outputs) outputs[pid].push_back(fd);
    for (const auto& w : p.workers) {
        out << "worker pid=" << w.pid << " slot=" << w.slot << " gen=" << w.generation
            << " fd=" << (fds.count(w.pid) ? fds[w.pid] : -1) << " spawned=" << ns(w.spawned_at)
            << " ready=" << opt_ns(w.ready_at) << " beat=" << ns(w.last_heartbeat) << " requests=" << w.requests
            << " age_limit=" << w.age_limit.count() << " request_limit=" << w.request_limit
            << " reason=" << reason_key(w.reason) << " quit=" << opt_ns(w.quit_at) << " term=" << opt_ns(w.term_at)
            << " kill=" << opt_ns(w.kill_at) << " kill_reason=" << reason_key(w.kill_reason);
        if (w.beating) out << " beating=1";   // optional: absent in records of earlier images
        if (const auto it = outputs.find(w.pid); it != outputs.end()) {
            out << " out=" << it->second.front();
            if (it->second.size() > 1) out << " err=" << it->second[1];
        }
        out << "\n";
    }
    out << "end\n";
    return out.str();
}

Handover decode_handover(std::string_view text)
{
    Handover h;
    std::istringstream lines{std::string(text)};
    std::string line;
    int n = 0;
    bool ended = false;
    while (std::getline(lines, line)) {
        ++n;
        std::istringstream in(line);
        std::string key;
        in >> key;
        try {
            if (n == 1) {
                if (key != "herd-handover") throw std::invalid_argument("not a herd hand-over record");
                in >> h.version;
                if (!can_adopt(h.version))
                    throw std::invalid_argument("hand-over version " + std::to_string(h.version) +
                                                " is not supported (this binary adopts versions 1 to " +
                                                std::to_string(handover_version) + ")");
                continue;
            }
            if (key == "generation") in >> h.pool.generation;
            else if (key == "last_generation") in >> h.pool.last_generation;
            else if (key == "target") in >> h.pool.target;
            else if (key == "seed") in >> h.pool.seed;
            else if (key == "ever_ready") { int v = 0; in >> v; h.pool.ever_ready = v != 0; }
            else if (key == "backoff") {
                std::int64_t until = -1, mark = -1;
                in >> h.pool.backoff_level >> until >> mark;
                if (until >= 0) h.pool.backoff_until = at(until);
                if (mark >= 0) h.pool.backoff_mark = at(mark);
            } else if (key == "failure") {
                std::int64_t t = 0;
                in >> t;
                h.pool.failures.push_back(at(t));
            } else if (key == "exits") {
                read_count(in, h.pool.exits);
            } else if (key == "listener") {
                Listener l;
                in >> l.fd >> l.family;
                l.address = rest_of(in);
                h.listeners.push_back(l);
            } else if (key == "pid_file") {
                in >> h.pid_file_fd;
                h.pid_file_path = rest_of(in);
            } else if (key == "previous_binary") in >> h.previous_binary_fd;
            else if (key == "binary") h.binary = rest_of(in);
            else if (key == "started") { std::int64_t t = 0; in >> t; h.started = at(t); }
            else if (key == "rollback") {
                in >> h.rollback_from;
                h.rollback_why = rest_of(in);
            } else if (key == "worker") {
                std::map<std::string, std::string> f;
                std::string field;
                while (in >> field) {
                    const auto eq = field.find('=');
                    if (eq == std::string::npos) throw std::invalid_argument("field '" + field + "' is not key=value");
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
                const int fd = int(number(get("fd")));
                if (fd >= 0) h.channels.emplace_back(w.pid, fd);
                if (f.count("out")) h.outputs.emplace_back(w.pid, int(number(f["out"])));
                if (f.count("err")) h.outputs.emplace_back(w.pid, int(number(f["err"])));
                h.pool.workers.push_back(w);
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
                const auto parsed = control::op_from(op);
                if (!parsed) throw std::invalid_argument("unknown control operation '" + op + "'");
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
            } else if (key == "end") {
                ended = true;
                break;
            } else if (!key.empty()) {
                throw std::invalid_argument("unknown item '" + key + "'");
            }
            // Items that end in free text (or key=value fields) consume the whole line themselves.
            const bool free_text = key == "worker" || key == "listener" || key == "pid_file" || key == "binary" ||
                                   key == "rollback" || key == "control" || key == "last_rollout" ||
                                   key == "slot_exit";
            if (!free_text && in.fail()) throw std::invalid_argument("malformed value");
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("hand-over line " + std::to_string(n) + ": " + e.what());
        }
    }
    std::sort(h.pool.workers.begin(), h.pool.workers.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
    if (n == 0) throw std::invalid_argument("hand-over record is empty");
    if (!ended) throw std::invalid_argument("hand-over record is truncated (no 'end' line)");
    return h;
}

std::vector<std::string> preflight_args(const std::vector<std::string>& argv, unsigned version)
{
    std::vector<std::string> args(argv.begin() + (argv.empty() ? 0 : 1), argv.end());
    // The parser splits at the first "--" (options.cpp), and so does this.
    const auto dashes = std::find(args.begin(), args.end(), "--");
    args.insert(dashes, {"--check", "--adopt-check", std::to_string(version)});
    return args;
}

std::string resolve_binary(const std::string& argv0)
{
    namespace fs = std::filesystem;
    if (argv0.find('/') != std::string::npos) return fs::absolute(argv0).lexically_normal().string();
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t pos = 0;
    while (pos <= dirs.size()) {
        const auto colon = std::min(dirs.find(':', pos), dirs.size());
        const std::string dir = dirs.substr(pos, colon - pos);
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / argv0;
        if (::access(candidate.c_str(), X_OK) == 0) return fs::absolute(candidate).lexically_normal().string();
        pos = colon + 1;
    }
    return argv0;
}

}  // namespace herd
