// The pools of a command line and its config file (see pools.hpp).
#include <herd/config/pools.hpp>

#include <herd/config/option_table.hpp>
#include <herd/config/option_values.hpp>
#include <herd/config/supervision_values.hpp>
#include <herd/os/listeners.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <optional>

namespace herd {

namespace {

constexpr std::string_view named_prefix = "pool.";

/// A [pool] or [pool.NAME] section with its entries.
struct Section {
    std::string name;   // "" for [pool]
    int line = 0;
    std::vector<const ConfigEntry*> entries;
};

/// The line of the section entry that set each key of one pool last; a key not in it was set by
/// the command line or the file's top.
using Lines = std::map<std::string, int>;

const OptionSpec* find_spec(const std::vector<OptionSpec>& specs, const std::string& key)
{
    const auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return long_name(s) == key; });
    return it == specs.end() ? nullptr : &*it;
}

bool valid_pool_name(std::string_view name)
{
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::string manager_wide(const std::string& key)
{
    return "option '" + key + "' applies to the whole manager; put it before the first [section]";
}

std::string join(const std::vector<std::string>& names)
{
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}

// Sections and their keys
/// The [pool] section (if any) and the [pool.NAME] sections in file order, each with its entries;
/// throws UsageError at the first section or key that has no place there.
std::pair<std::optional<Section>, std::vector<Section>> read_sections(const ConfigFile& file,
                                                                      const std::vector<OptionSpec>& specs,
                                                                      const PoolDefaults& defaults)
{
    std::optional<Section> all;
    std::vector<Section> named;
    std::map<std::string, Section*> by_name;
    for (const ConfigSection& s : file.sections) {
        const std::string at = config_location(file.path, s.line);
        if (s.name == "pool") {
            if (all) throw UsageError(at + "section [pool] given twice (first at line " + std::to_string(all->line) + ")");
            all = Section{"", s.line, {}};
        } else if (s.name.starts_with(named_prefix)) {
            const std::string name = s.name.substr(named_prefix.size());
            // The name goes into metrics labels, process titles and HERD_POOL.
            if (!valid_pool_name(name))
                throw UsageError(at + "invalid pool name '" + name + "': use a-z, 0-9, _ and - only");
            for (const Section& other : named)
                if (other.name == name)
                    throw UsageError(at + "pool '" + name + "' given twice (first at line " +
                                     std::to_string(other.line) + ")");
            named.push_back({name, s.line, {}});
        } else {
            throw UsageError(at + "unknown section [" + s.name + "]: expected [pool] or [pool.NAME]");
        }
    }
    for (Section& s : named) by_name["pool." + s.name] = &s;
    if (all) by_name["pool"] = &*all;

    for (const ConfigEntry& entry : file.entries) {
        if (entry.section.empty()) continue;
        Section& section = *by_name.at(entry.section);
        const std::string at = config_location(file.path, entry.line);
        const std::string& key = entry.key;
        const OptionSpec* spec = find_spec(specs, key);
        if (key == "command" || key == "worker") {
            if (section.name.empty())
                throw UsageError(at + "option '" + key + "' names one pool's " +
                                 (key == "command" ? "program" : "Worker type") + "; put it in a [pool.NAME] section");
        } else if (spec == nullptr) {
            const auto& app = defaults.app_options;
            throw UsageError(at + (std::find(app.begin(), app.end(), key) != app.end() ? manager_wide(key)
                                                                                        : "unknown option '" + key + "'"));
        } else if (spec->command_line_only) {
            throw UsageError(at + "option '" + key + "' is only allowed on the command line");
        } else if (spec->scope == OptionScope::manager) {
            throw UsageError(at + manager_wide(key));
        }
        const bool repeated = spec != nullptr && spec->kind == OptionKind::repeated;
        for (const ConfigEntry* earlier : section.entries)
            if (!repeated && earlier->key == key) throw UsageError(at + "option " + key + " given more than once");
        section.entries.push_back(&entry);
    }
    return {std::move(all), std::move(named)};
}

const ConfigEntry* find_entry(const Section& section, const std::string& key)
{
    for (const ConfigEntry* entry : section.entries)
        if (entry->key == key) return entry;
    return nullptr;
}

// One pool
/// Apply one section's options to `pool`; `exec_pool`: exec mode's own options apply (elsewhere
/// they are an error in [pool.NAME], and left out from [pool]).
void apply(const Section& section, const std::string& path, const std::vector<OptionSpec>& specs, bool exec_pool,
           PoolSpec& pool, Lines& lines)
{
    std::map<std::string, bool> replaced;   // a repeated option set here replaces the inherited values
    for (const ConfigEntry* entry : section.entries) {
        const OptionSpec* spec = find_spec(specs, entry->key);
        if (spec == nullptr) continue;   // command and worker
        const std::string at = config_location(path, entry->line);
        if (spec->exec_only && !exec_pool) {
            if (section.name.empty()) continue;
            throw UsageError(at + "option '" + entry->key + "' applies to pools that run a command only; pool '" +
                             pool.name + "' runs Worker type '" + pool.worker + "'");
        }
        if (spec->kind == OptionKind::repeated && !replaced[entry->key]) {
            pool.options.listen.clear();   // listen is the one repeated option
            replaced[entry->key] = true;
        }
        try {
            if (spec->set != nullptr) spec->set(pool.options, entry->value);
            else spec->supervise(pool.supervision, entry->value);
        } catch (const std::invalid_argument& e) {
            throw UsageError(at + "invalid value '" + entry->value + "' for " + entry->key + ": " + e.what());
        }
        lines[entry->key] = entry->line;
    }
}

/// A plan-count needs a plan to count.
void check_plan(const PoolSpec& pool, const Lines& lines, const std::string& path, const PoolDefaults& defaults)
{
    if (!pool.supervision.plan || !pool.supervision.plan->steps.empty()) return;
    const auto it = lines.find("plan-count");
    const std::string at = it != lines.end() ? config_location(path, it->second) : defaults.plan_count_at;
    if (at.empty()) throw UsageError("--plan-count needs a --plan");
    throw UsageError(at + "plan-count needs a plan, and pool '" + pool.name + "' has none");
}

/// What a pool runs: `command =`, `worker =` or the command after `--`; throws UsageError.
void choose_program(const Section& section, const std::string& path, const CommandLine& cl, const OptionsExtension& ext,
                    PoolSpec& pool)
{
    const ConfigEntry* command = find_entry(section, "command");
    const ConfigEntry* worker = find_entry(section, "worker");
    const std::string at = config_location(path, section.line);
    // What the binary has, when it says: a server binary that lists none takes any name here.
    const std::string types = !ext.worker_types.empty() ? "this binary has: " + join(ext.worker_types)
                            : ext.accepts_command       ? "this binary has none"
                                                        : "";
    if (command != nullptr && worker != nullptr)
        throw UsageError(config_location(path, std::max(command->line, worker->line)) + "pool '" + pool.name +
                         "' names both command (line " + std::to_string(command->line) + ") and worker (line " +
                         std::to_string(worker->line) + "); a pool runs one or the other");
    if (command != nullptr) {
        try {
            pool.command = split_command(command->value);
        } catch (const std::invalid_argument& e) {
            throw UsageError(config_location(path, command->line) + "invalid value '" + command->value +
                             "' for command: " + e.what());
        }
    } else if (worker != nullptr) {
        if (worker->value.empty())
            throw UsageError(config_location(path, worker->line) + "invalid value '' for worker: expected the name of "
                             "a Worker type" + (types.empty() ? "" : " (" + types + ")"));
        const auto& known = ext.worker_types;
        const bool accepted = known.empty() ? !ext.accepts_command
                                            : std::find(known.begin(), known.end(), worker->value) != known.end();
        if (!accepted)
            throw UsageError(config_location(path, worker->line) + "unknown worker type '" + worker->value +
                             "' for pool '" + pool.name + "' (" + types + ")");
        pool.worker = worker->value;
    } else if (ext.accepts_command) {
        if (cl.command.empty())
            throw UsageError(at + "pool '" + pool.name + "' has no command: give it `command = PROGRAM ARGS`, or "
                             "give every pool without one a command after --");
        pool.command = cl.command;
    } else {
        throw UsageError(at + "pool '" + pool.name + "' names neither a worker type (worker = NAME" +
                         (types.empty() ? "" : "; " + types) + ") nor a program (command = PROGRAM ARGS)");
    }
}

// Listening addresses
/// What a --listen address binds, to compare two pools' addresses: a unix path, an IPv4 or IPv6
/// address (as bytes; empty: every address) and a port, or a host name resolved at bind.
struct Bound {
    enum class Family { unix_path, v4, v6, name } family;
    std::string where;   // path, address bytes or host name
    std::uint16_t port = 0;
};

Bound bound(const std::string& text)
{
    const ListenAddress a = parse_listen(text);
    if (a.kind == ListenAddress::Kind::unix_path) return {Bound::Family::unix_path, a.path, 0};
    unsigned char bytes[16] = {};
    const auto address = [&](std::size_t size) {
        // The wildcard (0.0.0.0, ::) overlaps every address of its family.
        const bool any = std::all_of(bytes, bytes + size, [](unsigned char b) { return b == 0; });
        return any ? std::string{} : std::string(reinterpret_cast<const char*>(bytes), size);
    };
    if (a.host.empty()) return {Bound::Family::v4, {}, a.port};
    if (::inet_pton(AF_INET, a.host.c_str(), bytes) == 1) return {Bound::Family::v4, address(4), a.port};
    if (::inet_pton(AF_INET6, a.host.c_str(), bytes) == 1) return {Bound::Family::v6, address(16), a.port};
    return {Bound::Family::name, a.host, a.port};
}

bool clash(const Bound& a, const Bound& b)
{
    if (a.family != b.family) return false;
    if (a.family == Bound::Family::unix_path) return a.where == b.where;
    // Port 0 is a free port of the kernel's choice, a different one each time.
    if (a.port != b.port || a.port == 0) return false;
    if (a.family == Bound::Family::name) return a.where == b.where;
    return a.where.empty() || b.where.empty() || a.where == b.where;
}

void check_listen(const std::vector<PoolSpec>& pools, const std::vector<Lines>& lines, const std::string& path)
{
    for (std::size_t i = 1; i < pools.size(); ++i) {
        for (const std::string& mine : pools[i].options.listen) {
            for (std::size_t j = 0; j < i; ++j) {
                for (const std::string& theirs : pools[j].options.listen) {
                    if (!clash(bound(mine), bound(theirs))) continue;
                    const auto it = lines[i].find("listen");
                    const int line = it != lines[i].end() ? it->second : pools[i].line;
                    throw UsageError(config_location(path, line) + "pool '" + pools[i].name + "' cannot listen on " +
                                     mine + ": pool '" + pools[j].name + "' listens on " + theirs +
                                     " (two pools cannot share an address)");
                }
            }
        }
    }
}

/// Exec mode's own options (--heartbeat, --ready-after, --stop-signal, ...) as `mode` has them.
void take_exec_options(Options& options, const Options& mode)
{
    options.ready_after = mode.ready_after;
    options.stop_signal = mode.stop_signal;
    options.heartbeat = mode.heartbeat;
    options.stdout_level = mode.stdout_level;
    options.stderr_level = mode.stderr_level;
}

}  // namespace

