// Heartbeats read from a worker's page: the stamp becomes last_heartbeat, clamped to what the
// manager saw; the count never goes back; the silence deadline follows the stamp. And the page
// itself: sealed so that only the mapping made before the seal writes it, handed over as page=FD.
#include <herd/core/policy.hpp>
#include <herd/manager/upgrade.hpp>
#include <herd/os/beat_page.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using namespace herd;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1000h;

Options page_options()
{
    Options o;
    o.workers = 1;
    o.spare = 0;
    o.heartbeat_timeout = 10s;
    o.boot_timeout = 30s;
    return o;
}

// A worker spawned at t0 and ready by its first record at t0 + 1s.
PoolState one_ready(const Options& o)
{
    PoolState s;
    s.target = 1;
    apply(s, Spawned{100, 0, 1}, o, t0);
    apply(s, HeartbeatSeen{100, 0}, o, t0 + 1s);
    return s;
}

// The reason plan() retires worker 100 for at `now`, or none.
Reason retired_for(const PoolState& s, const Options& o, TimePoint now)
{
    for (const Action& a : plan(s, o, now))
        if (const auto* r = std::get_if<Retire>(&a); r && r->pid == 100) return r->reason;
    return Reason::none;
}

HeartbeatSeen from_page(std::uint64_t requests, TimePoint at)
{
    return HeartbeatSeen{100, requests, true, at};
}

}  // namespace

TEST_CASE("a beat read from the page sets last_heartbeat to its stamp, not to when it was read")
{
    const Options o = page_options();
    PoolState s = one_ready(o);
    apply(s, from_page(3, t0 + 4s), o, t0 + 9s);
    CHECK(s.find(100)->last_heartbeat == t0 + 4s);
    CHECK(s.find(100)->requests == 3);
    // The silence deadline runs from the stamp: 4 s + 10 s, not 9 s + 10 s.
    CHECK(deadlines(*s.find(100), o).silence == t0 + 14s);
    CHECK(next_deadline(s, o, t0 + 9s) == t0 + 14s);
    CHECK(plan(s, o, t0 + 14s - 1ms).empty());
    CHECK(retired_for(s, o, t0 + 14s) == Reason::no_heartbeat);
}

TEST_CASE("a stamp in the future counts as now, one behind the last beat as the last beat")
{
    const Options o = page_options();
    PoolState s = one_ready(o);
    apply(s, from_page(1, t0 + 1h), o, t0 + 5s);   // a page cannot say more than the manager saw
    CHECK(s.find(100)->last_heartbeat == t0 + 5s);
    apply(s, from_page(2, t0), o, t0 + 6s);        // nor take back a beat already seen
    CHECK(s.find(100)->last_heartbeat == t0 + 5s);
    apply(s, from_page(2, TimePoint{}), o, t0 + 7s);
    CHECK(s.find(100)->last_heartbeat == t0 + 5s);
    CHECK(deadlines(*s.find(100), o).silence == t0 + 15s);
}

TEST_CASE("a beat's clamp: the stamp, between the last beat and now")
{
    WorkerRecord w;
    w.last_heartbeat = t0 + 2s;
    CHECK(beat_time(w, HeartbeatSeen{1, std::nullopt}, t0 + 5s) == t0 + 5s);   // a record: now
    CHECK(beat_time(w, HeartbeatSeen{1, std::nullopt, true, t0 + 3s}, t0 + 5s) == t0 + 3s);
    CHECK(beat_time(w, HeartbeatSeen{1, std::nullopt, true, t0 + 1s}, t0 + 5s) == t0 + 2s);
    CHECK(beat_time(w, HeartbeatSeen{1, std::nullopt, true, t0 + 6s}, t0 + 5s) == t0 + 5s);
    w.last_heartbeat = t0 + 9s;   // after a clock oddity: never past now either
    CHECK(beat_time(w, HeartbeatSeen{1, std::nullopt, true, t0 + 3s}, t0 + 5s) == t0 + 5s);
}

TEST_CASE("a request count never goes back")
{
    const Options o = page_options();
    PoolState s = one_ready(o);
    apply(s, from_page(40, t0 + 2s), o, t0 + 2s);
    apply(s, from_page(7, t0 + 3s), o, t0 + 3s);
    CHECK(s.find(100)->requests == 40);
    apply(s, HeartbeatSeen{100, 12}, o, t0 + 4s);   // nor on the pipe
    CHECK(s.find(100)->requests == 40);
    apply(s, from_page(41, t0 + 5s), o, t0 + 5s);
    CHECK(s.find(100)->requests == 41);
}

TEST_CASE("a beat from the page at the request limit retires the worker at once")
{
    Options o = page_options();
    o.max_requests = 10;
    PoolState s = one_ready(o);
    const HeartbeatSeen beat = from_page(10, t0 + 2s);
    CHECK_FALSE(is_routine(s, beat));   // it needs a plan
    apply(s, beat, o, t0 + 3s);
    CHECK(retired_for(s, o, t0 + 3s) == Reason::max_requests);
}

TEST_CASE("a heartbeat page is written through the mapping made before its seal, and no other")
{
    BeatPage page = BeatPage::make();
    REQUIRE(page);
    page.record()->stamp_ns.store(1234);
    // Another opening of the memfd, as a sibling could make through /proc/<manager>/fd, writes nothing.
    const std::string path = "/proc/self/fd/" + std::to_string(page.fd());
    const int other = ::open(path.c_str(), O_RDWR);
    REQUIRE(other >= 0);
    const std::uint64_t bytes = 99;
    errno = 0;
    CHECK(::pwrite(other, &bytes, sizeof bytes, 8) < 0);
    CHECK(errno == EPERM);
    CHECK(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0) == MAP_FAILED);
    CHECK(::ftruncate(other, 1 << 20) != 0);
    ::close(other);

    // The next image's read-only mapping sees what the worker stores.
    const int handed = ::fcntl(page.fd(), F_DUPFD_CLOEXEC, 0);
    BeatPage adopted = BeatPage::adopt(handed);
    REQUIRE(adopted);
    CHECK_FALSE(adopted.writable());
    CHECK(adopted.record()->stamp_ns.load() == 1234);
    page.record()->requests.store(5);
    CHECK(adopted.record()->requests.load() == 5);

    // A descriptor that is no page is refused.
    const int not_page = ::memfd_create("not-a-page", MFD_CLOEXEC);
    REQUIRE(not_page >= 0);
    CHECK_FALSE(BeatPage::adopt(not_page));
}

TEST_CASE("a worker's heartbeat page is handed over as page=FD, and a record without one is still read")
{
    Handover h;
    WorkerRecord a;
    a.pid = 100;
    WorkerRecord b;
    b.pid = 101;
    h.pool.workers = {a, b};
    h.channels = {{100, 7}, {101, 8}};
    h.pages = {{100, 12}};   // 101 beats on its pipe (an older image spawned it)
    const std::string text = encode(h);
    CHECK(text.find(" page=12") != std::string::npos);
    const Handover out = decode_handover(text);
    CHECK(out.pages == h.pages);
    CHECK(out.channels == h.channels);
    std::string without = text;
    without.erase(without.find(" page=12"), 8);
    CHECK(decode_handover(without).pages.empty());
}
