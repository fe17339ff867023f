// The GPUs this process can use, and quantization on them.
//
// Built with CUDA (QUANTFLEET_CUDA), these query the driver and run the
// kernels in quantize_kernels.cu, which execute the same block recipes as
// the CPU reference (core/quant/simple_blocks.h) and so give its bits.
// Built without CUDA, ListGpus reports none and GpuSupports is false.
//
// Thread-safety: functions may be called from any thread; quantization
// calls for the same device take turns on its staging buffers.
#ifndef QUANTFLEET_CORE_GPU_GPU_DEVICES_H_
#define QUANTFLEET_CORE_GPU_GPU_DEVICES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

struct GpuDevice {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0;
  int compute_capability = 0;  // e.g. 90 for sm_90
  std::string pci_bus_id;      // "0000:3b:00.0", to find the GPU in NVML
};

// The visible GPUs; empty when there are none (or the build has no CUDA).
std::vector<GpuDevice> ListGpus();

// Why ListGpus is empty, in words ("built without CUDA", "no CUDA device").
std::string NoGpuReason();

// True when a GPU kernel exists for `type` (and the build has CUDA), with
// importance weights when `with_imatrix`.
bool GpuSupports(GgmlType type, bool with_imatrix = false);

// Quantizes `nrows` rows of `n_per_row` floats on GPU `device`, in slices
// of rows: each slice is staged through pinned host memory, and two are in
// flight on two streams, so one's copies overlap the other's kernel. The
// device buffers stay within `memory_budget` bytes (0: slices of about 16
// MiB of input), and are kept for the next call; when the device runs out
// of memory the slices shrink, down to one row. `imatrix` is null or
// n_per_row weights. Calls for one device take turns.
// Errors: UNIMPLEMENTED for unsupported types, RESOURCE_EXHAUSTED when not
// even one row fits, INTERNAL for other CUDA errors (with CUDA's message).
absl::Status QuantizeRowsOnGpu(int device, GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                               const float* imatrix = nullptr, uint64_t memory_budget = 0);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GPU_GPU_DEVICES_H_
