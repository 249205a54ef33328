// hello-http: herd's example HTTP/1.1 server, and a tour of the worker API.
//
//   hello-http -l 127.0.0.1:8080 -l unix:/tmp/hello.sock -w 4 --greeting "Hi!"
//
// It registers two Worker types in its one-line main: `web` (HelloHttp, the default: what a
// command line without [pool.NAME] sections runs) and `jobs` (JobWorker, job_worker.hpp), so one
// config file can run an HTTP pool and a job pool (examples/pools.conf).
//
// Each worker runs one single-threaded io_context, accepts on every listener it inherited
// (TCP and unix alike) and answers each connection's requests in order (pipelining works):
//   /             200 with --greeting          /pid    200 with the worker's pid
//   /sleep?ms=N   200 after N ms on a timer
//   else 404; methods other than GET and HEAD get 405. Parsing is in http.hpp.
// With --test-endpoints only (the project's tests turn it on; never in production):
//   /crash        std::abort()
//   /hang         blocks the loop for good and ignores QUIT: heartbeats stop, the manager acts
// Timeouts: a request's head must arrive within --header-timeout (from the accept, or from its
// first byte on a kept-alive connection); a kept-alive connection may stay silent between
// requests, and a body between reads, for --idle-timeout. Either way the connection is closed.
// Out of descriptors (EMFILE, ENFILE), a listener stops accepting for a while (100 ms, doubling
// up to 1 s) and says so in one line, then one a minute while it lasts, and one once it accepts
// again: an fd limit never turns into a spinning, log-flooding accept loop.
// Graceful stop (QUIT): accept what is already queued, close the listeners at once, close idle
// keep-alive connections, finish in-flight requests with "Connection: close"; run() returns
// once no connection is left.
#include "http.hpp"
#include "http_response.hpp"
#include "job_worker.hpp"

#include <herd/acceptor.hpp>
#include <herd/herd.hpp>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <list>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include <sys/socket.h>
#include <unistd.h>

namespace asio = boost::asio;
using boost::system::error_code;
using Protocol = asio::generic::stream_protocol;   // TCP (v4, v6) and unix sockets alike
using Acceptor = asio::basic_socket_acceptor<Protocol>;
using namespace std::chrono_literals;

/// How long an idle keep-alive connection may still send a request after QUIT.
constexpr auto idle_grace = 200ms;
/// A listener that cannot accept (out of descriptors) pauses this long at first, then doubles.
constexpr auto accept_pause_min = 100ms;
constexpr auto accept_pause_max = 1000ms;
/// While accepting keeps failing, one log line per listener this often.
constexpr auto accept_log_interval = std::chrono::minutes(1);

/// A duration option of hello-http: parsed like herd's own, and refused at start-up (exit 2,
/// naming the option) when malformed.
class Connection;

class HelloHttp : public herd::Worker {
public:
    /// A pool's `worker = web` runs this type.
    static constexpr const char* worker_type = "web";

    /// --greeting TEXT, beside the standard options.
    static void add_options(boost::program_options::options_description& options)
    {
        options.add_options()("greeting", herd::text_option("Hello, world!"), "body of / (a newline is added)")
            ("header-timeout", herd::duration_option("10s"), "close a connection whose request head is not whole after this")
            ("idle-timeout", herd::duration_option("60s"), "close a kept-alive connection silent this long between requests")
            ("test-endpoints", boost::program_options::bool_switch(), "serve /crash and /hang (tests only)");
    }

    int run() override;
    void on_stop() override;

