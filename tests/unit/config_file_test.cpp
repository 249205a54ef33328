// The config file reader: entries with their section and line, comments, errors (config_file.hpp).
#include <herd/config/config_file.hpp>

#include <herd/config/options.hpp>
#include <herd/option_types.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Entries = std::vector<herd::ConfigEntry>;

/// The UsageError text parsing `text` gives, or "" if it succeeds.
std::string parse_error(const std::string& text)
{
    try {
        herd::parse_config_text("app.conf", text);
    } catch (const herd::UsageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("every entry keeps its key, value, section and line, in file order")
{
    const Entries entries = herd::parse_config_text("app.conf",
                                                    "workers = 4\n"
                                                    "\n"
                                                    "listen=:8080\n"
                                                    "[pool]\n"
                                                    "graceful-timeout = 10s\n"
                                                    "[ pool.web ]\n"
                                                    "workers = 8\n"
                                                    "listen = :8080\n");
    CHECK(entries == Entries{{"", "workers", "4", 1},
                             {"", "listen", ":8080", 3},
                             {"pool", "graceful-timeout", "10s", 5},
                             {"pool.web", "workers", "8", 7},
                             {"pool.web", "listen", ":8080", 8}});
}

TEST_CASE("comments, blank lines and line ends are skipped")
{
    const Entries entries = herd::parse_config_text("app.conf",
                                                    "# a comment\r\n"
                                                    "; another\n"
                                                    "   \t\n"
                                                    "workers = 7   # peak\r\n"
                                                    "listen = unix:/tmp/a#b.sock\n"
                                                    "name = x\t# tab before the comment\n"
                                                    "user = www");
    CHECK(entries == Entries{{"", "workers", "7", 4},
                             {"", "listen", "unix:/tmp/a#b.sock", 5},
                             {"", "name", "x", 6},
                             {"", "user", "www", 7}});
    CHECK(herd::parse_config_text("app.conf", "").empty());
}

TEST_CASE("a value keeps what follows the first equals sign, and may be empty")
{
    CHECK(herd::parse_config_text("app.conf", "command = env A=1 app\nlog-file =\n") ==
          Entries{{"", "command", "env A=1 app", 1}, {"", "log-file", "", 2}});
}

TEST_CASE("a malformed line is named with the file and the line")
{
    CHECK(parse_error("workers = 2\nworkers 4\n") == "config file app.conf, line 2: expected key = value, got 'workers 4'");
    CHECK(parse_error("= 4\n") == "config file app.conf, line 1: expected key = value, got '= 4'");
    CHECK(parse_error("\n\n[pool.web\n") == "config file app.conf, line 3: expected [section], got '[pool.web'");
    CHECK(parse_error("[pool]\n[ ]\nworkers = 2\n") == "config file app.conf, line 2: expected a name in [section], got '[ ]'");
}

TEST_CASE("every section is listed with its line, also one without entries")
{
    const herd::ConfigFile file = herd::parse_config("app.conf",
                                                     "workers = 2\n"
                                                     "[pool.cache]\n"
                                                     "# nothing of its own\n"
                                                     "[ pool ]\n"
                                                     "spare = 1\n"
                                                     "[pool.web]\n");
    CHECK(file.path == "app.conf");
    CHECK(file.sections ==
          std::vector<herd::ConfigSection>{{"pool.cache", 2}, {"pool", 4}, {"pool.web", 6}});
    CHECK(file.entries == Entries{{"", "workers", "2", 1}, {"pool", "spare", "1", 5}});
    CHECK(herd::parse_config("app.conf", "workers = 2\n").sections.empty());
}

TEST_CASE("a file that cannot be read is named with the reason")
{
    char name[] = "/tmp/herd-config-file-test-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    const std::string dir = name;
    const std::string file = dir + "/herd.conf";
    std::ofstream(file) << "workers = 3\n";
    CHECK(herd::read_config_file(file) == Entries{{"", "workers", "3", 1}});
    const auto error = [](const std::string& path) -> std::string {
        try {
            herd::read_config_file(path);
        } catch (const herd::UsageError& e) {
            return e.what();
        }
        return "";
    };
    CHECK(error(dir + "/missing.conf") == "cannot read config file " + dir + "/missing.conf: No such file or directory");
    CHECK(error(dir) == "cannot read config file " + dir + ": Is a directory");
    std::filesystem::remove_all(dir);
}
