// Program_options descriptions of the standard options, and the help text (option_descriptions.hpp).
#include <herd/config/option_descriptions.hpp>

#include <algorithm>

namespace herd {

namespace po = boost::program_options;

namespace {

po::typed_value<std::string>* flag_value()
{
    // A flag takes no argument on the command line and "true"/"false" in the config file.
    return po::value<std::string>()->zero_tokens()->implicit_value("true", "");
}

// Help text
std::string wrap(const std::string& text, std::size_t indent, std::size_t width)
{
    std::string out;
    std::size_t column = indent;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t end = std::min(text.find(' ', pos), text.size());
        const std::size_t word = end - pos;
        if (column > indent && column + 1 + word > width) {
            out += '\n' + std::string(indent, ' ');
            column = indent;
        } else if (column > indent) {
            out += ' ';
            ++column;
        }
        out.append(text, pos, word);
        column += word;
        pos = end + 1;
    }
    return out;
}

void format_option(std::string& out, const po::option_description& d, std::string default_text)
{
    constexpr std::size_t column = 30;
    constexpr std::size_t width = 80;
    const std::string shown = d.canonical_display_name(po::command_line_style::allow_dash_for_short);
    const bool has_short = shown.size() == 2 && shown[0] == '-';
    std::string left = has_short ? "  " + shown : "    ";
    if (!d.long_name().empty()) left += (has_short ? ", --" : "  --") + d.long_name();
    std::string param = d.semantic()->max_tokens() == 0 ? "" : d.format_parameter();
    // An application's po::default_value shows as "arg (=8080)": move it to "(default 8080)".
    if (const auto at = param.find(" (="); at != std::string::npos && param.back() == ')') {
        if (default_text.empty()) default_text = param.substr(at + 3, param.size() - at - 4);
        param.erase(at);
    }
    if (!param.empty()) left += " " + param;

    std::string help = d.description();
    // "(default X)" stays on one line: its blank is a placeholder until after wrapping.
    if (!default_text.empty()) help += (help.empty() ? "(default\x01" : " (default\x01") + default_text + ")";
    out += left;
    if (left.size() + 2 > column) {
        out += '\n' + std::string(column, ' ');
    } else {
        out += std::string(column - left.size(), ' ');
    }
    std::string wrapped = wrap(help, column, width);
    std::replace(wrapped.begin(), wrapped.end(), '\x01', ' ');
    out += wrapped + '\n';
}

}  // namespace

Descriptions make_descriptions(const std::vector<OptionSpec>& specs, const OptionsExtension& ext)
{
    Descriptions desc;
    for (const OptionSpec& spec : specs) {
        if (desc.groups.empty() || desc.groups.back().first != spec.group)
            desc.groups.emplace_back(spec.group, po::options_description(spec.group));
        po::value_semantic* semantic = nullptr;
        if (spec.kind == OptionKind::flag)
            semantic = flag_value();
        else if (spec.kind == OptionKind::repeated)
            semantic = po::value<std::vector<std::string>>()->value_name(spec.param);
        else
            semantic = po::value<std::string>()->value_name(spec.param);
        desc.groups.back().second.add_options()(spec.names, semantic, spec.help.c_str());
    }
    if (ext.add_options) ext.add_options(desc.app);
    for (const auto& [name, group] : desc.groups) desc.all.add(group);
    desc.all.add(desc.app);
    return desc;
}

std::string make_help_text(const Descriptions& desc, const std::vector<OptionSpec>& specs, const OptionsExtension& ext,
                           const std::string& program)
{
    const std::string usage = !ext.usage.empty() ? ext.usage
                            : program + " [options]" + (ext.accepts_command ? " -- COMMAND [ARGS...]" : "");
    std::string help = "Usage: " + usage + "\n";
    for (const auto& [name, group] : desc.groups) {
        help += "\n" + name + ":\n";
        for (const auto& d : group.options()) {
            const auto spec = std::find_if(specs.begin(), specs.end(),
                                           [&](const OptionSpec& s) { return long_name(s) == d->long_name(); });
            format_option(help, *d, spec->default_text);
        }
    }
    if (!desc.app.options().empty()) {
        help += "\n" + (ext.program.empty() ? std::string("Application") : ext.program) + " options:\n";
        for (const auto& d : desc.app.options()) format_option(help, *d, "");
    }
    help += "\nDurations: 250ms, 2s, 1.5s, 3m, 1h, or a bare number of seconds.\n"
            "Config file: `key = value` lines, long option names; the command line wins over\n"
            "the file's top, its [pool] and [pool.NAME] sections win over both.\n";
    return help;
}

}  // namespace herd