    /// The body of "/".
    const std::string& greeting() const { return greeting_; }
    /// --header-timeout, --idle-timeout, --test-endpoints.
    herd::Duration header_timeout{}, idle_timeout{};
    bool test_endpoints = false;
    /// The Date header value, formatted once per second.
    const std::string& date();
    /// Every open connection, to find the idle ones on QUIT.
    std::set<Connection*> connections;

private:
    struct Listening {
        Acceptor acceptor;
        asio::steady_timer retry;
        bool tcp;
        std::string address;
        // While accepting fails (out of descriptors): since when, how often, the pause, the last line
        unsigned failures = 0;
        std::chrono::steady_clock::time_point failing_since{}, logged_at{};
        std::chrono::milliseconds pause = accept_pause_min;
    };
    void accept_failed(Listening& l, const error_code& ec);
    void accept(Listening& l);
    void start(Protocol::socket socket, bool tcp);

    asio::io_context io_;                 // destroyed before `connections`: its leftover handlers erase from it
    std::list<Listening> listening_;      // a list: handlers hold references to its elements
    std::string greeting_;
    std::string date_;
    std::chrono::sys_seconds date_second_{};
};

// One client connection: read, parse, answer, read again; one response at a time, in order.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(HelloHttp& server, Protocol::socket socket)
        : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()), deadline_(socket_.get_executor()),
          head_deadline_(std::chrono::steady_clock::now() + server.header_timeout)
    {
        server_.connections.insert(this);
    }
    ~Connection() { server_.connections.erase(this); }

    /// Graceful stop: close now if idle; a busy connection closes after its response.
    void stop()
    {
        if (!idle()) return;
        // A keep-alive client may be sending its next request right now: closing at once would
        // reset it. It gets a short grace, and a request in it is answered with Connection: close.
        // One accepted from the backlog but silent yet gets longer: its request is on the way.
        timer_.expires_after(served_ > 0 ? idle_grace : 1s);
        timer_.async_wait([self = shared_from_this()](error_code ec) { if (!ec && self->idle()) self->close(); });
    }

    /// Waiting for a request, and none has begun: bytes already in the kernel are a request in
    /// flight (its read completes in this same turn of the loop), not idleness.
    bool idle()
    {
        error_code ec;
        return reading_ && parser_.idle() && socket_.available(ec) == 0 && !ec;
    }

    /// Read the next request.
    void read()
    {
        reading_ = true;
        arm_deadline();
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](error_code ec, std::size_t n) {
            self->reading_ = false;
            self->deadline_.cancel();
            if (ec) return;
            self->parser_.feed({self->buffer_.data(), n});
            self->process();
        });
    }

