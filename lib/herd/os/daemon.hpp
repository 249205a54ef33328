// Daemon mode: the manager detaches from the starting command, which waits on a pipe until the
// pool is ready (or the manager failed), then exits 0, or prints the manager's line and exits 1.
#pragma once

#include <string>

namespace herd {

/// Fork twice and detach (setsid, stdin and stdout on /dev/null). In the starting command:
/// waits for the daemon's report and returns the exit code (0 ready, 1 failed). In the daemon:
/// returns -1 with ready_fd the pipe to report() on.
int daemonize(int& ready_fd);

/// Tell the waiting starting command how the start went ("ok\n", or the error line); nothing when
/// fd < 0 (not a daemon).
void report(int fd, const std::string& message);

}  // namespace herd
