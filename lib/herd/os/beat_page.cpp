#include <herd/os/beat_page.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace herd {

namespace {

std::size_t page_size()
{
    static const std::size_t size = std::size_t(::sysconf(_SC_PAGESIZE));
    return size;
}

[[noreturn]] void fail(int fd, const char* what)
{
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

BeatPage BeatPage::make()
{
    const int fd = ::memfd_create("herd-beat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) fail(-1, "cannot create a heartbeat page");
    if (::ftruncate(fd, off_t(page_size())) != 0) fail(fd, "cannot size a heartbeat page");
    void* at = ::mmap(nullptr, page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) fail(fd, "cannot map a heartbeat page");
    // From here on only this mapping (and the child's copy of it) writes the page.
    if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0) {
        ::munmap(at, page_size());
        fail(fd, "cannot seal a heartbeat page");
    }
    BeatPage page;
    page.record_ = new (at) BeatRecord{};
    page.record_->version.store(1, std::memory_order_relaxed);
    page.record_->magic.store(BeatRecord::magic_value, std::memory_order_release);
    page.fd_ = fd;
    page.writable_ = true;
    return page;
}

BeatPage BeatPage::own(int fd, BeatRecord* record)
{
    BeatPage page;
    page.fd_ = fd;
    page.record_ = record;
    page.writable_ = record != nullptr;
    return page;
}

BeatPage BeatPage::adopt(int fd)
{
    struct stat st {};
    BeatPage page;
    if (::fstat(fd, &st) != 0 || std::size_t(st.st_size) < sizeof(BeatRecord)) {
        ::close(fd);
        return page;
    }
    void* at = ::mmap(nullptr, page_size(), PROT_READ, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) {
        ::close(fd);
        return page;
    }
    ::madvise(at, page_size(), MADV_DONTFORK);
    auto* record = static_cast<BeatRecord*>(at);
    if (record->magic.load(std::memory_order_acquire) != BeatRecord::magic_value ||
        record->version.load(std::memory_order_relaxed) < 1) {
        ::munmap(at, page_size());
        ::close(fd);
        return page;
    }
    page.record_ = record;
    page.fd_ = fd;
    return page;
}

BeatPage& BeatPage::operator=(BeatPage&& other) noexcept
{
    if (this != &other) {
        reset();
        record_ = std::exchange(other.record_, nullptr);
        fd_ = std::exchange(other.fd_, -1);
        writable_ = std::exchange(other.writable_, false);
    }
    return *this;
}

void BeatPage::dont_fork() const
{
    if (record_) ::madvise(record_, page_size(), MADV_DONTFORK);
}

void BeatPage::close_in_child() noexcept
{
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    record_ = nullptr;
}

void BeatPage::reset() noexcept
{
    if (record_) ::munmap(record_, page_size());
    if (fd_ >= 0) ::close(fd_);
    record_ = nullptr;
    fd_ = -1;
    writable_ = false;
}

std::pair<int, BeatRecord*> BeatPage::release() noexcept
{
    writable_ = false;
    return {std::exchange(fd_, -1), std::exchange(record_, nullptr)};
}

BeatPage beat_page_for_child()
{
    static bool failed = false;
    try {
        BeatPage page = BeatPage::make();
        failed = false;
        return page;
    } catch (const std::system_error& e) {
        if (!failed) spdlog::warn("{}: the worker beats on its heartbeat pipe instead", e.what());
        failed = true;
        return {};
    }
}

std::uint64_t beat_stamp_now() noexcept
{
    // libstdc++'s steady_clock is CLOCK_MONOTONIC, read through the vDSO.
    return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count());
}

}  // namespace herd
