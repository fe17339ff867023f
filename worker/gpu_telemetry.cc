#include "worker/gpu_telemetry.h"

#include <dlfcn.h>

#include <mutex>

namespace quantfleet {
namespace {

// The few NVML declarations used here (nvml.h, stable ABI).
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr int kNvmlSuccess = 0;

struct Nvml {
  int (*init)() = nullptr;
  int (*by_bus_id)(const char*, NvmlDevice*) = nullptr;
  int (*by_index)(unsigned int, NvmlDevice*) = nullptr;
  int (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  int (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  bool ready = false;
};

const Nvml& LoadNvml() {
  static Nvml nvml;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;  // no NVIDIA driver here
    nvml.init = reinterpret_cast<int (*)()>(::dlsym(lib, "nvmlInit_v2"));
    nvml.by_bus_id =
        reinterpret_cast<int (*)(const char*, NvmlDevice*)>(::dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    nvml.by_index = reinterpret_cast<int (*)(unsigned int, NvmlDevice*)>(::dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    nvml.utilization =
        reinterpret_cast<int (*)(NvmlDevice, NvmlUtilization*)>(::dlsym(lib, "nvmlDeviceGetUtilizationRates"));
    nvml.memory = reinterpret_cast<int (*)(NvmlDevice, NvmlMemory*)>(::dlsym(lib, "nvmlDeviceGetMemoryInfo"));
    nvml.ready =
        nvml.init && nvml.by_bus_id && nvml.by_index && nvml.utilization && nvml.memory && nvml.init() == kNvmlSuccess;
  });
  return nvml;
}

}  // namespace

std::vector<GpuSample> SampleGpus(const std::vector<GpuDevice>& gpus) {
  std::vector<GpuSample> out;
  if (gpus.empty()) return out;
  const Nvml& nvml = LoadNvml();
  for (const GpuDevice& g : gpus) {
    GpuSample s;
    s.index = g.index;
    s.name = g.name;
    s.memory_total_bytes = g.memory_bytes;
    NvmlDevice device = nullptr;
    // CUDA and NVML may number GPUs differently; the PCI bus id is shared.
    const bool found =
        nvml.ready && (g.pci_bus_id.empty() ? nvml.by_index(static_cast<unsigned>(g.index), &device) == kNvmlSuccess
                                            : nvml.by_bus_id(g.pci_bus_id.c_str(), &device) == kNvmlSuccess);
    if (found) {
      NvmlMemory memory{};
      if (nvml.memory(device, &memory) == kNvmlSuccess) {
        s.memory_total_bytes = static_cast<int64_t>(memory.total);
        s.memory_used_bytes = static_cast<int64_t>(memory.used);
      }
      NvmlUtilization utilization{};
      if (nvml.utilization(device, &utilization) == kNvmlSuccess) {
        s.utilization_percent = static_cast<int>(utilization.gpu);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace quantfleet
