// The control socket's I/O (DESIGN.md §6): a unix stream socket, mode 0600, that accepts only
// the manager's own uid (and root), reads one JSON request per line and writes one answer per
// line. One request per connection at a time: the next line is read once the previous one is
// answered, so answers come in order even when an operation takes minutes.
//
// A slow, vanished or hostile client never costs an operator the socket: each connection has a
// deadline for its stage (control::deadline: a begun line, an unread answer, idleness; none while
// an operation runs for it), watched by one timer set to the earliest; a new connection past the
// limit closes the most stuck one (control::make_room); a run of bad requests closes its
// connection; and warnings about all of this are rate limited (control::LogBudget).
#pragma once

#include <herd/manager/control.hpp>
#include <herd/manager/control_limits.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace herd::control {

/// Who asked: the peer's credentials, for the log.
struct Peer {
    int pid = 0;
    unsigned uid = 0;
};

class Server {
public:
    /// Called for every well-formed request; the manager answers through answer(client, ...).
    using Handler = std::function<void(std::uint64_t client, const Peer& peer, const Request& request)>;

    /// Bind PATH (mode 0600). A stale socket left by a dead manager is replaced; a live one, or a
    /// file that is not a socket, is an error (std::runtime_error naming the path).
    static int bind(const std::string& path);

    Server(boost::asio::io_context& io, int listen_fd, std::string path, Handler handler, Limits limits = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Answer a client's request (one line, "\n"-terminated) and read its next one.
    void answer(std::uint64_t client, std::string line);

    /// Take a connection over from the previous image, with the request it is waiting on.
    std::uint64_t adopt_client(int fd);
    /// A waiting client's descriptor, to hand over across exec (stays open here as well).
    int client_fd(std::uint64_t client) const;

    int listen_fd() const { return listen_fd_; }
    const std::string& path() const { return path_; }

    /// In a forked child: close every descriptor of the control socket, without touching asio.
    void close_in_child() const;
    /// At exit: close everything and remove the socket file if it is still ours.
    void close_and_unlink();

private:
    struct Session;
    using SessionPtr = std::shared_ptr<Session>;
    using Sessions = std::map<std::uint64_t, SessionPtr>;
    void drop(std::uint64_t client);
    void accept();
    void admit(std::uint64_t client);
    bool make_room_for(std::uint64_t client, const std::string& why);
    void resume(const SessionPtr& session);
    void read(const SessionPtr& session);
    void on_input(const SessionPtr& session);
    void on_line(const SessionPtr& session, std::string line);
    void on_bad_request(const SessionPtr& session, const std::string& line, const std::string& why);
    void send(const SessionPtr& session, std::string line, bool close_after);
    void close_with(const SessionPtr& session, const std::string& why);
    void enter(Session& session, Stage stage);
    void schedule();
    void on_timer();
    void warn(const std::string& line);
    std::uint64_t add(boost::asio::local::stream_protocol::socket socket);

    boost::asio::io_context& io_;
    int listen_fd_;
    std::string path_;
    Handler handler_;
    Limits limits_;
    std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
    Sessions sessions_;
    boost::asio::steady_timer timer_;
    std::optional<TimePoint> timer_at_;   // the deadline the timer is set to
    boost::asio::steady_timer accept_pause_;   // after a failed accept
    LogBudget budget_;                    // warnings of every connection together
    std::uint64_t next_id_ = 1;
    std::pair<dev_t, ino_t> path_id_{};   // the socket file as bound (device, inode)
};


}  // namespace herd::control
