#include <herd/manager/runner.hpp>

#include <herd/core/text.hpp>

#include <boost/asio/read.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

namespace herd {

Runner::Runner(boost::asio::io_context& io, ProcessOps& ops, const Options& options)
    : io_(io), ops_(ops), options_(&options)
{
}

Runner::~Runner() = default;

// Spawning: a pipe per worker, so a record can only come from the worker that owns the pipe
Event Runner::spawn(int slot, unsigned generation, std::string& error)
{
    Started started;
    try {
        started = ops_.spawn(slot, generation);
    } catch (const std::exception& e) {
        error = e.what();
        return SpawnFailed{slot};
    }
    auto& ch = *channels_.emplace(started.pid, std::make_unique<Channel>(io_, started.heartbeat_fd, *options_)).first->second;
    ch.page = BeatPage::own(started.beat_fd, started.beat);
    watch(started.pid);
    return Spawned{started.pid, slot, generation};
}

void Runner::adopt_channel(int pid, int fd, int page_fd)
{
    auto& ch = *channels_.emplace(pid, std::make_unique<Channel>(io_, fd, *options_)).first->second;
    if (page_fd >= 0) {
        ch.page = BeatPage::adopt(page_fd);
        if (!ch.page) spdlog::warn("worker {}: the heartbeat page handed over is not one; its pipe is read alone", pid);
        else ch.stamp = ch.page.record()->stamp_ns.load(std::memory_order_acquire);
    }
    watch(pid);
}

void Runner::set_request_limit(int pid, std::uint64_t limit)
{
    const auto it = channels_.find(pid);
    if (it != channels_.end() && it->second->page.writable())
        it->second->page.record()->request_limit.store(limit, std::memory_order_relaxed);
}

// The page's word for when the worker beat is clamped by the core (beat_time), and its request
// count never goes back there either: a page says no more than its worker could have done.
void Runner::sample(std::vector<Event>& out)
{
    for (auto& [pid, ch] : channels_) {
        if (!ch->page) continue;
        const BeatRecord& r = *ch->page.record();
        const std::uint64_t stamp = r.stamp_ns.load(std::memory_order_acquire);
        if (stamp == ch->stamp) continue;
        ch->stamp = stamp;
        const std::uint64_t requests = r.requests.load(std::memory_order_relaxed);
        const auto at = TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(stamp)));
        out.emplace_back(HeartbeatSeen{pid, requests, true, at});
    }
}

void Runner::watch(int pid)
{
    auto it = channels_.find(pid);
    if (it == channels_.end()) return;
    Channel& ch = *it->second;
    ch.pipe.async_read_some(boost::asio::buffer(ch.buffer), [this, pid](const boost::system::error_code& ec,
                                                                          std::size_t n) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
            // EOF: the worker is gone (or closed its end).
            channels_.erase(pid);
            notices_.emplace_back(ChannelClosed{pid});
            return;
        }
        on_bytes(pid, n);
        pace(pid, n);
    });
}

// What one worker's channel costs the manager is bounded: a read of at most read_chunk bytes
// at a time, and a channel that spent its budget for the window is not read until the window
// ends (its writer meanwhile waits on a full pipe). An honest worker never comes near it.
void Runner::pace(int pid, std::size_t n)
{
    auto it = channels_.find(pid);
    if (it == channels_.end()) return;
    Channel& ch = *it->second;
    const auto resume = ch.budget.spend(n, Clock::now());
    if (!resume) return watch(pid);
    if (!ch.flood_logged)
        spdlog::warn("worker {} floods its heartbeat channel: {} bytes within {}; it is read no faster than that "
                     "from now on", pid, ch.budget.budget(),
                     format_duration(std::chrono::duration_cast<Duration>(ch.budget.window())));
    ch.flood_logged = true;
    ch.pause.expires_at(*resume);
    ch.pause.async_wait([this, pid](const boost::system::error_code& ec) {
        if (!ec) watch(pid);
    });
}

void Runner::on_bytes(int pid, std::size_t n)
{
    Channel& ch = *channels_.at(pid);
    const auto now = Clock::now();
    std::optional<std::uint64_t> requests;
    bool any = false;
    std::uint64_t bad = 0;
    const std::uint64_t bad_bytes_before = ch.decoder.bad_bytes();
    ch.decoder.feed(std::string_view(ch.buffer.data(), n),
                    [&](const HeartbeatRecord& record, std::string_view error, std::string_view line) {
                        any = true;   // a malformed record still proves the worker alive
                        if (error.empty()) {
                            if (record.requests) requests = record.requests;
                            return;
                        }
                        if (ch.sample.empty()) ch.sample = printable(line, 80);
                        // The worker's bytes reach the log printable only, and at most once a minute.
                        if (bad++ == 0 && now >= ch.next_warning) {
                            spdlog::warn("worker {} sent a malformed heartbeat record \"{}\": {}", pid,
                                         printable(line, 80), printable(error, 120));
                            ch.next_warning = now + std::chrono::minutes(1);
                        }
                    });
    if (const std::uint64_t bad_bytes = ch.decoder.bad_bytes() - bad_bytes_before; bad || bad_bytes)
        notices_.emplace_back(Event{HeartbeatMalformed{pid, bad, bad_bytes}});
    if (any) notices_.emplace_back(Event{HeartbeatSeen{pid, requests}});
}

std::string Runner::bad_record_sample(int pid) const
{
    const auto it = channels_.find(pid);
    return it == channels_.end() ? std::string() : it->second->sample;
}

std::vector<std::pair<int, int>> Runner::channels() const
{
    std::vector<std::pair<int, int>> out;
    for (const auto& [pid, ch] : channels_) out.emplace_back(pid, ch->pipe.native_handle());
    return out;
}

std::vector<std::pair<int, int>> Runner::pages() const
{
    std::vector<std::pair<int, int>> out;
    for (const auto& [pid, ch] : channels_)
        if (ch->page) out.emplace_back(pid, ch->page.fd());
    return out;
}

void Runner::close_in_child()
{
    for (auto& [pid, ch] : channels_) {
        ::close(ch->pipe.native_handle());
        ch->page.close_in_child();
    }
}

}  // namespace herd
