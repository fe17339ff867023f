// Launchers for the quantization kernels: raw device pointers, sizes and a
// stream in, a cudaError_t out (cudaGetLastError is checked after each
// launch). Validation happens one layer up, in gpu_devices_cuda.cc.
#ifndef QUANTFLEET_CORE_GPU_QUANTIZE_KERNELS_CUH_
#define QUANTFLEET_CORE_GPU_QUANTIZE_KERNELS_CUH_

#include <cuda_runtime.h>
#include <stdint.h>

namespace quantfleet {

// Quantizes `n` floats (whole rows of `n_per_row`) from `src` to `dst` as
// the type with id `ggml_type`. `imatrix` is null or a device array of
// n_per_row importance weights. Returns cudaErrorInvalidValue for a type
// (or an imatrix use) without a kernel.
cudaError_t LaunchQuantize(uint32_t ggml_type, const float* src, void* dst, int64_t n, int64_t n_per_row,
                           const float* imatrix, cudaStream_t stream);

// True when LaunchQuantize has a kernel for the type, with importance
// weights when `with_imatrix`.
bool HasQuantizeKernel(uint32_t ggml_type, bool with_imatrix);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GPU_QUANTIZE_KERNELS_CUH_
