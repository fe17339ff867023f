// The build without CUDA: no GPU is ever visible.
#include "core/gpu/gpu_devices.h"

namespace quantfleet {

std::vector<GpuDevice> ListGpus() { return {}; }

std::string NoGpuReason() { return "built without CUDA (configure with -DQUANTFLEET_CUDA=ON where nvcc exists)"; }

bool GpuSupports(GgmlType, bool) { return false; }

absl::Status QuantizeRowsOnGpu(int, GgmlType, const float*, void*, int64_t, int64_t, const float*, uint64_t) {
  return absl::FailedPreconditionError(NoGpuReason());
}

}  // namespace quantfleet
