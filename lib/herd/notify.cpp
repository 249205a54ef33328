#include <herd/notify.hpp>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if HERD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace herd::notify {

void send(const std::string& state)
{
#if HERD_HAVE_SYSTEMD
    ::sd_notify(0, state.c_str());
#else
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path) return;
    std::memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';   // abstract namespace
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
             socklen_t(offsetof(sockaddr_un, sun_path) + len));
    ::close(fd);
#endif
}

void ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }
void status(const std::string& status) { send("STATUS=" + status); }

}  // namespace herd::notify
