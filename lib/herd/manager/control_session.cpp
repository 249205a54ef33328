// A connection's side of the control socket (control_server.hpp): one request read at a time,
// a line of at most Limits::max_request_bytes, answered in order; bad requests answered, counted and
// logged within the budgets.
#include <herd/manager/control_session.hpp>

#include <herd/core/text.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <string_view>
#include <sys/socket.h>

namespace herd::control {

void Server::enter(Session& session, Stage stage)
{
    session.stage = stage;
    session.since = Clock::now();
    schedule();
}

// Ready for the next request: one already read is handled next (posted, so that a client sending
// many lines at once cannot recurse through the handler), else read on.
void Server::resume(const SessionPtr& session)
{
    enter(*session, session->input.empty() ? Stage::idle : Stage::reading);
    if (session->input.find('\n') != std::string::npos) {
        boost::asio::post(io_, [this, session] {
            if (sessions_.contains(session->id) && session->stage != Stage::waiting) on_input(session);
        });
        return;
    }
    read(session);
}

void Server::read(const SessionPtr& session)
{
    if (session->reading) return;
    session->reading = true;
    // The handler keeps its session alive: a session closed meanwhile still owns the buffer
    // that the cancelled read completes into.
    session->socket.async_read_some(boost::asio::buffer(session->chunk), [this, session](
                                                                            const boost::system::error_code& ec,
                                                                            std::size_t n) {
        session->reading = false;
        if (ec == boost::asio::error::operation_aborted || !sessions_.contains(session->id)) return;
        if (ec) {   // the client went away
            drop(session->id);
            return;
        }
        if (session->input.empty() && n > 0) enter(*session, Stage::reading);
        session->input.append(session->chunk.data(), n);
        on_input(session);
    });
}

void Server::on_input(const SessionPtr& session)
{
    const auto eol = session->input.find('\n');
    if (eol == std::string::npos) {
        if (session->input.size() > limits_.max_request_bytes) {
            session->input.clear();
            send(session, error_answer("request longer than " + std::to_string(limits_.max_request_bytes) + " bytes"),
                 true);
            return;
        }
        read(session);
        return;
    }
    std::string line = session->input.substr(0, eol + 1);
    session->input.erase(0, eol + 1);
    on_line(session, std::move(line));
}

void Server::on_line(const SessionPtr& session, std::string line)
{
    if (line.size() > limits_.max_request_bytes + 1) {
        session->input.clear();
        send(session, error_answer("request longer than " + std::to_string(limits_.max_request_bytes) + " bytes"), true);
        return;
    }
    auto parsed = parse_request(line);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        on_bad_request(session, line, *why);
        return;
    }
    session->bad_in_row = 0;
    enter(*session, Stage::waiting);
    handler_(session->id, session->peer, std::get<Request>(parsed));
}

// Answered, and logged within the budgets (this connection's, everyone's); a run of them closes
// the connection, so that a client flooding bad requests costs the manager little.
void Server::on_bad_request(const SessionPtr& session, const std::string& line, const std::string& why)
{
    std::string_view text = line;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    const TimePoint now = Clock::now();
    const bool last = ++session->bad_in_row >= limits_.max_bad_requests;
    if (session->budget.allow(now)) warn(fmt::format("control: bad request from pid {} \"{}\": {}", session->peer.pid,
                                                    printable(text), why));
    else budget_.suppress();
    if (!last) {
        send(session, error_answer(why), false);
        return;
    }
    warn(fmt::format("control: closed the connection from pid {} after {} bad requests in a row", session->peer.pid,
                     session->bad_in_row));
    session->input.clear();
    send(session, error_answer(why) + error_answer(std::to_string(session->bad_in_row) +
                                                   " bad requests in a row: closing the connection"),
         true);
}

// Sent at once when the socket takes it (an answer is a line, the socket buffer far larger): the
// manager may exec or exit right after answering, before its loop would run a write.
void Server::answer(std::uint64_t client, std::string line)
{
    const auto it = sessions_.find(client);
    if (it != sessions_.end()) send(it->second, std::move(line), false);
}

void Server::send(const SessionPtr& session, std::string line, bool close_after)
{
    const ssize_t n = ::send(session->socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == ssize_t(line.size())) {
        if (close_after) drop(session->id);
        else resume(session);
        return;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {   // the client went away
        drop(session->id);
        return;
    }
    // The rest when the client reads it, within the request timeout.
    session->output = line.substr(n > 0 ? std::size_t(n) : 0);
    enter(*session, Stage::writing);
    boost::asio::async_write(session->socket, boost::asio::buffer(session->output),
                             [this, close_after, session](const boost::system::error_code& ec, std::size_t) {
                                 if (ec == boost::asio::error::operation_aborted || !sessions_.contains(session->id))
                                     return;
                                 if (ec || close_after) drop(session->id);
                                 else resume(session);
                             });
}

// Told why (when its socket takes one more line), then closed.
void Server::close_with(const SessionPtr& session, const std::string& why)
{
    const std::string line = error_answer(why);
    [[maybe_unused]] const ssize_t n =
        ::send(session->socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    drop(session->id);
}

}  // namespace herd::control
