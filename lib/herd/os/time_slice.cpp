#include <herd/os/time_slice.hpp>

#include <cstdint>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace herd {

namespace {

// sched_setattr(2) and sched_getattr(2): glibc 2.36 has no wrappers.
struct SchedAttr {
    std::uint32_t size, sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime, sched_deadline, sched_period;   // runtime: the slice, for SCHED_OTHER
    std::uint32_t util_min, util_max;
};
constexpr std::uint64_t manager_slice_ns = 50'000'000;   // the longest the kernel grants is 100 ms
constexpr std::uint64_t reset_on_fork = 0x01;            // SCHED_FLAG_RESET_ON_FORK

// The calling thread's time slice, leaving its policy and nice value as they are.
bool set_time_slice(std::uint64_t ns)
{
    SchedAttr a{};
    if (::syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) return false;
    if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH) return false;
    a.size = sizeof a;
    a.sched_flags &= reset_on_fork;
    a.sched_runtime = ns;
    if (::syscall(SYS_sched_setattr, 0, &a, 0) != 0) return false;
    // Kernels before 6.12 take the value and ignore it; they report no slice back.
    SchedAttr now{};
    return ns == 0 || (::syscall(SYS_sched_getattr, 0, &now, sizeof now, 0) == 0 && now.sched_runtime == ns);
}

}  // namespace

bool yield_to_workers()
{
    return set_time_slice(manager_slice_ns);
}

void default_time_slice()
{
    set_time_slice(0);
}

}  // namespace herd