private:
    // Read deadlines: the head of a request has --header-timeout in all (a slow sender gains
    // nothing by trickling bytes); silence before the next request and within a body has
    // --idle-timeout. Either one closes the connection.
    void arm_deadline()
    {
        const auto now = std::chrono::steady_clock::now();
        if (parser_.in_body()) {
            deadline_.expires_at(now + server_.idle_timeout);
        } else if (parser_.idle() && !head_started_) {
            deadline_.expires_at(now + server_.idle_timeout);
        } else {
            if (!head_started_) head_deadline_ = now + server_.header_timeout;
            head_started_ = true;
            deadline_.expires_at(head_deadline_);
        }
        deadline_.async_wait([self = shared_from_this()](error_code ec) {
            // A completion queued just before the read ended (and the deadline moved) is stale.
            if (ec || !self->reading_ || self->deadline_.expiry() > std::chrono::steady_clock::now()) return;
            spdlog::debug("closing a connection that sent nothing in time (--header-timeout {}, --idle-timeout {})",
                          herd::format_duration(self->server_.header_timeout),
                          herd::format_duration(self->server_.idle_timeout));
            self->close();
        });
    }

    void process()
    {
        http::Request req;
        switch (parser_.next(req)) {
        case http::Parser::Result::request: head_started_ = false; return serve(req);
        case http::Parser::Result::error: return respond(http::error_response(parser_.error_status()));
        case http::Parser::Result::incomplete:
            if (!parser_.take_continue()) return read();
            out_ = http::continue_response;
            asio::async_write(socket_, asio::buffer(out_),
                              [self = shared_from_this()](error_code ec, std::size_t) { if (!ec) self->read(); });
        }
    }

    // Routes
    void serve(const http::Request& req)
    {
        // status, headers, body, keep_alive, head
        http::Response r{200, {{"Content-Type", "text/plain; charset=utf-8"}}, {}, req.keep_alive, req.method == "HEAD"};
        if (req.method != "GET" && req.method != "HEAD") {
            r = http::error_response(405, req.keep_alive);
            r.headers.push_back({"Allow", "GET, HEAD"});
        } else if (req.path == "/") {
            r.body = server_.greeting();
        } else if (req.path == "/pid") {
            r.body = std::to_string(::getpid()) + "\n";
        } else if (req.path == "/sleep") {
            std::string_view text = req.query_param("ms").value_or("");
            unsigned ms = 0;
            auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), ms);
            if (text.empty() || error != std::errc() || end != text.data() + text.size() || ms > 3'600'000)
                return respond(http::error_response(400, req.keep_alive));
            // A timer, not a sleep: the worker keeps serving other connections meanwhile.
            r.body = "slept " + std::to_string(ms) + " ms\n";
            timer_.expires_after(std::chrono::milliseconds(ms));
            return timer_.async_wait([self = shared_from_this(), r](error_code ec) { if (!ec) self->respond(r); });
        } else if (req.path == "/hang" && server_.test_endpoints) {
            // Stuck on purpose: the loop never runs again, so heartbeats stop and QUIT goes
            // unanswered; the manager retires the worker, then kills it.
            spdlog::warn("hanging on purpose (/hang)");
            for (;;) ::pause();
        } else if (req.path == "/crash" && server_.test_endpoints) {
            spdlog::warn("crashing on purpose (/crash)");
            std::abort();
        } else {
            r = http::error_response(404, req.keep_alive);
        }
        respond(std::move(r));
    }

    void respond(http::Response r)
    {
        // After QUIT every response is the last one on its connection.
        r.keep_alive = r.keep_alive && !server_.stopping();
        r.headers.push_back({"Date", server_.date()});
        out_ = http::serialize(r);
        ++served_;
        server_.add_requests();
        asio::async_write(socket_, asio::buffer(out_),
                          [self = shared_from_this(), keep_alive = r.keep_alive](error_code ec, std::size_t) {
                              if (!ec && keep_alive) self->process();
                              else if (!ec) self->linger();
                          });
    }

    // Closing
    void linger()
    {
        // Half-close, then read until the peer closes (2 s at most): closing with unread input
        // would reset the connection, and a reset can destroy the response still in flight.
        error_code ec;
        socket_.shutdown(Protocol::socket::shutdown_send, ec);
        timer_.expires_after(2s);
        timer_.async_wait([self = shared_from_this()](error_code ec) { if (!ec) self->close(); });
        drain();
    }

    void drain()
    {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) self->timer_.cancel();
            else self->drain();
        });
    }

    void close()
    {
        error_code ec;
        socket_.close(ec);
        timer_.cancel();
        deadline_.cancel();
    }

    HelloHttp& server_;
    Protocol::socket socket_;
    asio::steady_timer timer_;   // /sleep, the lingering close, the grace of a fresh connection
    asio::steady_timer deadline_;   // --header-timeout and --idle-timeout while reading
    std::chrono::steady_clock::time_point head_deadline_;
    bool head_started_ = true;   // a new connection is expected to send a request head at once
    http::Parser parser_;
    std::array<char, 16 * 1024> buffer_;
    std::string out_;
    bool reading_ = false;
    unsigned served_ = 0;
};

// Worker lifecycle
int HelloHttp::run()
{
    greeting_ = args()["greeting"].as<std::string>() + "\n";
    header_timeout = args()["header-timeout"].as<herd::Duration>();
    idle_timeout = args()["idle-timeout"].as<herd::Duration>();
    test_endpoints = args()["test-endpoints"].as<bool>();
    for (const herd::Listener& l : listeners()) {
        const bool tcp = l.family != herd::ListenerFamily::unix_socket;
        Acceptor acceptor = herd::make_acceptor(io_, l);
        accept(listening_.emplace_back(Listening{std::move(acceptor), asio::steady_timer(io_), tcp, l.address}));
    }
    if (listening_.empty()) spdlog::warn("no --listen address: this worker has nothing to serve");
    attach(io_);   // heartbeats, QUIT (on_stop) and USR1 come from this loop
    io_.run();
    return 0;
}

