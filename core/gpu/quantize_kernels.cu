#include "core/gpu/quantize_kernels.cuh"
#include "core/quant/blocks.h"
#include "core/quant/half.h"
#include "core/quant/kquant_blocks.h"
#include "core/quant/simple_blocks.h"

// One thread per block (a super-block for the K-quants and IQ4_XS, or an
// element for F16/BF16), each running the shared recipe. Built with -fmad=false and IEEE division and square root,
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

// Super-block recipes with a uniform signature: one block of the type from
// `x`, with `qw` null or the block's importance weights.
__device__ void Q2K(const float* x, BlockQ2_K* y, const float* qw) {
  if (qw) {
    ref::QuantizeQ2_KWeighted(x, y, kQK_K, qw);
  } else {
    ref::QuantizeQ2_KRef(x, y, kQK_K);
  }
}
__device__ void Q3K(const float* x, BlockQ3_K* y, const float* qw) {
  if (qw) {
    ref::QuantizeQ3_KWeighted(x, y, kQK_K, qw);
  } else {
    ref::QuantizeQ3_KRef(x, y, kQK_K);
  }
}
__device__ void Q4K(const float* x, BlockQ4_K* y, const float* qw) { ref::QuantizeQ4_K(x, y, kQK_K, qw); }
__device__ void Q5K(const float* x, BlockQ5_K* y, const float* qw) { ref::QuantizeQ5_K(x, y, kQK_K, qw); }
__device__ void Q6K(const float* x, BlockQ6_K* y, const float* qw) { ref::QuantizeQ6_K(x, y, kQK_K, qw); }
__device__ void IQ4XS(const float* x, BlockIQ4_XS* y, const float* qw) {
  ref::QuantizeIQ4Block(kQK_K, x, &y->d, y->qs, &y->scales_h, y->scales_l, qw, 7);
}
__device__ void IQ4NL(const float* x, BlockIQ4_NL* y, const float* qw) {
  ref::QuantizeIQ4Block(kQK4_NL, x, &y->d, y->qs, nullptr, nullptr, qw, 7);
}

template <typename Block, int kWeights, void (*Recipe)(const float*, Block*, const float*)>
__global__ void QuantizeWeightedBlocksKernel(const float* src, Block* dst, int64_t nblocks, int64_t blocks_per_row,
                                             const float* imatrix) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= nblocks) return;
  const float* qw = imatrix ? imatrix + (i % blocks_per_row) * kWeights : nullptr;
  Recipe(src + i * kWeights, dst + i, qw);
}

unsigned int Grid(int64_t items) { return static_cast<unsigned int>((items + kThreads - 1) / kThreads); }

template <typename Block, void (*Recipe)(const float*, Block*)>
cudaError_t LaunchBlocks(const float* src, void* dst, int64_t n, cudaStream_t stream) {
  const int64_t nblocks = n / 32;
  if (nblocks == 0) return cudaSuccess;
  QuantizeBlocksKernel<Block, Recipe><<<Grid(nblocks), kThreads, 0, stream>>>(src, static_cast<Block*>(dst), nblocks);
  return cudaGetLastError();
}

template <typename Block, int kWeights, void (*Recipe)(const float*, Block*, const float*)>
cudaError_t LaunchWeighted(const float* src, void* dst, int64_t n, int64_t n_per_row, const float* imatrix,
                           cudaStream_t stream) {
  const int64_t nblocks = n / kWeights;
  if (nblocks == 0) return cudaSuccess;
  // Super-block recipes keep kilobytes of locals: smaller thread blocks.
  constexpr int kSuperThreads = 64;
  const unsigned int grid = static_cast<unsigned int>((nblocks + kSuperThreads - 1) / kSuperThreads);
  QuantizeWeightedBlocksKernel<Block, kWeights, Recipe>
      <<<grid, kSuperThreads, 0, stream>>>(src, static_cast<Block*>(dst), nblocks, n_per_row / kWeights, imatrix);
  return cudaGetLastError();
}

}  // namespace

bool HasQuantizeKernel(uint32_t t, bool with_imatrix) {
  const bool plain = t == 0 || t == 1 || t == 30 || t == 2 || t == 3 || t == 6 || t == 7 || t == 8;
  const bool super = t == 10 || t == 11 || t == 12 || t == 13 || t == 14 || t == 20 || t == 23;
  // The 32-weight types' weighted recipes need whole-row statistics: not yet.
  return with_imatrix ? super || t == 0 || t == 1 || t == 30 || t == 8 : plain || super;
}

cudaError_t LaunchQuantize(uint32_t t, const float* src, void* dst, int64_t n, int64_t n_per_row, const float* imatrix,
                           cudaStream_t stream) {
  if (!HasQuantizeKernel(t, imatrix != nullptr)) return cudaErrorInvalidValue;
  switch (t) {
    case 10:
      return LaunchWeighted<BlockQ2_K, kQK_K, Q2K>(src, dst, n, n_per_row, imatrix, stream);
    case 11:
      return LaunchWeighted<BlockQ3_K, kQK_K, Q3K>(src, dst, n, n_per_row, imatrix, stream);
    case 12:
      return LaunchWeighted<BlockQ4_K, kQK_K, Q4K>(src, dst, n, n_per_row, imatrix, stream);
    case 13:
      return LaunchWeighted<BlockQ5_K, kQK_K, Q5K>(src, dst, n, n_per_row, imatrix, stream);
    case 14:
      return LaunchWeighted<BlockQ6_K, kQK_K, Q6K>(src, dst, n, n_per_row, imatrix, stream);
    case 20:
      return LaunchWeighted<BlockIQ4_NL, kQK4_NL, IQ4NL>(src, dst, n, n_per_row, imatrix, stream);
    case 23:
      return LaunchWeighted<BlockIQ4_XS, kQK_K, IQ4XS>(src, dst, n, n_per_row, imatrix, stream);
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
    case 2:
      return LaunchBlocks<BlockQ4_0, QuantizeBlockQ4_0>(src, dst, n, stream);
    case 3:
      return LaunchBlocks<BlockQ4_1, QuantizeBlockQ4_1>(src, dst, n, stream);
    case 6:
      return LaunchBlocks<BlockQ5_0, QuantizeBlockQ5_0>(src, dst, n, stream);
    case 7:
      return LaunchBlocks<BlockQ5_1, QuantizeBlockQ5_1>(src, dst, n, stream);
    case 8:
      return LaunchBlocks<BlockQ8_0, QuantizeBlockQ8_0>(src, dst, n, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace quantfleet
