// A worker's heartbeat page: a small shared memory record the worker writes and the manager reads
// when a deadline comes, so that a heartbeat costs the worker a store and the manager nothing.
//
// The manager makes one per worker before the fork (make()): a memfd (close-on-exec) sized to one
// page, mapped shared and writable, then sealed: it can neither shrink nor grow, and no one can
// map it writable or write() it again (F_SEAL_FUTURE_WRITE), the manager's own mapping excepted.
// The child inherits that one mapping through fork and nothing else of it: the manager closes the
// memfd in the child and marks its own mapping MADV_DONTFORK once the child is forked, so no later
// child inherits a sibling's page, and one that opens a sibling's memfd through /proc/<manager>/fd
// can read it but not write it. A worker cannot speak for another.
//
// The manager keeps the memfd for USR2: the next image maps it read-only (adopt()).
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace herd {

/// The record at the start of the page. Version 1; fields are only ever added at its end.
struct BeatRecord {
    static constexpr std::uint32_t magic_value = 0x68657264;   // "herd"
    std::atomic<std::uint32_t> magic;
    std::atomic<std::uint32_t> version;
    std::atomic<std::uint64_t> stamp_ns;        // worker: CLOCK_MONOTONIC ns of its last heartbeat, 0: none yet
    std::atomic<std::uint64_t> requests;        // worker: its cumulative request count
    std::atomic<std::uint64_t> request_limit;   // manager: --max-requests with its jitter, 0: none
};

/// One mapping of a worker's page and the memfd behind it; moves, never copies.
class BeatPage {
public:
    BeatPage() = default;
    /// A new page, sealed, mapped writable; throws std::system_error.
    static BeatPage make();
    /// Own a page that release() gave up (the manager's mapping, writable).
    static BeatPage own(int fd, BeatRecord* record);
    /// The page behind a memfd the previous image handed over, mapped read-only; takes the fd. An
    /// empty page (and the fd closed) when it is not a page of this layout.
    static BeatPage adopt(int fd);
    ~BeatPage() { reset(); }
    BeatPage(BeatPage&& other) noexcept { *this = std::move(other); }
    BeatPage& operator=(BeatPage&& other) noexcept;
    BeatPage(const BeatPage&) = delete;
    BeatPage& operator=(const BeatPage&) = delete;

    explicit operator bool() const { return record_ != nullptr; }
    BeatRecord* record() const { return record_; }
    int fd() const { return fd_; }
    bool writable() const { return writable_; }
    /// In the manager, once the child that owns the page is forked: no later fork inherits it.
    void dont_fork() const;
    /// In a forked child: close the memfd, raw, and forget the page (the child has no mapping of it).
    void close_in_child() noexcept;
    void reset() noexcept;
    /// Gives the memfd and the mapping up without closing or unmapping them.
    std::pair<int, BeatRecord*> release() noexcept;

private:
    BeatRecord* record_ = nullptr;
    int fd_ = -1;
    bool writable_ = false;
};

/// make(), or an empty page when one cannot be made (out of descriptors or memory, a kernel before
/// 5.1): that worker then beats on its pipe, as exec mode's programs do. Logged once until one is made.
BeatPage beat_page_for_child();

/// Where a worker's beat is stored: now, as CLOCK_MONOTONIC nanoseconds (steady_clock's).
std::uint64_t beat_stamp_now() noexcept;

}  // namespace herd
