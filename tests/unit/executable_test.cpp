// What execve(2) would say about a command: finding it in PATH, and refusing what the kernel would.
#include <herd/os/executable.hpp>

#include <herd/config/options.hpp>
#include <herd/option_types.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace herd;

namespace {

struct TempDir {
    std::string path;
    TempDir()
    {
        char name[] = "/tmp/herd-exec-test-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name, mode_t mode, const std::string& text = "#!/bin/sh\n") const
    {
        const std::string p = path + "/" + name;
        std::ofstream(p) << text;
        ::chmod(p.c_str(), mode);
        return p;
    }
};

std::string error_of(const std::vector<std::string>& command, const std::string& path)
{
    try {
        resolve_command(command, path);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a command without a slash is found in PATH, in order, and keeps argv as typed")
{
    TempDir a, b;
    b.file("app", 0755);
    const Program p = resolve_command({"app", "--port", "1"}, a.path + ":" + b.path);
    CHECK(p.path == b.path + "/app");
    CHECK(p.argv == std::vector<std::string>{"app", "--port", "1"});
    a.file("app", 0755);
    CHECK(resolve_command({"app"}, a.path + ":" + b.path).path == a.path + "/app");
}

TEST_CASE("a command with a slash is taken as a path, made absolute")
{
    TempDir d;
    d.file("run.sh", 0755);
    CHECK(resolve_command({d.path + "/./run.sh"}, "").path == d.path + "/run.sh");
    const std::string cwd = std::filesystem::current_path().string();
    REQUIRE(::chdir(d.path.c_str()) == 0);
    const Program p = resolve_command({"./run.sh"}, "/nonexistent");
    REQUIRE(::chdir(cwd.c_str()) == 0);
    CHECK(p.path == std::filesystem::canonical(d.path).string() + "/run.sh");
    CHECK(p.argv.front() == "./run.sh");
}

TEST_CASE("a missing, non-executable or absent command is a usage error naming it")
{
    TempDir d;
    d.file("data.txt", 0644);
    CHECK(error_of({"no-such-program"}, d.path) == "cannot execute 'no-such-program': not found in PATH (" + d.path + ")");
    CHECK(error_of({"data.txt"}, d.path) == "cannot execute 'data.txt': Permission denied");
    CHECK(error_of({d.path + "/data.txt"}, "") == "cannot execute " + d.path + "/data.txt: Permission denied");
    CHECK(error_of({d.path + "/none"}, "") == "cannot execute " + d.path + "/none: No such file or directory");
    CHECK(error_of({d.path}, "") == "cannot execute " + d.path + ": Is a directory");
    CHECK(error_of({}, "/bin") == "no command to run: herd [options] -- COMMAND [ARGS...]");
    CHECK(error_of({""}, "/bin") == "no command to run: herd [options] -- COMMAND [ARGS...]");
}

TEST_CASE("a file the kernel cannot execute is refused as execve would: no ELF magic and no #!, or a #! interpreter that cannot run")
{
    TempDir d;
    const std::string format = "Exec format error (neither an ELF binary nor a script starting with #!)";
    const auto script = d.file("noshebang.sh", 0755, "echo hello\n");
    CHECK(error_of({script}, "") == "cannot execute " + script + ": " + format);
    CHECK(error_of({"noshebang.sh"}, d.path) == "cannot execute " + script + ": " + format);   // found in PATH: stops there
    const auto empty = d.file("empty", 0755, "");
    CHECK(error_of({empty}, "") == "cannot execute " + empty + ": " + format);
    const auto missing = d.file("missing.sh", 0755, "#!/nonexistent/sh\necho\n");
    CHECK(error_of({missing}, "") ==
          "cannot execute " + missing + ": its interpreter /nonexistent/sh (#! line): No such file or directory");
    const auto dir = d.file("dir.sh", 0755, "#!" + d.path + "\n");
    CHECK(error_of({dir}, "") == "cannot execute " + dir + ": its interpreter " + d.path + " (#! line): Is a directory");
    const auto plain = d.file("plain", 0644, "#!/bin/sh\n");
    const auto via_plain = d.file("via-plain.sh", 0755, "#!" + plain + "\n");
    CHECK(error_of({via_plain}, "") ==
          "cannot execute " + via_plain + ": its interpreter " + plain + " (#! line): Permission denied");
    const auto bad = d.file("bad-interp.sh", 0755, "#!" + script + "\n");   // a script naming a script without #!
    CHECK(error_of({bad}, "") == "cannot execute " + bad + ": its interpreter " + script + " (#! line): " + format);
    const auto blank = d.file("blank.sh", 0755, "#!   \nexit 0\n");
    CHECK(error_of({blank}, "") == "cannot execute " + blank + ": Exec format error (its #! line names no interpreter)");
    const auto long_line = d.file("long.sh", 0755, "#!/" + std::string(300, 'x'));
    CHECK(error_of({long_line}, "").find("longer than the 256 bytes the kernel reads") != std::string::npos);

    // What the kernel runs
    CHECK(error_of({"/bin/true"}, "") == "");                                          // ELF
    CHECK(error_of({d.file("ok.sh", 0755, "#! /bin/sh -e\nexit 0\n")}, "") == "");   // blanks, an argument
    CHECK(error_of({d.file("env.sh", 0755, "#!/usr/bin/env sh\n")}, "") == "");
    const auto nested = d.file("nested.sh", 0755, "#!" + d.file("inner.sh", 0755, "#!/bin/sh\n") + "\n");
    CHECK(error_of({nested}, "") == "");                                               // a script as interpreter
}

TEST_CASE("an ELF binary whose loader is missing is refused naming the loader, as execve would fail with ENOENT")
{
    TempDir d;
    std::ifstream in("/bin/true", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string loader = "/lib64/ld-linux-x86-64.so.2";
    const auto at = bytes.find(loader + '\0');
    if (at == std::string::npos) {
        MESSAGE("skipped: /bin/true does not name " << loader);
        return;
    }
    const std::string elsewhere = "/lib64/ld-linux-x86-64.so.9";   // same length: the ELF layout stays
    const std::string copy = d.path + "/foreign-true";
    std::ofstream(copy, std::ios::binary) << bytes.replace(at, loader.size(), elsewhere);
    ::chmod(copy.c_str(), 0755);
    CHECK(error_of({copy}, "") == "cannot execute " + copy + ": its ELF interpreter " + elsewhere + ": No such file or directory");
    CHECK(error_of({"foreign-true"}, d.path) ==
          "cannot execute " + copy + ": its ELF interpreter " + elsewhere + ": No such file or directory");
}
