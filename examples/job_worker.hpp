// JobWorker: herd without sockets, the worker of job-worker and of hello-http's `jobs` pool
// (examples/pools.conf). Each worker runs a plain blocking loop that does a job every
// --job-interval (a few ms of CPU: checksumming a buffer), and shows the three calls such a loop
// needs:
//   heartbeat()  from inside the loop, often: it is cheap and rate limited, and it is where a
//                QUIT is noticed (on_stop() runs from it);
//   add_requests() once per job: feeds --max-requests and status;
//   stopping()   checked between jobs: a job in progress is finished, never cut short.
#pragma once

#include <herd/herd.hpp>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

class JobWorker : public herd::Worker {
    using Clock = std::chrono::steady_clock;

public:
    /// A pool's `worker = jobs` runs this type (herd::main<..., JobWorker>).
    static constexpr const char* worker_type = "jobs";

    /// --job-interval D (time between job starts) and --job-size MiB (work per job).
    static void add_options(boost::program_options::options_description& options)
    {
        options.add_options()
            ("job-interval", herd::duration_option("1s"), "time between the starts of two jobs")
            ("job-size", herd::count_option(4, "MIB"), "MiB checksummed per job");
    }

    void on_start() override
    {
        interval_ = args()["job-interval"].as<herd::Duration>();
        data_.resize(std::size_t(args()["job-size"].as<unsigned>()) << 20);
        for (std::size_t i = 0; i < data_.size(); ++i) data_[i] = std::uint8_t(i * 131 + 7);
    }

    int run() override
    {
        auto next_job = Clock::now();
        for (;;) {
            heartbeat();   // first: it is where QUIT is noticed and on_stop() runs
            if (stopping()) break;

            // A job when it is due
            if (Clock::now() >= next_job) {
                auto started = Clock::now();
                std::uint64_t sum = checksum();
                add_requests();
                auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
                spdlog::debug("job {} done in {} us (checksum {:016x})", requests(), took.count(), sum);
                // Jobs keep their rhythm, but one that overran is not followed by a burst.
                next_job = std::max(next_job + interval_, Clock::now());
                continue;
            }

            // Wait for it in short naps: heartbeats keep going and QUIT is noticed quickly.
            auto nap = std::min<Clock::duration>(next_job - Clock::now(), options().heartbeat_interval / 4);
            std::this_thread::sleep_for(std::min<Clock::duration>(nap, std::chrono::milliseconds(50)));
        }
        spdlog::info("job worker {} finished after {} jobs", slot(), requests());
        return 0;
    }

private:
    // The work: FNV-1a over the buffer, a few ms of CPU per MiB on a slow core.
    std::uint64_t checksum()
    {
        std::uint64_t h = 14695981039346656037ull;
        for (std::size_t i = 0; i < data_.size(); ++i) {
            h = (h ^ data_[i]) * 1099511628211ull;
            if ((i & 0xfffff) == 0) heartbeat();   // a long job still beats
        }
        return h;
    }

    herd::Duration interval_{1000};
    std::vector<std::uint8_t> data_;
};

