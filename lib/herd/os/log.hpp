// Logging: the synchronous default spdlog logger "herd", shared by the manager and its workers.
//
// Every line carries the role and the pid:
//   [2026-11-21 05:45:49.123] [manager 1234] [info] manager 1234 started: 4 workers, generation 1
//   [2026-11-21 05:45:49.125] [worker[2] 1240] [info] worker 1240 stopping gracefully (QUIT)
// Each line is flushed as it is written (a worker may be killed at any moment, and operators and
// tests read the log live). No threads: no async logger, no periodic flusher, so fork() is safe.
// A log file is opened with FD_CLOEXEC and reopened on USR1 (after logrotate moved it away).
#pragma once

#include <string>
#include <string_view>

namespace herd::log {

/// Make "herd" the default logger: `level` (see level_names()), to `file` or stderr if empty,
/// lines tagged with `role` and this pid. Throws std::invalid_argument for an unknown level,
/// std::system_error if the file cannot be opened.
void setup(const std::string& level, const std::string& file, const std::string& role);

/// Tag lines with a new role and the current pid (in a worker right after fork).
void set_role(const std::string& role);

/// A level of log lines, as --log-level, --stdout-level and --stderr-level name them.
enum class Level { trace, debug, info, warn, error, critical, off };
/// "trace" ... "off" (see level_names()); throws std::invalid_argument naming the text.
Level parse_level(std::string_view name);

/// Log one line at `level` in another process's name: "[web[2] 1240] [warn] <text>". The manager
/// logs its workers' output this way (output_pipes.hpp), so it reads like a worker's own lines.
void write_as(const std::string& role, int pid, Level level, std::string_view text);

/// In a worker whose stderr is about to become a pipe to the manager: when logging to stderr,
/// go on writing log lines to the stderr as it is now (a close-on-exec copy), so that the
/// manager does not log them a second time. Nothing changes when logging to a file.
void keep_stderr();

/// Reopen the log file (USR1); nothing to do for stderr. If the file cannot be opened, logs
/// the reason and keeps writing to the old one.
void reopen() noexcept;

/// The accepted levels: "trace, debug, info, warn, error, critical, off".
std::string level_names();

}  // namespace herd::log
