// AVX2 fast paths for the K-quants and IQ4, bit-identical to the reference.
//
// Each of the eight float lanes runs one group's scalar recipe (a 32-weight
// group of Q4_K/Q5_K/IQ4_XS, a 16-weight group of Q6_K, a whole IQ4_NL block) with the same operations in
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
void QuantizeRowIQ4_XS(const float* x, BlockIQ4_XS* y, int64_t n_per_row, const float* qw);

// Quantizes the row's IQ4_NL blocks eight at a time and returns how many it
// did (a multiple of eight); the caller finishes the rest.
int64_t QuantizeRowIQ4_NLPrefix(const float* x, BlockIQ4_NL* y, int64_t n_per_row, const float* qw);

}  // namespace quantfleet::simd

#endif  // QUANTFLEET_CORE_QUANT_SIMD_KQUANTS_H_
