// The quantfleet-worker program: its flags, its GPUs and memory, the
// channel to the coordinator, the metrics endpoint and the agent's run
// until SIGTERM. quantfleet-worker's main is this with no decorator; fault
// tests build a worker whose link to the coordinator is wrapped.
//
// Thread-safety: called once, from main.
#ifndef QUANTFLEET_WORKER_WORKER_DAEMON_H_
#define QUANTFLEET_WORKER_WORKER_DAEMON_H_

#include <functional>
#include <memory>

#include "worker/coordinator_link.h"

namespace quantfleet {

using LinkDecorator = std::function<std::unique_ptr<CoordinatorLink>(std::unique_ptr<CoordinatorLink>)>;

// Parses the flags and runs the worker; returns the process exit code.
int RunWorkerDaemon(int argc, char** argv, const LinkDecorator& decorate);

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_WORKER_DAEMON_H_
