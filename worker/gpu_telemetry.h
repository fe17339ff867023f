// Live GPU memory and utilisation for the worker's metrics, read through
// NVML (libnvidia-ml.so.1, part of the NVIDIA driver) loaded at run time,
// so the worker needs neither NVML at build time nor a GPU at all.
//
// Thread-safety: Sample may be called from any thread (NVML is
// thread-safe; loading happens once).
#ifndef QUANTFLEET_WORKER_GPU_TELEMETRY_H_
#define QUANTFLEET_WORKER_GPU_TELEMETRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/gpu/gpu_devices.h"

namespace quantfleet {

struct GpuSample {
  int index = 0;  // the CUDA index the worker uses
  std::string name;
  int64_t memory_total_bytes = 0;
  int64_t memory_used_bytes = -1;  // -1: unknown
  int utilization_percent = -1;    // -1: unknown
};

// One sample per GPU in `gpus`. Without NVML the memory total comes from
// CUDA and the live values are -1.
std::vector<GpuSample> SampleGpus(const std::vector<GpuDevice>& gpus);

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_GPU_TELEMETRY_H_
