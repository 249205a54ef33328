// The config file reader (see config_file.hpp).
#include <herd/config/config_file.hpp>

#include <herd/config/option_values.hpp>
#include <herd/config/options.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace herd {

namespace {

std::string read_text(const std::string& path)
{
    std::FILE* file = std::fopen(path.c_str(), "re");
    if (file == nullptr)
        throw UsageError("cannot read config file " + path + ": " + std::strerror(errno));
    std::string text;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
    // fopen succeeds on a directory; the error (EISDIR) only shows when reading.
    const int error = std::ferror(file) ? errno : 0;
    std::fclose(file);
    if (error != 0) throw UsageError("cannot read config file " + path + ": " + std::strerror(error));
    return text;
}

}  // namespace

std::string config_location(const std::string& path, int line)
{
    return "config file " + path + ", line " + std::to_string(line) + ": ";
}

ConfigFile parse_config(const std::string& path, std::string_view text)
{
    ConfigFile file{path, {}, {}};
    std::string section;
    int number = 0;
    while (!text.empty()) {
        const std::size_t eol = std::min(text.find('\n'), text.size());
        std::string_view line = text.substr(0, eol);
        text.remove_prefix(std::min(eol + 1, text.size()));
        ++number;
        const std::string where = config_location(path, number);

        // Comments, also after a value when preceded by a blank ("workers = 4  # peak")
        for (std::size_t hash = line.find('#'); hash != std::string_view::npos; hash = line.find('#', hash + 1)) {
            if (hash == 0 || line[hash - 1] == ' ' || line[hash - 1] == '\t') {
                line = line.substr(0, hash);
                break;
            }
        }
        line = trim(line);
        if (line.empty() || line[0] == ';') continue;

        if (line.front() == '[') {
            if (line.back() != ']')
                throw UsageError(where + "expected [section], got '" + std::string(line) + "'");
            section = std::string(trim(line.substr(1, line.size() - 2)));
            // "[]" would make the lines after it look like the top of the file.
            if (section.empty()) throw UsageError(where + "expected a name in [section], got '" + std::string(line) + "'");
            file.sections.push_back({section, number});
            continue;
        }
        const std::size_t eq = line.find('=');
        const std::string_view key = eq == std::string_view::npos ? std::string_view{} : trim(line.substr(0, eq));
        if (key.empty()) throw UsageError(where + "expected key = value, got '" + std::string(line) + "'");
        file.entries.push_back({section, std::string(key), std::string(trim(line.substr(eq + 1))), number});
    }
    return file;
}

std::vector<ConfigEntry> parse_config_text(const std::string& path, std::string_view text)
{
    return parse_config(path, text).entries;
}

ConfigFile load_config_file(const std::string& path)
{
    return parse_config(path, read_text(path));
}

std::vector<ConfigEntry> read_config_file(const std::string& path)
{
    return load_config_file(path).entries;
}

}  // namespace herd
