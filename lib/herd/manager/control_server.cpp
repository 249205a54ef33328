// The control socket's server (control_server.hpp): the socket file, the accept loop and who may
// connect, room for a new connection, one timer for every connection's deadline, the log budget.
// A connection's reading and answering is in control_session.cpp.
#include <herd/manager/control_server.hpp>

#include <herd/manager/control_session.hpp>
#include <herd/os/fd.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace herd::control {

namespace {

using boost::asio::local::stream_protocol;

sockaddr_un address_of(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("control socket path '" + path + "' must be 1 to " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

std::runtime_error failure(const std::string& what, const std::string& path, int err)
{
    return std::runtime_error(what + " " + path + ": " + std::strerror(err));
}

// A socket file left behind: a live manager answers a connect, a dead one's file refuses it.
void remove_stale(const std::string& path, const sockaddr_un& addr)
{
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw failure("cannot use control socket", path, errno);
    }
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("control socket " + path + " exists and is not a socket");
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) throw failure("cannot create control socket", path, errno);
    const int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    probe.reset();
    if (rc == 0) throw std::runtime_error("control socket " + path + " is in use by a running manager");
    if (err != ECONNREFUSED) throw failure("cannot use control socket", path, err);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw failure("cannot remove stale control socket", path, errno);
}

}  // namespace

int Server::bind(const std::string& path)
{
    const sockaddr_un addr = address_of(path);
    remove_stale(path, addr);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw failure("cannot create control socket", path, errno);
    // Mode 0600 from the first moment: no window in which another user could connect.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::umask(old);
    if (rc != 0 || ::listen(fd.get(), 64) != 0) {
        const int e = rc != 0 ? err : errno;
        fd.reset();
        throw failure("cannot bind control socket", path, e);
    }
    return fd.release();
}

Server::Server(boost::asio::io_context& io, int listen_fd, std::string path, Handler handler, Limits limits)
    : io_(io), listen_fd_(listen_fd), path_(std::move(path)), handler_(std::move(handler)), limits_(limits),
      acceptor_(std::make_unique<stream_protocol::acceptor>(io, stream_protocol(), listen_fd)), timer_(io),
      accept_pause_(io), budget_(5, std::chrono::seconds(1))
{
    // The file names this socket now; at exit it is removed only if nobody replaced it since.
    struct stat st{};
    if (::stat(path_.c_str(), &st) == 0) path_id_ = {st.st_dev, st.st_ino};
    accept();
}

Server::~Server() = default;

void Server::accept()
{
    acceptor_->async_accept([this](const boost::system::error_code& ec, stream_protocol::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !acceptor_->is_open()) return;
        if (!ec) {
            admit(add(std::move(socket)));
            accept();
            return;
        }
        // Out of descriptors (EMFILE, ENFILE): a stuck or idle connection gives its own up; with
        // none to close, pause as nginx does rather than spin on an accept that fails at once.
        const bool out_of_fds = ec == boost::asio::error::no_descriptors || ec.value() == ENFILE;
        if (out_of_fds && make_room_for(0, "no descriptor is left for a new connection")) {
            accept();
            return;
        }
        warn("control: cannot accept a connection: " + ec.message() + "; trying again in 100 ms");
        accept_pause_.expires_after(std::chrono::milliseconds(100));
        accept_pause_.async_wait([this](const boost::system::error_code& e) {
            if (e != boost::asio::error::operation_aborted) accept();
        });
    });
}

// A new connection: from our uid or root, and with room for it (made by closing the most stuck one).
void Server::admit(std::uint64_t client)
{
    const SessionPtr session = sessions_.at(client);
    ucred cred{};
    socklen_t len = sizeof cred;
    ::getsockopt(session->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len);
    session->peer = {int(cred.pid), unsigned(cred.uid)};
    if (cred.uid != 0 && cred.uid != ::geteuid()) {
        warn(fmt::format("control: refused a connection from pid {} (uid {}): only uid {} and root may control "
                         "this manager", cred.pid, cred.uid, ::geteuid()));
        send(session, error_answer("permission denied: uid " + std::to_string(cred.uid) + " may not control this manager"),
             true);
        return;
    }
    const std::string full = std::to_string(limits_.max_connections) + " connections are open";
    if (sessions_.size() > limits_.max_connections && !make_room_for(client, full)) {
        // Every other connection waits for an operation: those are operators too.
        warn(fmt::format("control: refused a connection from pid {}: all {} connections wait for an operation",
                         cred.pid, limits_.max_connections));
        send(session, error_answer("too many control connections (" + std::to_string(limits_.max_connections) +
                                   "), all waiting for an operation"), true);
        return;
    }
    resume(session);
}

