// AVX2 fast paths for the K-quants, bit-identical to the reference.
//
// Each of the eight float lanes runs one group's scalar recipe (a 32-weight
// group of Q4_K/Q5_K, a 16-weight group of Q6_K) with the same operations in
// the same order; every branch of the scalar code becomes a compare and a
// blend. No fused multiply-adds are used. The functions are compiled for
// AVX2 only inside their own bodies and must be called only when
// HaveAvx2() is true.
//
// Thread-safety: pure functions over caller-owned buffers.
#ifndef QUANTFLEET_CORE_QUANT_SIMD_KQUANTS_H_
#define QUANTFLEET_CORE_QUANT_SIMD_KQUANTS_H_

#include <cstdint>

#include "core/quant/blocks.h"

namespace quantfleet::simd {

bool HaveAvx2();

// One row of n_per_row (a multiple of 256) floats; `qw` is null or holds
// n_per_row importance weights.
void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw);
void QuantizeRowQ5_K(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw);
void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, int64_t n_per_row, const float* qw);

}  // namespace quantfleet::simd

#endif  // QUANTFLEET_CORE_QUANT_SIMD_KQUANTS_H_
