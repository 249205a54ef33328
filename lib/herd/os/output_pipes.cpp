// Every worker's stdout and stderr into the log: see output_pipes.hpp.
#include <herd/os/output_pipes.hpp>

#include <utility>

#include <herd/core/names.hpp>

#include <boost/asio/post.hpp>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace herd {

namespace {

void set_nonblocking(int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// The read end of a pipe made here has no other status flag: one call, not two, per spawn.
void set_read_end_nonblocking(int fd)
{
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
}

}  // namespace

// One stream of one worker, read by the manager until EOF or until the worker is reaped
struct OutputPipes::Stream {
    Stream(int fd, log::Level level) : fd(fd), level(level) {}
    int fd;
    OutputLines lines;
    log::Level level;
};

struct OutputPipes::Worker {
    int pid = -1;
    int slot = -1;
    std::optional<Stream> out;   // stdout, or both streams
    std::optional<Stream> err;   // stderr, when it has a pipe of its own
    std::optional<Stream>& stream(bool e) { return e ? err : out; }
};

namespace {

int make_epoll()
{
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create an epoll instance for output pipes");
    return fd;
}

std::uint64_t key(int pid, bool err)
{
    return (std::uint64_t(unsigned(pid)) << 1) | (err ? 1u : 0u);
}

}  // namespace

OutputPipes::OutputPipes(boost::asio::io_context& io, std::string pool, std::function<OutputLevels()> levels)
    : io_(io), pool_(std::move(pool)), levels_(std::move(levels)), epoll_(io, make_epoll())
{
}

OutputPipes::~OutputPipes()
{
    *alive_ = false;
    if (closed_in_child_) return;
    for (auto& [pid, w] : workers_)
        for (bool err : {false, true})
            if (w->stream(err)) ::close(w->stream(err)->fd);
}

OutputPipes::Pipes OutputPipes::open()
{
    const OutputLevels levels = levels_ ? levels_() : OutputLevels{};
    Pipes p;
    p.out_level = log::parse_level(levels.stdout_level);
    p.err_level = log::parse_level(levels.stderr_level);
    PipeFds out = make_pipe(O_CLOEXEC, "cannot create an output pipe");
    // Only the manager's end: the worker's stdout stays blocking, as programs expect.
    set_read_end_nonblocking(out.read.get());
    p.out_read = std::move(out.read);
    p.out_write = std::move(out.write);
    if (p.err_level != p.out_level) {
        PipeFds err = make_pipe(O_CLOEXEC, "cannot create an output pipe");
        set_read_end_nonblocking(err.read.get());
        p.err_read = std::move(err.read);
        p.err_write = std::move(err.write);
    }
    return p;
}

void OutputPipes::watch(int pid, int slot, Pipes pipes)
{
    auto w = std::make_unique<Worker>();
    w->pid = pid;
    w->slot = slot;
    w->out.emplace(pipes.out_read.release(), pipes.out_level);
    if (pipes.err_read) w->err.emplace(pipes.err_read.release(), pipes.err_level);
    const bool has_err = bool(w->err);
    if (auto old = workers_.find(pid); old != workers_.end()) {   // a pid used again before its drain: not read on
        for (bool err : {false, true})
            if (old->second->stream(err)) close_stream(*old->second, err);
    }
    workers_.insert_or_assign(pid, std::move(w));
    watch_stream(pid, false);
    if (has_err) watch_stream(pid, true);
}

void OutputPipes::set_slot(int pid, int slot)
{
    if (auto it = workers_.find(pid); it != workers_.end()) it->second->slot = slot;
}

// Reading: the manager does every read itself, when the pipe is readable. One epoll_ctl per pipe
// into this pool's own epoll instance, which is level-triggered: what a bounded read leaves in a
// pipe is read on at the next turn.
void OutputPipes::watch_stream(int pid, bool err)
{
    auto it = workers_.find(pid);
    if (it == workers_.end() || !it->second->stream(err)) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key(pid, err);
    if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, it->second->stream(err)->fd, &ev) != 0) {
        log::write_as(worker_role(pool_, it->second->slot), pid, log::Level::warn,
                      std::string("cannot watch this worker's output: ") + std::strerror(errno) + "; it is not logged");
        close_stream(*it->second, err);
        erase_if_done(pid);
        return;
    }
    arm();
}

void OutputPipes::close_stream(Worker& w, bool err)
{
    auto& s = w.stream(err);
    // Out of the epoll set first: a child forked a moment ago may still hold a copy of this end
    ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, s->fd, nullptr);
    ::close(s->fd);
    s.reset();
}

void OutputPipes::arm()
{
    if (armed_ || closed_in_child_) return;
    armed_ = true;
    epoll_.async_wait(boost::asio::posix::descriptor_base::wait_read, [this, alive = alive_](const boost::system::error_code& ec) {
        if (!*alive || ec == boost::asio::error::operation_aborted) return;
        armed_ = false;
        on_readable();
    });
}

