#include <herd/os/identity.hpp>

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace herd {

Identity resolve_identity(const Options& o)
{
    Identity id;
    if (!o.user.empty()) {
        const passwd* pw = ::getpwnam(o.user.c_str());
        if (!pw) throw UsageError("invalid value '" + o.user + "' for --user: no such user");
        id.uid = pw->pw_uid;
        id.gid = pw->pw_gid;
    }
    if (!o.group.empty()) {
        const group* gr = ::getgrnam(o.group.c_str());
        if (!gr) throw UsageError("invalid value '" + o.group + "' for --group: no such group");
        id.gid = gr->gr_gid;
    }
    if (id.uid) {
        // What initgroups() would set, looked up here once instead of in every child.
        int n = 32;
        id.groups.resize(std::size_t(n));
        while (::getgrouplist(o.user.c_str(), *id.gid, id.groups.data(), &n) < 0) id.groups.resize(std::size_t(n));
        id.groups.resize(std::size_t(n));
        id.supplementary = true;
    }
    return id;
}

int take_identity(const Identity& id) noexcept
{
    if (id.gid) {
        const int r = id.supplementary ? ::setgroups(id.groups.size(), id.groups.data()) : ::setgroups(0, nullptr);
        if (r != 0 && errno != EPERM) return errno;
        if (::setgid(*id.gid) != 0) return errno;
    }
    if (id.uid && ::setuid(*id.uid) != 0) return errno;
    return 0;
}

}  // namespace herd
