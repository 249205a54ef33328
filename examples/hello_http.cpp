// hello-http: herd's example HTTP/1.1 server, on Boost.Beast and asio, and a tour of the worker API.
//
//   hello-http -l 127.0.0.1:8080 -l unix:/tmp/hello.sock -w 4 --greeting "Hi!"
//
// It registers two Worker types in its one-line main: `web` (HelloHttp, the default: what a
// command line without [pool.NAME] sections runs) and `jobs` (JobWorker, job_worker.hpp), so one
// config file can run an HTTP pool and a job pool (examples/pools.conf).
//
// Each worker runs one single-threaded io_context, accepts on every listener it inherited
// (TCP and unix alike, <herd/acceptor.hpp>) and answers each connection's requests in order
// (keep-alive, pipelining), heartbeating from the same loop (attach(io)):
//   /             200 with --greeting          /pid    200 with the worker's pid
//   /sleep?ms=N   200 after N ms on a timer    (400 if N is not a number of ms up to an hour)
//   else 404; methods other than GET and HEAD get 405. Beast parses: a head over 8 KiB is
//   refused with 431, a body over 1 MiB with 413, anything malformed with 400.
// With --test-endpoints only (the project's tests turn it on; never in production):
//   /crash        std::abort()
//   /hang         blocks the loop for good and ignores QUIT: heartbeats stop, the manager acts
// Timeouts: a request's head must arrive within --header-timeout (from the accept, or from its
// first byte on a kept-alive connection); a kept-alive connection may stay silent between
// requests, and a body may take, --idle-timeout. Either way the connection is closed.
// Out of descriptors (EMFILE, ENFILE), a listener stops accepting for a while (100 ms, doubling
// up to 1 s) and says so in one line, then one a minute while it lasts, and one once it accepts
// again: an fd limit never turns into a spinning, log-flooding accept loop.
// Graceful stop (QUIT): accept what is already queued, close the listeners at once, close idle
// keep-alive connections, finish in-flight requests with "Connection: close"; run() returns
// once no connection is left.
#include "job_worker.hpp"

#include <herd/acceptor.hpp>
#include <herd/herd.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <unistd.h>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
// Sockets and timers of the worker's one io_context: TCP (v4, v6) and unix sockets alike. The
// concrete executor type spares every Beast operation the type-erased any_io_executor.
using Executor = asio::io_context::executor_type;
using Socket = herd::StreamProtocol::socket::rebind_executor<Executor>::other;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Executor>;
using namespace std::chrono_literals;

/// How long an idle keep-alive connection may still send a request after QUIT.
constexpr auto idle_grace = 200ms;
/// A listener that cannot accept (out of descriptors) pauses this long at first, then doubles.
constexpr auto accept_pause_min = 100ms;
constexpr auto accept_pause_max = 1000ms;
/// While accepting keeps failing, one log line per listener this often.
constexpr auto accept_log_interval = std::chrono::minutes(1);

class Connection;

class HelloHttp : public herd::Worker {
public:
    /// A pool's `worker = web` runs this type.
    static constexpr const char* worker_type = "web";

    /// hello-http's own options, beside the standard ones; a malformed duration is refused at
    /// start-up (exit 2, naming the option).
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
    std::string greeting;
    /// --header-timeout, --idle-timeout, --test-endpoints.
    herd::Duration header_timeout{}, idle_timeout{};
    bool test_endpoints = false;
    /// The Date header value, formatted once per second.
    const std::string& date();
    /// Every open connection, to find the idle ones on QUIT.
    std::set<Connection*> connections;

private:
    struct Listening {
        herd::Acceptor acceptor;
        asio::steady_timer retry;
        bool tcp;
        std::string address;
        // While accepting fails (out of descriptors): since when, how often, the pause, the last line
        unsigned failures = 0;
        std::chrono::steady_clock::time_point failing_since{}, logged_at{};
        std::chrono::milliseconds pause = accept_pause_min;
    };
    void accept(Listening& l);
    void accept_failed(Listening& l, const error_code& ec);
    void start(Socket socket, bool tcp);

    asio::io_context io_;                 // destroyed before `connections`: its leftover handlers erase from it
    std::list<Listening> listening_;      // a list: handlers hold references to its elements
    std::string date_;
    std::time_t date_second_ = 0;
};

// One client connection: wait for a request, read it, answer, again; one response at a time.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(HelloHttp& server, Socket socket)
        : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()),
          deadline_(socket_.get_executor())
    {
        server_.connections.insert(this);
    }
    ~Connection() { server_.connections.erase(this); }

    /// A new connection owes its first request head within --header-timeout of the accept.
    void start() { wait(server_.header_timeout); }

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

