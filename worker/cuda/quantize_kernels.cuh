// Launchers for the quantization kernels: raw device pointers, sizes and a
// stream in, a cudaError_t out (cudaGetLastError is checked after each
// launch). Validation happens one layer up, in gpu_devices_cuda.cc.
#ifndef QUANTFLEET_WORKER_CUDA_QUANTIZE_KERNELS_CUH_
#define QUANTFLEET_WORKER_CUDA_QUANTIZE_KERNELS_CUH_

#include <cuda_runtime.h>
#include <stdint.h>

namespace quantfleet {

// Quantizes `n` floats (a whole number of blocks of the type with id
// `ggml_type`) from `src` to `dst`. Returns cudaErrorInvalidValue for a
// type without a kernel.
cudaError_t LaunchQuantize(uint32_t ggml_type, const float* src, void* dst, int64_t n, cudaStream_t stream);

// True when LaunchQuantize has a kernel for the type.
bool HasQuantizeKernel(uint32_t ggml_type);

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_CUDA_QUANTIZE_KERNELS_CUH_
