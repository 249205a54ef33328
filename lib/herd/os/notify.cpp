#include <herd/os/notify.hpp>

#include <herd/os/fd.hpp>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace herd::notify {

namespace {

// libsystemd is loaded only when systemd is listening (NOTIFY_SOCKET set): linked in, it and the
// six libraries it pulls would cost every manager memory and make every fork slower.
using SdNotify = int (*)(int, const char*);

SdNotify libsystemd_notify()
{
#if HERD_HAVE_SYSTEMD
    static SdNotify fn = [] {
        void* lib = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        return lib ? reinterpret_cast<SdNotify>(::dlsym(lib, "sd_notify")) : nullptr;
    }();
    return fn;
#else
    return nullptr;
#endif
}

// The protocol itself (a datagram to $NOTIFY_SOCKET), for builds or machines without libsystemd.
void send_datagram(const char* path, const std::string& state)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path) return;
    std::memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';   // abstract namespace
    const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
             socklen_t(offsetof(sockaddr_un, sun_path) + len));
}

}  // namespace

void send(const std::string& state)
{
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    if (SdNotify fn = libsystemd_notify()) fn(0, state.c_str());
    else send_datagram(path, state);
}

void ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }
void status(const std::string& status) { send("STATUS=" + status); }

}  // namespace herd::notify