private:
    /// Waiting for a request, and none has begun: bytes already in the kernel are a request in
    /// flight (its read completes in this same turn of the loop), not idleness.
    bool idle()
    {
        error_code ec;
        return waiting_ && buffer_.size() == 0 && socket_.available(ec) == 0 && !ec;
    }

    // Between requests: wait for the first byte of the next one for `silence`, then give its
    // head --header-timeout from that byte (a slow sender gains nothing by trickling bytes).
    void wait(herd::Duration silence)
    {
        if (buffer_.size() > 0) return read_head();   // pipelined: the next request is here already
        // A read, not a wait for readability: bytes already there are taken at once, without a
        // trip through epoll.
        waiting_ = true;
        arm_deadline(silence);
        socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t n) {
            self->waiting_ = false;
            if (ec) return self->close();
            self->buffer_.commit(n);
            self->read_head();
        });
    }

    void read_head()
    {
        arm_deadline(server_.header_timeout);
        parser_.emplace();   // 8 KiB of head and 1 MiB of body at most: Beast's defaults
        http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->failed(ec);
            self->read_body();
        });
    }

    void read_body()
    {
        cancel_deadline();
        auto read = [self = shared_from_this()] {
            self->arm_deadline(self->server_.idle_timeout);
            http::async_read(self->socket_, self->buffer_, *self->parser_, [self](error_code ec, std::size_t) {
                if (ec) return self->failed(ec);
                self->cancel_deadline();
                self->serve(self->parser_->get());
            });
        };
        const auto& req = parser_->get();
        if (parser_->is_done()) return serve(req);
        if (!boost::beast::iequals(req[http::field::expect], "100-continue")) return read();
        // The client waits for a go-ahead before it sends the body
        auto go = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
        http::async_write(socket_, *go, [self = shared_from_this(), go, read](error_code ec, std::size_t) {
            if (!ec) read();
            else self->close();
        });
    }

    // A read that failed: a malformed request is answered, a closed or timed-out one is not.
    void failed(const error_code& ec)
    {
        cancel_deadline();
        const bool malformed = ec.category() == http::make_error_code(http::error::bad_method).category() &&
                               ec != http::error::end_of_stream && ec != http::error::partial_message;
        if (!malformed) return close();
        const auto status = ec == http::error::header_limit ? http::status::request_header_fields_too_large
                          : ec == http::error::body_limit   ? http::status::payload_too_large
                                                            : http::status::bad_request;
        spdlog::debug("refusing a request: {}", ec.message());
        respond(error(status, 11, false));   // what follows cannot be framed: close after it
    }

    // A deadline for the read in progress; it closes the connection when it passes. A completion
    // already queued when the read ended (or the deadline moved) is stale: it has an older number.
    void arm_deadline(herd::Duration d)
    {
        deadline_.expires_after(d);
        deadline_.async_wait([self = shared_from_this(), armed = ++armed_](error_code ec) {
            if (ec || armed != self->armed_) return;
            spdlog::debug("closing a connection that sent nothing in time (--header-timeout {}, --idle-timeout {})",
                          herd::format_duration(self->server_.header_timeout),
                          herd::format_duration(self->server_.idle_timeout));
            self->close();
        });
    }

    void cancel_deadline()
    {
        ++armed_;
        deadline_.cancel();
    }

    using Response = http::response<http::string_body>;

    static Response error(http::status status, unsigned version, bool keep_alive)
    {
        Response r{status, version};
        r.set(http::field::content_type, "text/plain; charset=utf-8");
        r.body() = std::to_string(unsigned(status)) + " " + std::string(http::obsolete_reason(status)) + "\n";
        r.keep_alive(keep_alive);
        return r;
    }

    // Routes
    void serve(const http::request<http::string_body>& req)
    {
        const std::string_view target = req.target();
        const std::string_view path = target.substr(0, target.find('?'));
        const std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
        Response r{http::status::ok, req.version()};
        r.set(http::field::content_type, "text/plain; charset=utf-8");
        r.keep_alive(req.keep_alive());
        head_ = req.method() == http::verb::head;
        if (req.method() != http::verb::get && !head_) {
            r = error(http::status::method_not_allowed, req.version(), req.keep_alive());
            r.set(http::field::allow, "GET, HEAD");
        } else if (path == "/") {
            r.body() = server_.greeting;
        } else if (path == "/pid") {
            r.body() = std::to_string(::getpid()) + "\n";
        } else if (path == "/sleep") {
            const std::string_view text = query.starts_with("ms=") ? query.substr(3, query.find('&') - 3) : "";
            unsigned ms = 0;
            auto [end, fail] = std::from_chars(text.data(), text.data() + text.size(), ms);
            if (text.empty() || fail != std::errc() || end != text.data() + text.size() || ms > 3'600'000)
                return respond(error(http::status::bad_request, req.version(), req.keep_alive()));
            // A timer, not a sleep: the worker keeps serving other connections meanwhile.
            r.body() = "slept " + std::to_string(ms) + " ms\n";
            timer_.expires_after(std::chrono::milliseconds(ms));
            return timer_.async_wait([self = shared_from_this(), r = std::move(r)](error_code ec) mutable {
                if (!ec) self->respond(std::move(r));
            });
        } else if (path == "/hang" && server_.test_endpoints) {
            // Stuck on purpose: the loop never runs again, so heartbeats stop and QUIT goes
            // unanswered; the manager retires the worker, then kills it.
            spdlog::warn("hanging on purpose (/hang)");
            for (;;) ::pause();
        } else if (path == "/crash" && server_.test_endpoints) {
            spdlog::warn("crashing on purpose (/crash)");
            std::abort();
        } else {
            r = error(http::status::not_found, req.version(), req.keep_alive());
        }
        respond(std::move(r));
    }

    void respond(Response r)
    {
        // After QUIT every response is the last one on its connection.
        r.keep_alive(r.keep_alive() && !server_.stopping());
        r.set(http::field::date, server_.date());
        r.prepare_payload();
        if (head_) r.body().clear();   // HEAD: the Content-Length of the body, without it
        head_ = false;
        response_ = std::move(r);
        ++served_;
        server_.add_requests();
        http::async_write(socket_, response_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->close();
            if (self->response_.keep_alive()) self->wait(self->server_.idle_timeout);
            else self->linger();
        });
    }

    // Closing
    void linger()
    {
        // Half-close, then read until the peer closes (2 s at most): closing with unread input
        // would reset the connection, and a reset can destroy the response still in flight.
        error_code ec;
        socket_.shutdown(Socket::shutdown_send, ec);
        timer_.expires_after(2s);
        timer_.async_wait([self = shared_from_this()](error_code ec) { if (!ec) self->close(); });
        drain();
    }

    void drain()
    {
        buffer_.clear();
        socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) self->timer_.cancel();
            else self->drain();
        });
    }

    void close()
    {
        error_code ec;
        socket_.close(ec);
        timer_.cancel();
        cancel_deadline();
    }

    HelloHttp& server_;
    Socket socket_;
    Timer timer_;      // /sleep, the lingering close, the grace after QUIT
    Timer deadline_;   // --header-timeout and --idle-timeout while reading
    boost::beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Response response_;
    bool waiting_ = false;   // between requests, before the first byte of the next one
    bool head_ = false;      // the request being answered is a HEAD
    unsigned armed_ = 0;     // the number of the current deadline
    unsigned served_ = 0;
};

