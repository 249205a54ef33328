// Options: parsing of the standard command line (DESIGN.md §2); the rules between options are
// in options_validate.cpp, the descriptions and the help text in option_descriptions.cpp.
//
// Program_options keeps every standard value as text; the table of option_table.hpp converts it,
// so that a bad value becomes one line naming the option and the value.
// The config file is read by config_file.hpp (not with po::parse_config_file), so that errors can
// name the file and the line; its entries are stored here as Program_options values.
#include <herd/config/options.hpp>

#include <herd/config/config_file.hpp>
#include <herd/config/option_descriptions.hpp>
#include <herd/config/option_table.hpp>
#include <herd/config/option_types.hpp>
#include <herd/config/pools.hpp>
#include <herd/config/supervision_values.hpp>
#include <herd/core/text.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <optional>

namespace herd {

namespace po = boost::program_options;

namespace {

// Error messages
/// Where a standard option's value came from, for error messages: "" (command line) or "config file X, line N: ".
using Sources = std::map<std::string, std::string>;

std::string display_name(const std::string& key, const Sources& sources)
{
    return sources.contains(key) ? key : "--" + key;
}

std::string source_of(const std::string& key, const Sources& sources)
{
    const auto it = sources.find(key);
    return it == sources.end() ? std::string{} : it->second;
}

/// The value a failing option was given: the first one its value semantic rejects.
std::string rejected_value(const po::parsed_options& parsed, const po::options_description& desc,
                           const std::string& key)
{
    const po::option_description* d = desc.find_nothrow(key, false);
    for (const po::option& opt : parsed.options) {
        if (opt.string_key != key || d == nullptr) continue;
        try {
            boost::any scratch;
            d->semantic()->parse(scratch, opt.value, true);
        } catch (const po::error&) {
            return opt.value.empty() ? std::string{} : opt.value.front();
        }
    }
    return {};
}

/// One line for a Program_options error; `where` prefixes config-file errors.
std::string describe(const po::error& e, const po::parsed_options& parsed, const po::options_description& desc,
                     const std::string& where)
{
    const auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
    std::string key = named != nullptr ? named->get_option_name() : std::string{};
    key.erase(0, key.find_first_not_of('-'));
    const std::string name = where.empty() ? "--" + key : key;

    if (dynamic_cast<const po::unknown_option*>(&e) != nullptr)
        return where + "unknown option " + (where.empty() ? named->get_option_name() : "'" + key + "'");
    if (dynamic_cast<const po::multiple_occurrences*>(&e) != nullptr)
        return where + "option " + name + " given more than once";
    if (const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&e)) {
        if (syntax->kind() == po::invalid_syntax::missing_parameter)
            return where + "option " + name + " needs a value";
        if (syntax->kind() == po::invalid_syntax::extra_parameter)
            return where + "option " + name + " takes no value";
    }
    if (dynamic_cast<const po::validation_error*>(&e) != nullptr && !key.empty()) {
        const auto* typed = dynamic_cast<const InvalidOptionValue*>(&e);   // an application's, with why
        return where + "invalid value '" + rejected_value(parsed, desc, key) + "' for " + name +
               (typed != nullptr ? ": " + typed->why() : "");
    }
    return where + e.what();
}

std::string basename_of(const char* path)
{
    const std::string s = path == nullptr ? "" : path;
    return s.substr(s.rfind('/') + 1);
}

// Parsing steps
void store_command_line(const std::vector<std::string>& args, const po::options_description& all,
                        bool accepts_command, po::variables_map& vm)
{
    // No guessing: "--work" must not quietly mean --workers (nor break when an option is added).
    const auto style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::parsed_options parsed(&all);
    try {
        parsed = po::command_line_parser(args).options(all).style(style).run();
    } catch (const po::error& e) {
        throw UsageError(describe(e, parsed, all, ""));
    }
    for (const po::option& opt : parsed.options) {
        // Without a positional description, Program_options hands positional arguments back unnamed.
        if (opt.position_key >= 0 || opt.string_key.empty()) {
            const std::string arg = opt.value.empty() ? std::string{} : opt.value.front();
            throw UsageError("unexpected argument '" + arg + "'" +
                             (accepts_command ? " (the command goes after --)" : ""));
        }
    }
    try {
        po::store(parsed, vm);
    } catch (const po::error& e) {
        throw UsageError(describe(e, parsed, all, ""));
    }
}

/// Store the values of the file's top (before any [section]) where the command line left none;
/// returns where each one came from. The sections are the pools' (pools.hpp).
Sources store_config_file(const ConfigFile& file, const std::vector<OptionSpec>& specs, const po::options_description& all,
                          bool exec, po::variables_map& vm)
{
    const std::string& path = file.path;
    Sources sources;
    std::map<std::string, std::string> last_line;   // a "given more than once" is about the last one
    po::parsed_options from_file(&all);
    for (const ConfigEntry& entry : file.entries) {
        if (!entry.section.empty()) continue;
        const std::string at = config_location(path, entry.line);
        if (const std::string why = misplaced_at_top(entry.key, exec); !why.empty()) throw UsageError(at + why);
        const auto spec =
            std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return long_name(s) == entry.key; });
        if (spec != specs.end() && spec->command_line_only)
            throw UsageError(at + "option '" + entry.key + "' is only allowed on the command line");
        if (all.find_nothrow(entry.key, false) == nullptr) throw UsageError(at + "unknown option '" + entry.key + "'");

