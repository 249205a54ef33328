// Spreading --max-worker-memory's samples over their period (core/sampling.hpp).
#include <herd/core/policy.hpp>
#include <herd/core/sampling.hpp>

#include <doctest/doctest.h>

#include <set>

using namespace herd;
using namespace std::chrono_literals;

TEST_CASE("sampling: a tick per worker over the period, never shorter than the minimum")
{
    CHECK(sample_tick(8, 1000ms, 10ms) == 125ms);
    CHECK(sample_tick(1, 1000ms, 10ms) == 1000ms);
    CHECK(sample_tick(1024, 1000ms, 10ms) == 10ms);     // 0.98 ms a worker: ticks of 10 ms
    CHECK(sample_tick(0, 1000ms, 10ms) == 1000ms);      // nobody to read: once a period
    CHECK(sample_tick(100, 50ms, 10ms) == 10ms);
    CHECK(sample_tick(4, 5ms, 10ms) == 5ms);            // a period shorter than the minimum tick
}

TEST_CASE("sampling: enough workers a tick that each is read once per period")
{
    CHECK(samples_per_tick(8, 1000ms, 125ms) == 1);
    CHECK(samples_per_tick(1024, 1000ms, 10ms) == 11);  // 1100 a second >= 1024
    CHECK(samples_per_tick(3, 1000ms, 1000ms) == 3);
    CHECK(samples_per_tick(0, 1000ms, 10ms) == 0);
    CHECK(samples_per_tick(5, 1000ms, 1ms) == 1);        // at least one a tick
    for (std::size_t workers : {1u, 7u, 64u, 256u, 1000u, 1024u, 4096u})
        for (auto period : {50ms, 250ms, 1000ms}) {
            const Duration tick = sample_tick(workers, period, 10ms);
            const std::size_t per_tick = samples_per_tick(workers, period, tick);
            const auto ticks = std::size_t(period / tick);
            CAPTURE(workers);
            CAPTURE(period.count());
            CHECK(per_tick * ticks >= workers);        // everyone within a period
            CHECK(per_tick <= workers);
        }
}

TEST_CASE("sampling: round robin over the workers, starting over when the list shrank")
{
    std::set<std::size_t> seen;
    std::size_t cursor = 0;
    for (int tick = 0; tick < 3; ++tick) {
        const SampleRange r = next_samples(cursor, 10, 4);
        for (std::size_t i = 0; i < r.count; ++i) seen.insert((r.first + i) % 10);
        cursor = r.next;
    }
    CHECK(seen.size() == 10);
    CHECK(cursor == 2);
    const SampleRange shrunk = next_samples(8, 5, 2);
    CHECK(shrunk.first == 0);
    CHECK(shrunk.count == 2);
    CHECK(shrunk.next == 2);
    const SampleRange all = next_samples(3, 4, 10);
    CHECK(all.count == 4);
    CHECK(all.next == 3);
    CHECK(next_samples(0, 0, 3).count == 0);
}

// A sample that changes nothing plan() decides from is applied without a plan(): the shell
// relies on plan() and next_deadline() being the same after it.
TEST_CASE("sampling: a memory sample is routine unless it crosses the limit, either way")
{
    const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);
    Options o;
    o.workers = 1;
    o.heartbeat_timeout = 0s;
    o.max_worker_memory = 64ull << 20;
    o.max_worker_memory_window = 10s;
    PoolState s;
    s.target = 1;
    s.workers.push_back(WorkerRecord{.pid = 100, .slot = 0, .spawned_at = t0, .ready_at = t0, .last_heartbeat = t0});
    constexpr std::uint64_t over = 100ull << 20, under = 32ull << 20;

    // Each sample in turn: routine or not, and a routine one leaves plan() and next_deadline() as they were
    struct Step {
        std::uint64_t bytes;
        bool routine;
    };
    int second = 1;
    for (const Step step : {Step{under, true}, Step{under, true}, Step{over, false}, Step{over, true}, Step{under, false},
                            Step{under, true}}) {
        const TimePoint now = t0 + std::chrono::seconds(second++);
        const MemorySampled sample{100, step.bytes};
        CAPTURE(second);
        CHECK(is_routine(s, sample, o) == step.routine);
        const Actions before = plan(s, o, now);
        const TimePoint deadline = next_deadline(s, o, now);
        apply(s, sample, o, now);
        CHECK(s.find(100)->memory == step.bytes);
        if (step.routine) {
            CHECK(plan(s, o, now) == before);
            CHECK(next_deadline(s, o, now) == deadline);
        }
    }
    // Not a worker (gone already): nothing to change
    CHECK(is_routine(s, MemorySampled{999, over}, o));
    // The limit off: no sample is over it
    o.max_worker_memory = 0;
    CHECK(is_routine(s, MemorySampled{100, over}, o));
}