// Worker lifecycle
int HelloHttp::run()
{
    greeting = args()["greeting"].as<std::string>() + "\n";
    header_timeout = args()["header-timeout"].as<herd::Duration>();
    idle_timeout = args()["idle-timeout"].as<herd::Duration>();
    test_endpoints = args()["test-endpoints"].as<bool>();
    for (const herd::Listener& l : listeners())
        accept(listening_.emplace_back(Listening{herd::make_acceptor(io_, l), asio::steady_timer(io_),
                                                       l.family != herd::ListenerFamily::unix_socket, l.address}));
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
            Socket socket = l.acceptor.accept(io_.get_executor(), ec);
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
    l.acceptor.async_accept(io_.get_executor(), [this, &l](error_code ec, Socket socket) {
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

void HelloHttp::start(Socket socket, bool tcp)
{
    // Small responses leave at once instead of waiting for the peer's delayed ACK (Nagle).
    error_code ec;
    if (tcp) socket.set_option(asio::ip::tcp::no_delay(true), ec);
    std::make_shared<Connection>(*this, std::move(socket))->start();
}

const std::string& HelloHttp::date()
{
    // An IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (const std::time_t now = std::time(nullptr); now != date_second_) {
        date_second_ = now;
        std::tm tm{};
        char text[32];
        ::gmtime_r(&now, &tm);
        date_.assign(text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm));
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
