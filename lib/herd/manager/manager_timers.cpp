// The manager's periodic work beside its deadlines: systemd's watchdog, and the memory samples
// of --max-worker-memory (spread over their period).
#include <herd/manager/manager.hpp>

#include <herd/core/sampling.hpp>
#include <herd/os/memory.hpp>
#include <herd/os/notify.hpp>

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

namespace herd {

namespace {

constexpr Duration memory_sample_min = std::chrono::milliseconds(50);
constexpr Duration memory_sample_max = std::chrono::seconds(1);
constexpr Duration memory_tick_min = std::chrono::milliseconds(10);   // the shortest tick between two slices

}  // namespace

// systemd's watchdog: WATCHDOG=1 at half the interval it asked for, from the manager loop
void Manager::watch_watchdog()
{
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    if (!usec || (pid && std::atoi(pid) != ::getpid())) return;
    const auto interval = std::chrono::microseconds(std::atoll(usec)) / 2;
    if (interval.count() <= 0) return;
    if (!watchdog_) watchdog_ = std::make_unique<boost::asio::steady_timer>(io_);
    notify::send("WATCHDOG=1");
    watchdog_->expires_after(interval);
    watchdog_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) watch_watchdog();
    });
}

// --max-worker-memory: a timer samples the workers' own memory while a pool has the option on
void Manager::watch_memory()
{
    const bool on = std::any_of(supervisor_.pools.begin(), supervisor_.pools.end(),
                                [](const Pool& p) { return p.options.max_worker_memory > 0; });
    if (!on) {
        memory_timer_.reset();   // off, or turned off by a reload: no timer, no work
        return;
    }
    if (memory_timer_) return;   // already sampling; each tick reads the options anew
    memory_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    sample_memory();
}

void Manager::sample_memory()
{
    // Each worker once per period, spread over it: a few at every tick (core/sampling.hpp), round
    // robin over the pool's workers, so that a thousand cost no burst. A gone or unreadable worker
    // gives no sample: its exit is reaped as usual.
    const auto now = Clock::now();
    Duration period = memory_sample_max;
    std::size_t sampled = 0;
    for (std::size_t i = 0; i < supervisor_.pools.size(); ++i) {
        const Options& o = pool(i).options;
        if (o.max_worker_memory == 0) continue;
        // A few samples per window, so that one sample under the limit is seen before it ends.
        period = std::min(period, std::clamp<Duration>(o.max_worker_memory_window / 4, memory_sample_min,
                                                       memory_sample_max));
        sampled += pool(i).state.workers.size();
    }
    const Duration tick = sample_tick(sampled, period, memory_tick_min);
    for (std::size_t i = 0; i < supervisor_.pools.size(); ++i) {
        if (pool(i).options.max_worker_memory == 0) continue;
        const auto& workers = pool(i).state.workers;
        const SampleRange range =
            next_samples(shell_of(i).memory_cursor, workers.size(), samples_per_tick(workers.size(), period, tick));
        shell_of(i).memory_cursor = range.next;
        std::vector<int> pids;
        for (std::size_t k = 0; k < range.count; ++k)
            if (const WorkerRecord& w = workers[(range.first + k) % workers.size()]; !w.leaving()) pids.push_back(w.pid);
        for (const int pid : pids) {
            const auto bytes = read_private_memory(pid);
            if (!bytes) continue;
            const MemorySampled sample{pid, *bytes};
            // Most samples change nothing but the figure: no plan() for them
            if (is_routine(pool(i).state, sample, pool(i).options)) apply(pool(i).state, sample, pool(i).options, now);
            else handle(i, sample, now);
        }
    }
    memory_timer_->expires_after(tick);
    memory_timer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec && memory_timer_) sample_memory();
    });
}

}  // namespace herd
