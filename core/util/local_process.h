// Starting local helper processes and finding them on loopback: what
// `quantfleet cluster` and the multi-process tests share.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_UTIL_LOCAL_PROCESS_H_
#define QUANTFLEET_CORE_UTIL_LOCAL_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace quantfleet {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
int FreeLoopbackPort();

// True once something accepts TCP connections on 127.0.0.1:port.
bool WaitForLoopbackPort(int port, absl::Duration timeout);

// Starts argv[0] (a path) with stdout and stderr appended to `log`.
// Returns the pid, or -1 when it cannot start.
pid_t SpawnWithLog(const std::vector<std::string>& argv, const std::string& log);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_LOCAL_PROCESS_H_
