#include <herd/os/signals.hpp>

#include <csignal>
#include <cstring>

namespace herd {

std::optional<Command> command_for(int signal)
{
    switch (signal) {
    case SIGINT:
    case SIGTERM: return Command::fast_stop;
    case SIGQUIT: return Command::graceful_stop;
    case SIGTTIN: return Command::scale_up;
    case SIGTTOU: return Command::scale_down;
    case SIGUSR1: return Command::reopen_logs;
    case SIGHUP: return Command::reload;
    case SIGUSR2: return Command::upgrade;
    case SIGCHLD: return Command::reap;
    default: return std::nullopt;
    }
}

std::vector<int> manager_signals()
{
    return {SIGINT, SIGTERM, SIGQUIT, SIGTTIN, SIGTTOU, SIGUSR1, SIGHUP, SIGUSR2, SIGCHLD};
}

std::string signal_name(int signal)
{
    const char* abbrev = ::sigabbrev_np(signal);
    return abbrev ? abbrev : "signal " + std::to_string(signal);
}

}  // namespace herd