// Close the connection make_room picks (never `client`, the new one), saying why; false if none may go.
bool Server::make_room_for(std::uint64_t client, const std::string& why)
{
    std::vector<Connection> open;
    for (const auto& [id, s] : sessions_)
        if (id != client) open.push_back({id, s->stage, s->since});
    const auto victim = make_room(open);
    if (!victim) return false;
    const SessionPtr old = sessions_.at(*victim);
    const std::string stage = old->stage == Stage::idle      ? "idle"
                              : old->stage == Stage::reading ? "in a request line"
                                                             : "not reading its answer";
    const std::string since = format_duration(std::chrono::duration_cast<Duration>(Clock::now() - old->since));
    const auto it = sessions_.find(client);
    const std::string for_whom = it == sessions_.end() ? "" : " for pid " + std::to_string(it->second->peer.pid);
    warn(fmt::format("control: {}: closed the one from pid {} ({} for {}) to make room{}", why, old->peer.pid, stage,
                     since, for_whom));
    close_with(old, "closed to make room for a new connection (" + why + ")");
    return true;
}

std::uint64_t Server::add(stream_protocol::socket socket)
{
    // Not inherited by the next image on upgrade, unless it is handed over on purpose.
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    const auto id = next_id_++;
    sessions_.emplace(id, std::make_shared<Session>(id, std::move(socket), Clock::now()));
    schedule();
    return id;
}

// A connection handed over by the previous image waits for its operation's answer.
std::uint64_t Server::adopt_client(int fd)
{
    const auto id = add(stream_protocol::socket(io_, stream_protocol(), fd));
    enter(*sessions_.at(id), Stage::waiting);
    return id;
}

int Server::client_fd(std::uint64_t client) const
{
    const auto it = sessions_.find(client);
    return it == sessions_.end() ? -1 : it->second->socket.native_handle();
}

// Closed now, so that a pending read or write ends (its handler still holds the session).
void Server::drop(std::uint64_t client)
{
    const auto it = sessions_.find(client);
    if (it == sessions_.end()) return;
    boost::system::error_code ignored;
    it->second->socket.close(ignored);
    sessions_.erase(it);
}

// Deadlines: one timer, set to the earliest of every connection's deadline and the budget's report.
void Server::schedule()
{
    std::optional<TimePoint> next = budget_.report_at();
    for (const auto& [id, s] : sessions_)
        if (const auto at = deadline(s->stage, s->since, limits_); at && (!next || *at < *next)) next = at;
    // A later deadline than the one set is found when the timer fires; only an earlier one resets it.
    if (!next || (timer_at_ && *timer_at_ <= *next)) return;
    timer_at_ = next;
    timer_.expires_at(*next);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec == boost::asio::error::operation_aborted) return;
        timer_at_.reset();
        on_timer();
    });
}

void Server::on_timer()
{
    const TimePoint now = Clock::now();
    if (const auto n = budget_.take_suppressed(now))
        spdlog::warn("control: {} more warnings about control connections were not logged (at most 5 a second)", n);
    std::vector<SessionPtr> expired;
    for (const auto& [id, s] : sessions_)
        if (const auto at = deadline(s->stage, s->since, limits_); at && *at <= now) expired.push_back(s);
    for (const SessionPtr& s : expired) {
        const std::string why = timeout_reason(s->stage, limits_);
        if (s->stage == Stage::idle) spdlog::debug("control: closed the connection from pid {}: {}", s->peer.pid, why);
        else warn(fmt::format("control: closed the connection from pid {}: {}", s->peer.pid, why));
        close_with(s, "closed: " + why);
    }
    schedule();
}

// Every warning about a connection goes through the budget: a flood writes a few lines a second.
void Server::warn(const std::string& line)
{
    const TimePoint now = Clock::now();
    if (const auto n = budget_.take_suppressed(now))
        spdlog::warn("control: {} more warnings about control connections were not logged (at most 5 a second)", n);
    if (budget_.allow(now)) spdlog::warn("{}", line);
    schedule();
}

void Server::close_in_child() const
{
    ::close(listen_fd_);
    for (const auto& [id, s] : sessions_) ::close(s->socket.native_handle());
}

void Server::close_and_unlink()
{
    struct stat st{};
    const bool still_ours = ::stat(path_.c_str(), &st) == 0 && path_id_ == std::pair(st.st_dev, st.st_ino);
    while (!sessions_.empty()) drop(sessions_.begin()->first);
    boost::system::error_code ignored;
    timer_.cancel();
    accept_pause_.cancel();
    acceptor_->close(ignored);
    if (still_ours) ::unlink(path_.c_str());
}

}  // namespace herd::control
