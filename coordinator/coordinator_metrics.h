// The coordinator's Prometheus metrics: build info, jobs by state, the
// progress of running jobs, service-wide task and byte counters, and each
// worker's state and throughput.
//
// Thread-safety: safe to call from any thread (it reads the coordinator
// through its thread-safe methods).
#ifndef QUANTFLEET_COORDINATOR_COORDINATOR_METRICS_H_
#define QUANTFLEET_COORDINATOR_COORDINATOR_METRICS_H_

#include <string>

#include "coordinator/coordinator.h"

namespace quantfleet {

// The metrics page in the Prometheus text format.
std::string CoordinatorMetricsText(Coordinator& coordinator);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_COORDINATOR_METRICS_H_