        po::option opt(entry.key, {entry.value});
        opt.original_tokens = {entry.key, entry.value};
        from_file.options.push_back(std::move(opt));
        if (!vm.count(entry.key)) sources[entry.key] = at;
        last_line[entry.key] = at;
    }
    try {
        po::store(from_file, vm);
    } catch (const po::error& e) {
        const auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
        const auto it = named != nullptr ? last_line.find(named->get_option_name()) : last_line.end();
        const std::string at = it != last_line.end() ? it->second : "config file " + path + ": ";
        throw UsageError(describe(e, from_file, all, at));
    }
    return sources;
}

}  // namespace

// Exec mode's defaults
Options exec_defaults()
{
    Options o;
    o.ready_after = std::chrono::seconds(1);
    o.stop_signal = SIGTERM;
    o.heartbeat = HeartbeatMode::automatic;
    o.stderr_level = "info";
    return o;
}

// Command line and config file
namespace {

CommandLine parse(int argc, const char* const argv[], const OptionsExtension& ext)
{
    CommandLine result;
    result.options = ext.defaults;
    result.argv.assign(argv, argv + argc);
    const std::vector<OptionSpec> specs = standard_specs(ext.defaults, ext.accepts_command);
    const Descriptions desc = make_descriptions(specs, ext);
    const std::string program = ext.program.empty() ? basename_of(argc > 0 ? argv[0] : nullptr) : ext.program;
    result.help_text = make_help_text(desc, specs, ext, program);

    // Command line, split at `--`
    std::vector<std::string> args;
    bool after_dashes = false;
    for (int i = 1; i < argc; ++i) {
        if (after_dashes) result.command.emplace_back(argv[i]);
        else if (std::string_view(argv[i]) == "--") after_dashes = true;
        else args.emplace_back(argv[i]);
    }
    if (!ext.accepts_command && !result.command.empty())
        throw UsageError("unexpected argument '" + result.command.front() + "'");
    auto vm = std::make_shared<po::variables_map>();
    result.app_args = vm;
    store_command_line(args, desc.all, ext.accepts_command, *vm);

    // Help and version need nothing else, not even a readable config file
    result.help = vm->count("help") > 0;
    result.version = vm->count("version") > 0;
    if (result.help || result.version) return result;

    // Config file: its top fills what the command line left unset
    Sources sources;
    std::optional<ConfigFile> file;
    if (vm->count("config")) {
        file = load_config_file((*vm)["config"].as<std::string>());
        sources = store_config_file(*file, specs, desc.all, ext.accepts_command, *vm);
    }
    try {
        po::notify(*vm);
    } catch (const po::error& e) {
        throw UsageError(describe(e, po::parsed_options(&desc.all), desc.all, ""));
    }

    // Conversion of the standard options; restart, plan, ... are every pool's defaults
    Supervision supervision;
    const auto convert_to = [&](const std::string& key, const std::string& value, auto&& set) {
        try {
            set(value);
        } catch (const std::invalid_argument& e) {
            throw UsageError(source_of(key, sources) + "invalid value '" + value + "' for " + display_name(key, sources) +
                             ": " + e.what());
        }
    };
    for (const OptionSpec& spec : specs) {
        const std::string key = long_name(spec);
        if ((spec.set == nullptr && spec.supervise == nullptr) || !vm->count(key)) continue;
        const auto convert = [&](const std::string& value) {
            convert_to(key, value, [&](const std::string& v) {
                if (spec.set != nullptr) spec.set(result.options, v);
                else spec.supervise(supervision, v);
            });
        };
        if (spec.kind == OptionKind::repeated) {
            for (const auto& value : (*vm)[key].as<std::vector<std::string>>()) convert(value);
        } else {
            convert((*vm)[key].as<std::string>());
        }
    }
    if (vm->count("restart-strategy"))
        convert_to("restart-strategy", (*vm)["restart-strategy"].as<std::string>(),
                   [&](const std::string& v) { result.strategy = parse_strategy(v); });
    result.options.app_args.map = vm;

    // The pools: `main`, or one per [pool.NAME] section
    PoolDefaults defaults{supervision, {}, source_of("plan-count", sources)};
    for (const auto& d : desc.app.options()) defaults.app_options.push_back(d->long_name());
    add_pools(result, file ? &*file : nullptr, defaults, ext);
    return result;
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const argv[], const OptionsExtension& ext)
{
    try {
        return parse(argc, argv, ext);
    } catch (const UsageError& e) {
        // Messages quote the config file's and the command line's bytes: on stderr, and in the log
        // on HUP, they must stay one line without control characters.
        throw UsageError(printable(e.what(), 1024));
    }
}

}  // namespace herd
