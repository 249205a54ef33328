// systemd's notification protocol (sd_notify): READY=1, RELOADING=1, STOPPING=1, STATUS=,
// WATCHDOG=1. Through libsystemd's sd_notify when herd was built with it (loaded when
// NOTIFY_SOCKET is set), else the datagram is sent by hand. Without NOTIFY_SOCKET, nothing.
#pragma once

#include <string>

namespace herd::notify {

/// Send one notification ("READY=1\nSTATUS=...").
void send(const std::string& state);

void ready(const std::string& status);
void stopping(const std::string& status);
void status(const std::string& status);

}  // namespace herd::notify
