// Every worker's stdout and stderr into the log: see output_pipes.hpp.
#include <herd/os/output_pipes.hpp>

#include <utility>

#include <herd/core/names.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <cerrno>
#include <string_view>

#include <fcntl.h>
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
    Stream(boost::asio::io_context& io, int fd, log::Level level) : pipe(io, fd), level(level) {}
    boost::asio::posix::stream_descriptor pipe;
    OutputLines lines;
    log::Level level;
};

struct OutputPipes::Worker {
    int pid = -1;
    int slot = -1;
    std::unique_ptr<Stream> out;   // stdout, or both streams
    std::unique_ptr<Stream> err;   // stderr, when it has a pipe of its own
    std::unique_ptr<Stream>& stream(bool e) { return e ? err : out; }
};

OutputPipes::OutputPipes(boost::asio::io_context& io, std::string pool, std::function<OutputLevels()> levels)
    : io_(io), pool_(std::move(pool)), levels_(std::move(levels))
{
}

OutputPipes::~OutputPipes() = default;

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
    w->out = std::make_unique<Stream>(io_, pipes.out_read.release(), pipes.out_level);
    if (pipes.err_read) w->err = std::make_unique<Stream>(io_, pipes.err_read.release(), pipes.err_level);
    const bool has_err = bool(w->err);
    workers_.insert_or_assign(pid, std::move(w));
    watch_stream(pid, false);
    if (has_err) watch_stream(pid, true);
}

void OutputPipes::set_slot(int pid, int slot)
{
    if (auto it = workers_.find(pid); it != workers_.end()) it->second->slot = slot;
}

// Reading: the manager does every read itself, when the pipe is readable (a read completed by
// asio but not yet handed over could be overtaken by the drain at reap time, and its bytes lost).
void OutputPipes::watch_stream(int pid, bool err)
{
    auto it = workers_.find(pid);
    if (it == workers_.end() || !it->second->stream(err)) return;
    it->second->stream(err)->pipe.async_wait(boost::asio::posix::descriptor_base::wait_read,
                                             [this, pid, err](const boost::system::error_code& ec) {
                                                 if (ec == boost::asio::error::operation_aborted) return;
                                                 // A bounded share per wake-up
                                                 if (read_stream(pid, err, 4)) watch_stream(pid, err);
                                             });
}

bool OutputPipes::read_stream(int pid, bool err, std::size_t max_reads)
{
    auto it = workers_.find(pid);
    if (it == workers_.end() || !it->second->stream(err)) return false;
    Worker& w = *it->second;
    Stream& s = *w.stream(err);
    for (std::size_t reads = 0; reads < max_reads;) {
        const ssize_t n = ::read(s.pipe.native_handle(), buffer_.data(), buffer_.size());
        if (n < 0 && errno == EINTR) continue;
        ++reads;
        if (n > 0) {
            log_lines(w, s, s.lines.feed(std::string_view(buffer_.data(), std::size_t(n))));
            continue;
        }
        if (n < 0 && errno == EAGAIN) return true;
        // EOF (or a broken pipe): the worker and whatever inherited this stream are gone.
        if (auto last = s.lines.finish()) log_lines(w, s, {*last});
        w.stream(err).reset();
        erase_if_done(pid);
        return false;
    }
    return true;
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
        if (!read_stream(pid, err, 64)) continue;   // EOF: closed already
        auto it = workers_.find(pid);
        Stream& s = *it->second->stream(err);
        if (auto last = s.lines.finish()) log_lines(*it->second, s, {*last});
        it->second->stream(err).reset();
    }
    erase_if_done(pid);
}

void OutputPipes::forget(int pid)
{
    workers_.erase(pid);
}

void OutputPipes::close_in_child() noexcept
{
    // Called by the forking pool's ops and again by the manager for every pool: once is all.
    if (std::exchange(closed_in_child_, true)) return;
    for (auto& [pid, w] : workers_)
        for (Stream* s : {w->out.get(), w->err.get()})
            if (s) ::close(s->pipe.native_handle());
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
            Stream* s = w->stream(err).get();
            if (!s) continue;
            if (auto last = s->lines.finish()) log_lines(*w, *s, {*last});
            fds.emplace_back(pid, s->pipe.native_handle());
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
    w.stream(err) = std::make_unique<Stream>(io_, fd, level(err ? levels.stderr_level : levels.stdout_level));
    watch_stream(pid, err);
}

}  // namespace herd