void HelloHttp::on_stop()
{
    // Accept what is already queued, then stop listening at once
    for (Listening& l : listening_) {
        error_code ec;
        l.acceptor.non_blocking(true, ec);
        while (!ec || ec == asio::error::connection_aborted) {
            Protocol::socket socket = l.acceptor.accept(ec);
            if (!ec) start(std::move(socket), l.tcp);
        }
        l.acceptor.close(ec);
        l.retry.cancel();
    }

    // Idle connections close now, busy ones after their response
    for (Connection* c : connections) c->stop();
}

void HelloHttp::accept(Listening& l)
{
    l.acceptor.async_accept([this, &l](error_code ec, Protocol::socket socket) {
        // A connection accepted just before on_stop closed the acceptor is served all the same.
        if (!ec) start(std::move(socket), l.tcp);
        if (!l.acceptor.is_open()) return;
        if (ec && ec != asio::error::connection_aborted) return accept_failed(l, ec);
        if (!ec && l.failures > 0) {
            spdlog::info("accepting on {} again after {} failed attempts in {}", l.address, l.failures,
                         herd::format_duration(std::chrono::duration_cast<herd::Duration>(
                             std::chrono::steady_clock::now() - l.failing_since)));
            l.failures = 0;
            l.pause = accept_pause_min;
        }
        accept(l);
    });
}

void HelloHttp::accept_failed(Listening& l, const error_code& ec)
{
    // Out of descriptors, say: pause accepting (connections wait in the backlog) instead of
    // retrying at once, and log once, then once a minute, rather than at every attempt.
    const auto now = std::chrono::steady_clock::now();
    if (l.failures++ == 0) {
        l.failing_since = l.logged_at = now;
        spdlog::warn("accept on {} failed: {}; pausing accepts ({} at first, up to {}), next line in {} if it lasts",
                     l.address, ec.message(), herd::format_duration(accept_pause_min),
                     herd::format_duration(accept_pause_max), herd::format_duration(accept_log_interval));
    } else if (now - l.logged_at >= accept_log_interval) {
        l.logged_at = now;
        spdlog::warn("accept on {} still failing: {} ({} failed attempts since the first)", l.address, ec.message(),
                     l.failures);
    }
    l.retry.expires_after(l.pause);
    l.pause = std::min(l.pause * 2, std::chrono::milliseconds(accept_pause_max));
    l.retry.async_wait([this, &l](error_code ec) { if (!ec && l.acceptor.is_open()) accept(l); });
}

void HelloHttp::start(Protocol::socket socket, bool tcp)
{
    // Small responses leave at once instead of waiting for the peer's delayed ACK (Nagle).
    error_code ec;
    if (tcp) socket.set_option(asio::ip::tcp::no_delay(true), ec);
    std::make_shared<Connection>(*this, std::move(socket))->read();
}

const std::string& HelloHttp::date()
{
    auto now = std::chrono::system_clock::now();
    if (auto second = std::chrono::floor<std::chrono::seconds>(now); second != date_second_) {
        date_second_ = second;
        date_ = http::http_date(now);
    }
    return date_;
}

#ifndef HELLO_HTTP_VERSION
#define HELLO_HTTP_VERSION "0.0.0"
#endif

int main(int argc, char** argv)
{
    herd::App app;
    app.version = HELLO_HTTP_VERSION;   // --version: "hello-http 0.1.0 (herd 0.1.0)"
    return herd::main<HelloHttp, JobWorker>(argc, argv, std::move(app));
}
