#include <cuda_runtime.h>

#include "absl/strings/str_format.h"
#include "worker/cuda/gpu_devices.h"
#include "worker/cuda/quantize_kernels.cuh"

namespace quantfleet {
namespace {

absl::Status FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  const std::string msg = absl::StrFormat("%s: %s", what, cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// Device buffers freed on every path.
struct DeviceBuffer {
  void* p = nullptr;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
};

}  // namespace

std::vector<GpuDevice> ListGpus() {
  std::vector<GpuDevice> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    char bus[32] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof(bus), i) != cudaSuccess) bus[0] = '\0';
    out.push_back({i, prop.name, static_cast<int64_t>(prop.totalGlobalMem), prop.major * 10 + prop.minor, bus});
  }
  return out;
}

std::string NoGpuReason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::StrFormat("no usable CUDA device (%s)", cudaGetErrorString(e));
  }
  return count == 0 ? "no CUDA device" : "";
}

bool GpuSupports(GgmlType type, bool with_imatrix) {
  return HasQuantizeKernel(static_cast<uint32_t>(type), with_imatrix);
}

absl::Status QuantizeRowsOnGpu(int device, GgmlType type, const float* src, void* dst, int64_t nrows,
                               int64_t n_per_row, const float* imatrix) {
  if (!GpuSupports(type, imatrix != nullptr)) {
    return absl::UnimplementedError(absl::StrFormat("no GPU kernel for type %s%s yet", TypeName(type),
                                                    imatrix ? " with importance weights" : ""));
  }
  if (n_per_row % BlockSize(type) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("rows of %d are not whole %s blocks", n_per_row, TypeName(type)));
  }
  const int64_t n = nrows * n_per_row;
  const size_t in_bytes = static_cast<size_t>(n) * sizeof(float);
  const size_t out_bytes = RowSize(type, n_per_row) * static_cast<size_t>(nrows);
  if (absl::Status s = FromCuda(cudaSetDevice(device), "select device"); !s.ok()) return s;
  DeviceBuffer in, out, weights;
  if (absl::Status s = FromCuda(cudaMalloc(&in.p, in_bytes > 0 ? in_bytes : 1), "allocate input"); !s.ok()) return s;
  if (absl::Status s = FromCuda(cudaMalloc(&out.p, out_bytes > 0 ? out_bytes : 1), "allocate output"); !s.ok()) {
    return s;
  }
  if (absl::Status s = FromCuda(cudaMemcpy(in.p, src, in_bytes, cudaMemcpyHostToDevice), "copy in"); !s.ok()) return s;
  if (imatrix) {
    const size_t w_bytes = static_cast<size_t>(n_per_row) * sizeof(float);
    if (absl::Status s = FromCuda(cudaMalloc(&weights.p, w_bytes), "allocate weights"); !s.ok()) return s;
    if (absl::Status s = FromCuda(cudaMemcpy(weights.p, imatrix, w_bytes, cudaMemcpyHostToDevice), "copy weights");
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = FromCuda(LaunchQuantize(static_cast<uint32_t>(type), static_cast<const float*>(in.p), out.p, n,
                                               n_per_row, static_cast<const float*>(weights.p), 0),
                                "launch");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = FromCuda(cudaDeviceSynchronize(), "run"); !s.ok()) return s;
  return FromCuda(cudaMemcpy(dst, out.p, out_bytes, cudaMemcpyDeviceToHost), "copy out");
}

}  // namespace quantfleet
