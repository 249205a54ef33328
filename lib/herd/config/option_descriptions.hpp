// The standard options as Program_options describes them (a description per option of the
// table, in the table's groups, then the application's own) and the help text printed from those
// descriptions. Used by parse_command_line (options.cpp).
#pragma once

#include <herd/config/option_table.hpp>
#include <herd/config/options.hpp>

#include <boost/program_options.hpp>

#include <string>
#include <utility>
#include <vector>

namespace herd {

struct Descriptions {
    std::vector<std::pair<std::string, boost::program_options::options_description>> groups;   // standard, in help order
    boost::program_options::options_description app{"Application options"};
    boost::program_options::options_description all;                                         // everything, for parsing
};

/// The descriptions of the table's options and the application's (ext.add_options).
Descriptions make_descriptions(const std::vector<OptionSpec>& specs, const OptionsExtension& ext);

/// --help: the usage line, every group of options with its defaults, and the formats of values.
std::string make_help_text(const Descriptions& desc, const std::vector<OptionSpec>& specs, const OptionsExtension& ext,
                           const std::string& program);

}  // namespace herd