void OutputPipes::on_readable()
{
    std::array<epoll_event, 32> events{};
    int n;
    while ((n = ::epoll_wait(epoll_.native_handle(), events.data(), int(events.size()), 0)) < 0 && errno == EINTR) {
    }
    bool more = n == int(events.size());
    for (int i = 0; i < n; ++i) {
        const int pid = int(events[std::size_t(i)].data.u64 >> 1);
        const bool err = events[std::size_t(i)].data.u64 & 1u;
        // A bounded share per wake-up, so that a chatty worker does not hold up heartbeats and signals
        if (read_stream(pid, err, 4) == Read::more) more = true;
    }
    if (!more) {
        if (!workers_.empty()) arm();
        return;
    }
    // The rest after whatever else is ready (no new edge would wake the io_context for it)
    boost::asio::post(io_, [this, alive = alive_] {
        if (*alive) on_readable();
    });
}

OutputPipes::Read OutputPipes::read_stream(int pid, bool err, std::size_t max_reads)
{
    auto it = workers_.find(pid);
    if (it == workers_.end() || !it->second->stream(err)) return Read::closed;
    Worker& w = *it->second;
    Stream& s = *w.stream(err);
    for (std::size_t reads = 0; reads < max_reads;) {
        const ssize_t n = ::read(s.fd, buffer_.data(), buffer_.size());
        if (n < 0 && errno == EINTR) continue;
        ++reads;
        if (n > 0) {
            log_lines(w, s, s.lines.feed(std::string_view(buffer_.data(), std::size_t(n))));
            continue;
        }
        if (n < 0 && errno == EAGAIN) return Read::drained;
        // EOF (or a broken pipe): the worker and whatever inherited this stream are gone.
        if (auto last = s.lines.finish()) log_lines(w, s, {*last});
        close_stream(w, err);
        erase_if_done(pid);
        return Read::closed;
    }
    return Read::more;
}

void OutputPipes::erase_if_done(int pid)
{
    if (auto it = workers_.find(pid); it != workers_.end() && !it->second->out && !it->second->err) workers_.erase(it);
}

void OutputPipes::drain(int pid)
{
    // What the worker wrote is in the pipes: read it (bounded), log an unfinished last line, and
    // close. A child it left behind may still hold the write ends, for as long as it lives:
    // reading on would cost the manager descriptors per restart of such a worker.
    for (bool err : {false, true}) {
        if (read_stream(pid, err, 64) == Read::closed) continue;   // EOF: closed already
        auto it = workers_.find(pid);
        Stream& s = *it->second->stream(err);
        if (auto last = s.lines.finish()) log_lines(*it->second, s, {*last});
        close_stream(*it->second, err);
    }
    erase_if_done(pid);
}

void OutputPipes::forget(int pid)
{
    auto it = workers_.find(pid);
    if (it == workers_.end()) return;
    for (bool err : {false, true})
        if (it->second->stream(err)) close_stream(*it->second, err);
    workers_.erase(it);
}

void OutputPipes::close_in_child() noexcept
{
    // Called by the forking pool's ops and again by the manager for every pool: once is all.
    if (std::exchange(closed_in_child_, true)) return;
    for (auto& [pid, w] : workers_)
        for (bool err : {false, true})
            if (w->stream(err)) ::close(w->stream(err)->fd);
    ::close(epoll_.native_handle());   // its registrations are the manager's: closing a copy leaves them
}

void OutputPipes::log_lines(const Worker& w, const Stream& s, const std::vector<OutputLine>& lines) const
{
    const std::string role = worker_role(pool_, w.slot);
    for (const auto& line : lines) {
        std::string text = loggable(line.text);
        if (line.cut) text += " [cut: longer than " + std::to_string(max_output_line) + " bytes]";
        log::write_as(role, w.pid, s.level, text);
    }
}

std::vector<std::pair<int, int>> OutputPipes::hand_over()
{
    std::vector<int> pids;
    for (const auto& [pid, w] : workers_) pids.push_back(pid);
    for (int pid : pids)
        for (bool err : {false, true}) read_stream(pid, err, 64);
    std::vector<std::pair<int, int>> fds;
    for (auto& [pid, w] : workers_) {
        for (bool err : {false, true}) {
            auto& s = w->stream(err);
            if (!s) continue;
            if (auto last = s->lines.finish()) log_lines(*w, *s, {*last});
            fds.emplace_back(pid, s->fd);
        }
    }
    return fds;
}

void OutputPipes::adopt(int pid, int slot, int fd)
{
    set_nonblocking(fd);
    const OutputLevels levels = levels_ ? levels_() : OutputLevels{};
    auto it = workers_.find(pid);
    if (it == workers_.end()) {
        auto w = std::make_unique<Worker>();
        w->pid = pid;
        w->slot = slot;
        it = workers_.emplace(pid, std::move(w)).first;
    }
    Worker& w = *it->second;
    // The first pipe of a worker is its stdout (or both streams), the second its stderr.
    const bool err = bool(w.out);
    if (err && w.err) {
        ::close(fd);   // a third: not one this image knows
        return;
    }
    const auto level = [&](const std::string& name) {
        try {
            return log::parse_level(name);
        } catch (const std::invalid_argument&) {
            return log::Level::info;
        }
    };
    w.stream(err).emplace(fd, level(err ? levels.stderr_level : levels.stdout_level));
    watch_stream(pid, err);
}

}  // namespace herd
