// The config file (--config FILE, DESIGN.md §2): INI-style lines, read here rather than with
// po::parse_config_file so that every error names the file and the line.
//
//     # a comment (`; ...` too, and `# ...` after a value when a blank comes before it)
//     workers = 4
//     [pool.web]
//     listen = :8080          # an entry of section "pool.web"
//
// The reader knows no option names: it returns every entry with its section and line, in file
// order, and the caller decides what a key means and where it is allowed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// One `key = value` line of a config file.
struct ConfigEntry {
    std::string section;   // "" before any [section]
    std::string key;
    std::string value;
    int line = 0;          // 1 for the file's first line
    friend bool operator==(const ConfigEntry&, const ConfigEntry&) = default;
};

/// One `[name]` line of a config file.
struct ConfigSection {
    std::string name;
    int line = 0;
    friend bool operator==(const ConfigSection&, const ConfigSection&) = default;
};

/// A config file's entries and its sections, each in file order (a section may have no entries).
struct ConfigFile {
    std::string path;
    std::vector<ConfigEntry> entries;
    std::vector<ConfigSection> sections;
};

/// "config file PATH, line N: ", the start of every message about that line.
std::string config_location(const std::string& path, int line);

/// Config text read from `path`; throws UsageError naming the file and the line.
ConfigFile parse_config(const std::string& path, std::string_view text);

/// The entries of config text read from `path`; throws UsageError naming the file and the line.
std::vector<ConfigEntry> parse_config_text(const std::string& path, std::string_view text);

/// The file at `path`; throws UsageError naming the file (and the reason it cannot be read, or
/// the line that is malformed).
ConfigFile load_config_file(const std::string& path);

/// The entries of the file at `path`; throws UsageError naming the file (and the reason it cannot
/// be read, or the line that is malformed).
std::vector<ConfigEntry> read_config_file(const std::string& path);

}  // namespace herd