std::string misplaced_at_top(const std::string& key, bool exec)
{
    if (key == "command" || key == "worker")
        return "option '" + key + "' names one pool's " + (key == "command" ? "program" : "Worker type") +
               "; put it in a [pool.NAME] section";
    const std::vector<OptionSpec> specs = standard_specs(Options{}, true);
    const OptionSpec* spec = find_spec(specs, key);
    if (!exec && spec != nullptr && spec->exec_only)
        return "option '" + key + "' applies to pools that run a command only; put it in [pool] or [pool.NAME]";
    return {};
}

void add_pools(CommandLine& cl, const ConfigFile* file, const PoolDefaults& defaults, const OptionsExtension& ext)
{
    // Sections know the options of pools that run a command, in a server binary too.
    const std::vector<OptionSpec> specs = standard_specs(exec_defaults(), true);
    const std::string path = file != nullptr ? file->path : std::string{};
    auto [all, named] = file != nullptr ? read_sections(*file, specs, defaults)
                                        : std::pair<std::optional<Section>, std::vector<Section>>{};

    // Without [pool.NAME]: the one pool, as ever
    if (named.empty()) {
        PoolSpec main{"main", cl.options, cl.command, "", defaults.supervision, 0};
        Lines lines;
        if (all) {
            for (const ConfigEntry* entry : all->entries)
                if (const OptionSpec* spec = find_spec(specs, entry->key);
                    !ext.accepts_command && spec != nullptr && spec->exec_only)
                    throw UsageError(config_location(path, entry->line) + "option '" + entry->key +
                                     "' applies to pools that run a command only, and pool 'main' runs this binary's workers");
            apply(*all, path, specs, ext.accepts_command, main, lines);
        }
        check_plan(main, lines, path, defaults);
        cl.options = main.options;
        cl.pools = {std::move(main)};
        return;
    }

    // One pool per [pool.NAME], in file order
    std::vector<PoolSpec> pools;
    std::vector<Lines> lines;
    bool any_command = false;
    for (const Section& section : named) {
        PoolSpec pool{section.name, cl.options, {}, "", defaults.supervision, section.line};
        choose_program(section, path, cl, ext, pool);
        const bool exec_pool = pool.worker.empty();
        any_command = any_command || exec_pool;
        // A program may know nothing of herd, a Worker knows heartbeats and QUIT: each pool gets
        // its kind's defaults for exec mode's options (the command line sets them in exec mode).
        if (exec_pool && !ext.accepts_command) take_exec_options(pool.options, exec_defaults());
        if (!exec_pool && ext.accepts_command) take_exec_options(pool.options, Options{});
        Lines& mine = lines.emplace_back();
        if (all) apply(*all, path, specs, exec_pool, pool, mine);
        apply(section, path, specs, exec_pool, pool, mine);
        check_plan(pool, mine, path, defaults);
        try {
            validate(pool.options);
        } catch (const UsageError& e) {
            throw UsageError("pool " + pool.name + ": " + e.what());
        }
        pools.push_back(std::move(pool));
    }
    // [pool]'s exec options are left out from Worker pools: with no pool to take them, a mistake.
    if (all && !any_command) {
        for (const ConfigEntry* entry : all->entries)
            if (const OptionSpec* spec = find_spec(specs, entry->key); spec != nullptr && spec->exec_only)
                throw UsageError(config_location(path, entry->line) + "option '" + entry->key +
                                 "' applies to pools that run a command only, and no pool does");
    }
    check_listen(pools, lines, path);
    cl.pools = std::move(pools);
}

std::string program_of(const PoolSpec& pool)
{
    if (pool.command.empty()) return "worker " + (pool.worker.empty() ? std::string("(the default)") : pool.worker);
    std::string line;
    for (const auto& arg : pool.command) {
        if (!line.empty()) line += ' ';
        const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\") == std::string::npos;
        if (plain) {
            line += arg;
            continue;
        }
        line += '\'';   // split_command() reads it back: '\'' inside single quotes
        for (const char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
        line += '\'';
    }
    return line;
}

}  // namespace herd
