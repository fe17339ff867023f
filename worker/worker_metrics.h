// A worker's Prometheus metrics: build info, its task and byte counters,
// and the memory and utilisation of the GPUs it quantizes on.
//
// Thread-safety: safe to call from any thread (counters are atomics).
#ifndef QUANTFLEET_WORKER_WORKER_METRICS_H_
#define QUANTFLEET_WORKER_WORKER_METRICS_H_

#include <string>
#include <vector>

#include "core/gpu/gpu_devices.h"
#include "worker/worker_agent.h"

namespace quantfleet {

std::string WorkerMetricsText(const std::string& worker_name, const WorkerCounters& counters,
                              const std::vector<GpuDevice>& gpus);

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_WORKER_METRICS_H_
