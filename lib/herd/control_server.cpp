#include <herd/control_server.hpp>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
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
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) throw failure("cannot create control socket", path, errno);
    const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(probe);
    if (rc == 0) throw std::runtime_error("control socket " + path + " is in use by a running manager");
    if (err != ECONNREFUSED) throw failure("cannot use control socket", path, err);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw failure("cannot remove stale control socket", path, errno);
}

}  // namespace

struct Server::Session {
    explicit Session(stream_protocol::socket s) : socket(std::move(s)), input(max_request_bytes) {}
    stream_protocol::socket socket;
    boost::asio::streambuf input;
    std::string output;
    Peer peer;
};

int Server::bind(const std::string& path)
{
    const sockaddr_un addr = address_of(path);
    remove_stale(path, addr);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw failure("cannot create control socket", path, errno);
    // Mode 0600 from the first moment: no window in which another user could connect.
    const mode_t old = ::umask(0177);
    const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::umask(old);
    if (rc != 0 || ::listen(fd, 64) != 0) {
        const int e = rc != 0 ? err : errno;
        ::close(fd);
        throw failure("cannot bind control socket", path, e);
    }
    return fd;
}

Server::Server(boost::asio::io_context& io, int listen_fd, std::string path, Handler handler)
    : io_(io), listen_fd_(listen_fd), path_(std::move(path)), handler_(std::move(handler)),
      acceptor_(std::make_unique<stream_protocol::acceptor>(io, stream_protocol(), listen_fd))
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
            const auto id = add(std::move(socket));
            Session& s = *sessions_.at(id);
            ucred cred{};
            socklen_t len = sizeof cred;
            ::getsockopt(s.socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len);
            s.peer = {int(cred.pid), unsigned(cred.uid)};
            if (cred.uid != 0 && cred.uid != ::geteuid()) {
                spdlog::warn("control: refused a connection from pid {} (uid {}): only uid {} and root may control "
                             "this manager", cred.pid, cred.uid, ::geteuid());
                write(id, error_answer("permission denied: uid " + std::to_string(cred.uid) +
                                       " may not control this manager"),
                      true);
            } else if (sessions_.size() > max_connections) {
                // Bounded: a client that opens connections in a loop must not take the manager's descriptors.
                spdlog::warn("control: refused a connection from pid {}: {} connections are open already", cred.pid,
                             max_connections);
                write(id, error_answer("too many control connections (" + std::to_string(max_connections) + ")"), true);
            } else {
                read(id);
            }
        } else {
            spdlog::warn("control: cannot accept a connection: {}", ec.message());
        }
        accept();
    });
}

std::uint64_t Server::add(stream_protocol::socket socket)
{
    // Not inherited by the next image on upgrade, unless it is handed over on purpose.
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    const auto id = next_id_++;
    sessions_.emplace(id, std::make_shared<Session>(std::move(socket)));
    return id;
}

std::uint64_t Server::adopt_client(int fd)
{
    return add(stream_protocol::socket(io_, stream_protocol(), fd));
}

int Server::client_fd(std::uint64_t client) const
{
    const auto it = sessions_.find(client);
    return it == sessions_.end() ? -1 : it->second->socket.native_handle();
}

void Server::read(std::uint64_t client)
{
    auto it = sessions_.find(client);
    if (it == sessions_.end()) return;
    // The handler keeps its session alive: a session closed meanwhile still owns the buffer
    // that the cancelled read completes into.
    auto session = it->second;
    boost::asio::async_read_until(session->socket, session->input, '\n', [this, client, session](
                                                                              const boost::system::error_code& ec,
                                                                              std::size_t n) {
        auto it = sessions_.find(client);
        if (it == sessions_.end() || it->second != session || ec == boost::asio::error::operation_aborted) return;
        Session& s = *session;
        if (ec == boost::asio::error::not_found) {
            write(client, error_answer("request longer than " + std::to_string(max_request_bytes) + " bytes"), true);
            return;
        }
        if (ec) {   // the client went away
            drop(it);
            return;
        }
        std::string line(boost::asio::buffers_begin(s.input.data()), boost::asio::buffers_begin(s.input.data()) + n);
        s.input.consume(n);
        on_line(client, std::move(line));
    });
}

void Server::on_line(std::uint64_t client, std::string line)
{
    auto parsed = parse_request(line);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        if (line.size() > 200) line = line.substr(0, 200) + "...";
        spdlog::warn("control: bad request \"{}\": {}", line, *why);
        write(client, error_answer(*why), false);
        return;
    }
    handler_(client, sessions_.at(client)->peer, std::get<Request>(parsed));
}

// Sent at once when the socket takes it (an answer is a line, the socket buffer far larger): the
// manager may exec or exit right after answering, before its loop would run a write.
void Server::answer(std::uint64_t client, std::string line)
{
    auto it = sessions_.find(client);
    if (it == sessions_.end()) return;
    const ssize_t n = ::send(it->second->socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == ssize_t(line.size())) {
        read(client);
        return;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {   // the client went away
        drop(it);
        return;
    }
    write(client, line.substr(n > 0 ? std::size_t(n) : 0), false);
}

void Server::write(std::uint64_t client, std::string line, bool close_after)
{
    auto it = sessions_.find(client);
    if (it == sessions_.end()) return;
    auto session = it->second;
    session->output = std::move(line);
    boost::asio::async_write(session->socket, boost::asio::buffer(session->output),
                             [this, client, close_after, session](const boost::system::error_code& ec, std::size_t) {
                                 auto it = sessions_.find(client);
                                 if (it == sessions_.end() || it->second != session ||
                                     ec == boost::asio::error::operation_aborted)
                                     return;
                                 if (ec || close_after) {
                                     drop(it);
                                     return;
                                 }
                                 read(client);
                             });
}

// Closed now, so that a pending read or write ends (its handler still holds the session).
void Server::drop(Sessions::iterator it)
{
    boost::system::error_code ignored;
    it->second->socket.close(ignored);
    sessions_.erase(it);
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
    while (!sessions_.empty()) drop(sessions_.begin());
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    if (still_ours) ::unlink(path_.c_str());
}

}  // namespace herd::control
