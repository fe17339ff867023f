#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/gpu/gpu_devices.h"
#include "core/gpu/quantize_kernels.cuh"

namespace quantfleet {
namespace {

absl::Status FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  const std::string msg = absl::StrFormat("%s: %s", what, cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// Per device, the buffers quantization reuses from call to call: two
// pinned host buffers and two device buffers for the rows in and the
// blocks out (one pair per stream), and the importance weights. One call
// at a time per device (mu).
struct Staging {
  absl::Mutex mu;
  cudaStream_t streams[2] = {nullptr, nullptr};
  void* host_in[2] = {nullptr, nullptr};
  void* host_out[2] = {nullptr, nullptr};
  void* dev_in[2] = {nullptr, nullptr};
  void* dev_out[2] = {nullptr, nullptr};
  size_t in_bytes = 0, out_bytes = 0;  // capacity of each buffer
  float* weights = nullptr;
  size_t weights_bytes = 0;

  void Free() {
    for (int b = 0; b < 2; ++b) {
      if (host_in[b] != nullptr) cudaFreeHost(host_in[b]);
      if (host_out[b] != nullptr) cudaFreeHost(host_out[b]);
      if (dev_in[b] != nullptr) cudaFree(dev_in[b]);
      if (dev_out[b] != nullptr) cudaFree(dev_out[b]);
      host_in[b] = host_out[b] = dev_in[b] = dev_out[b] = nullptr;
    }
    in_bytes = out_bytes = 0;
  }

  // Buffers of at least `in` and `out` bytes. RESOURCE_EXHAUSTED (with
  // nothing held) when the device or the host cannot give them.
  absl::Status Reserve(size_t in, size_t out) {
    if (streams[0] == nullptr) {
      for (cudaStream_t& st : streams) {
        if (absl::Status s = FromCuda(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "create stream");
            !s.ok()) {
          return s;
        }
      }
    }
    if (in <= in_bytes && out <= out_bytes) return absl::OkStatus();
    Free();
    for (int b = 0; b < 2; ++b) {
      for (auto [status, what] : {std::pair{cudaHostAlloc(&host_in[b], in, cudaHostAllocDefault), "pin rows"},
                                  std::pair{cudaHostAlloc(&host_out[b], out, cudaHostAllocDefault), "pin blocks"},
                                  std::pair{cudaMalloc(&dev_in[b], in), "allocate rows"},
                                  std::pair{cudaMalloc(&dev_out[b], out), "allocate blocks"}}) {
        if (status != cudaSuccess) {
          cudaGetLastError();
          Free();
          return absl::ResourceExhaustedError(absl::StrFormat("%s: %s", what, cudaGetErrorString(status)));
        }
      }
    }
    in_bytes = in;
    out_bytes = out;
    return absl::OkStatus();
  }
};

Staging& StagingFor(int device) {
  static absl::Mutex mu;
  static auto* all = new std::map<int, std::unique_ptr<Staging>>();
  absl::MutexLock l(&mu);
  std::unique_ptr<Staging>& s = (*all)[device];
  if (s == nullptr) s = std::make_unique<Staging>();
  return *s;
}

// Rows of input per slice when the budget allows: large enough to keep the
// copies efficient, small enough that copies and kernels overlap.
constexpr size_t kSliceInputBytes = 16u << 20;

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

absl::Status QuantizeRowsOnGpu(int device, GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                               const float* imatrix, uint64_t memory_budget) {
  if (!GpuSupports(type, imatrix != nullptr)) {
    return absl::UnimplementedError(
        absl::StrFormat("no GPU kernel for type %s%s yet", TypeName(type), imatrix ? " with importance weights" : ""));
  }
  if (n_per_row <= 0 || n_per_row % BlockSize(type) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("rows of %d are not whole %s blocks", n_per_row, TypeName(type)));
  }
  if (nrows <= 0) return absl::OkStatus();
  const size_t in_row = static_cast<size_t>(n_per_row) * sizeof(float);
  const size_t out_row = RowSize(type, n_per_row);
  // Two slices in flight, each within half the budget.
  int64_t slice = std::max<int64_t>(1, static_cast<int64_t>(kSliceInputBytes / in_row));
  if (memory_budget > 0) slice = std::min<int64_t>(slice, memory_budget / (2 * (in_row + out_row)));
  slice = std::clamp<int64_t>(slice, 1, nrows);
  if (absl::Status s = FromCuda(cudaSetDevice(device), "select device"); !s.ok()) return s;
  Staging& st = StagingFor(device);
  absl::MutexLock lock(&st.mu);
  // Out of memory: smaller slices, down to one row, before giving up.
  while (true) {
    absl::Status r = st.Reserve(static_cast<size_t>(slice) * in_row, static_cast<size_t>(slice) * out_row);
    if (r.ok()) break;
    if (!absl::IsResourceExhausted(r) || slice == 1) return r;
    slice = (slice + 1) / 2;
  }
  const float* weights = nullptr;
  if (imatrix != nullptr) {
    const size_t w_bytes = in_row;
    if (st.weights_bytes < w_bytes) {
      if (st.weights != nullptr) cudaFree(st.weights);
      st.weights = nullptr;
      st.weights_bytes = 0;
      if (absl::Status s = FromCuda(cudaMalloc(&st.weights, w_bytes), "allocate weights"); !s.ok()) return s;
      st.weights_bytes = w_bytes;
    }
    if (absl::Status s = FromCuda(cudaMemcpy(st.weights, imatrix, w_bytes, cudaMemcpyHostToDevice), "copy weights");
        !s.ok()) {
      return s;
    }
    weights = st.weights;
  }
  // Slice k uses buffer pair k % 2 on stream k % 2: its rows go in and its
  // blocks come out while the other stream's kernel runs.
  int64_t pending_first[2] = {-1, -1}, pending_rows[2] = {0, 0};
  auto hand_over = [&](int b) -> absl::Status {  // waits for buffer pair b's slice, copies its blocks out
    if (pending_first[b] < 0) return absl::OkStatus();
    if (absl::Status s = FromCuda(cudaStreamSynchronize(st.streams[b]), "run"); !s.ok()) return s;
    std::memcpy(static_cast<uint8_t*>(dst) + static_cast<size_t>(pending_first[b]) * out_row, st.host_out[b],
                static_cast<size_t>(pending_rows[b]) * out_row);
    pending_first[b] = -1;
    return absl::OkStatus();
  };
  absl::Status failed;
  for (int64_t first = 0, k = 0; first < nrows && failed.ok(); first += slice, ++k) {
    const int b = static_cast<int>(k % 2);
    if (failed = hand_over(b); !failed.ok()) break;
    const int64_t rows = std::min(slice, nrows - first);
    std::memcpy(st.host_in[b], src + first * n_per_row, static_cast<size_t>(rows) * in_row);
    failed = FromCuda(cudaMemcpyAsync(st.dev_in[b], st.host_in[b], static_cast<size_t>(rows) * in_row,
                                      cudaMemcpyHostToDevice, st.streams[b]),
                      "copy in");
    if (failed.ok()) {
      failed = FromCuda(LaunchQuantize(static_cast<uint32_t>(type), static_cast<const float*>(st.dev_in[b]),
                                       st.dev_out[b], rows * n_per_row, n_per_row, weights, st.streams[b]),
                        "launch");
    }
    if (failed.ok()) {
      failed = FromCuda(cudaMemcpyAsync(st.host_out[b], st.dev_out[b], static_cast<size_t>(rows) * out_row,
                                        cudaMemcpyDeviceToHost, st.streams[b]),
                        "copy out");
    }
    pending_first[b] = first;
    pending_rows[b] = rows;
  }
  // The last slices (and, after a failure, whatever is still running).
  for (int b = 0; b < 2; ++b) {
    absl::Status s = hand_over(b);
    if (failed.ok()) failed = s;
  }
  return failed;
}

}  // namespace quantfleet
