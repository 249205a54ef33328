// What execve(2) would say about a command, short of running it: exec mode refuses at start, with
// one line naming the command, what the kernel would refuse at every spawn.
//
// A command with a '/' is a path; without one it is looked up in PATH, as execvp(3) does. A file
// is executable when it is a regular file with the x bit that starts with ELF's magic (and whose
// loader, PT_INTERP, is there), or with "#!" and an interpreter that passes the same test (a
// script may name a script, four deep, as the kernel allows); anything else is ENOEXEC, unless
// binfmt_misc has handlers (herd does not match their rules).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd {

/// The program exec mode runs.
struct Program {
    std::string path;                 // what is exec'd: absolute, resolved at start
    std::vector<std::string> argv;    // as given after `--`; argv[0] as typed
    friend bool operator==(const Program&, const Program&) = default;
};

/// Find COMMAND as execvp(3) would, in `path_env` (PATH) unless it has a '/'; throws UsageError
/// ("cannot execute 'x': not found in PATH (...)", "cannot execute ./x: Permission denied"),
/// and when there is no command at all.
Program resolve_command(const std::vector<std::string>& command, std::string_view path_env);

}  // namespace herd
