#include <herd/os/signals.hpp>

#include <csignal>
#include <cstring>

namespace herd {

std::optional<Request> request_for(int signal)
{
    switch (signal) {
    case SIGINT:
    case SIGTERM: return Request{.command = Command::stop, .graceful = false};
    case SIGQUIT: return Request{.command = Command::stop};
    case SIGTTIN: return Request{.command = Command::scale, .delta = 1};
    case SIGTTOU: return Request{.command = Command::scale, .delta = -1};
    case SIGUSR1: return Request{.command = Command::reopen_logs};
    case SIGHUP: return Request{.command = Command::reload};
    case SIGUSR2: return Request{.command = Command::upgrade};
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
