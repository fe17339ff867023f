#include "worker/cuda/quantize_kernels.cuh"

#include "core/quant/blocks.h"
#include "core/quant/half.h"
#include "core/quant/simple_blocks.h"

// One thread per block (or per element for F16/BF16), each running the
// shared recipe. Built with -fmad=false and IEEE division and square root,
// so the bits are the CPU reference's.

namespace quantfleet {
namespace {

constexpr int kThreads = 256;

template <typename Block, void (*Recipe)(const float*, Block*)>
__global__ void QuantizeBlocksKernel(const float* src, Block* dst, int64_t nblocks) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < nblocks) Recipe(src + i * 32, dst + i);
}

__global__ void ToHalfKernel(const float* src, uint16_t* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = FloatToHalf(src[i]);
}

__global__ void ToBFloat16Kernel(const float* src, uint16_t* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = FloatToBFloat16(src[i]);
}

unsigned int Grid(int64_t items) { return static_cast<unsigned int>((items + kThreads - 1) / kThreads); }

template <typename Block, void (*Recipe)(const float*, Block*)>
cudaError_t LaunchBlocks(const float* src, void* dst, int64_t n, cudaStream_t stream) {
  const int64_t nblocks = n / 32;
  if (nblocks == 0) return cudaSuccess;
  QuantizeBlocksKernel<Block, Recipe><<<Grid(nblocks), kThreads, 0, stream>>>(src, static_cast<Block*>(dst), nblocks);
  return cudaGetLastError();
}

}  // namespace

bool HasQuantizeKernel(uint32_t t) {
  return t == 0 || t == 1 || t == 30 || t == 2 || t == 3 || t == 6 || t == 7 || t == 8;
}

cudaError_t LaunchQuantize(uint32_t t, const float* src, void* dst, int64_t n, cudaStream_t stream) {
  switch (t) {
    case 0:  // F32
      return cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream);
    case 1:  // F16
      if (n == 0) return cudaSuccess;
      ToHalfKernel<<<Grid(n), kThreads, 0, stream>>>(src, static_cast<uint16_t*>(dst), n);
      return cudaGetLastError();
    case 30:  // BF16
      if (n == 0) return cudaSuccess;
      ToBFloat16Kernel<<<Grid(n), kThreads, 0, stream>>>(src, static_cast<uint16_t*>(dst), n);
      return cudaGetLastError();
    case 2: return LaunchBlocks<BlockQ4_0, QuantizeBlockQ4_0>(src, dst, n, stream);
    case 3: return LaunchBlocks<BlockQ4_1, QuantizeBlockQ4_1>(src, dst, n, stream);
    case 6: return LaunchBlocks<BlockQ5_0, QuantizeBlockQ5_0>(src, dst, n, stream);
    case 7: return LaunchBlocks<BlockQ5_1, QuantizeBlockQ5_1>(src, dst, n, stream);
    case 8: return LaunchBlocks<BlockQ8_0, QuantizeBlockQ8_0>(src, dst, n, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace quantfleet
