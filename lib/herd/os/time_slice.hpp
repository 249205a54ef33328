// The kernel's time slice for the manager and its children: the manager asks for a long one, a
// child goes back to the default.
#pragma once

namespace herd {

/// The manager asks the kernel for a long time slice (Linux 6.12 and later; EEVDF's sched_runtime
/// of a SCHED_OTHER or SCHED_BATCH process): a worker, or a client on the same machine, that
/// wakes up while the manager forks, reaps or writes its log preempts it at once, instead of
/// waiting for the manager's slice to end. Its share of the CPU is unchanged. False where the
/// kernel ignores the request (older kernels, real-time policies); nothing changes then.
bool yield_to_workers();
/// In a child of the manager: the kernel's default time slice again (async-signal-safe).
void default_time_slice();

}  // namespace herd
