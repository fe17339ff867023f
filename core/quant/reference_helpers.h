// Scalar building blocks of the reference K-quant recipes, shared with the
// SIMD fast paths so that both use one definition of each step.
//
// Internal to core/quant. Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_REFERENCE_HELPERS_H_
#define QUANTFLEET_CORE_QUANT_REFERENCE_HELPERS_H_

#include <cstdint>
#include <cstring>

#include "core/quant/blocks.h"

namespace quantfleet::ref {

inline constexpr float kGroupMaxEps = 1e-15f;

// Round half to even through the float adder, valid for |x| <= 2^22.
inline int NearestInt(float fval) {
  float val = fval + 12582912.f;
  int i;
  std::memcpy(&i, &val, sizeof(int));
  return (i & 0x007fffff) - 0x00400000;
}

template <typename T>
inline T Max(T a, T b) { return a > b ? a : b; }
template <typename T>
inline T Min(T a, T b) { return a < b ? a : b; }

float MakeQxQuants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);
float MakeQkxQuants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                    uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad, bool qkx3);
float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m);
void PackScaleMinK4(int j, uint8_t ls, uint8_t lm, uint8_t* scales);
void Pack2Bit(const uint8_t* L, uint8_t* qs);
void PackQ4K(const uint8_t* L, BlockQ4_K& y);
void PackQ5K(const uint8_t* L, BlockQ5_K& y);

}  // namespace quantfleet::ref

#endif  // QUANTFLEET_CORE_QUANT_REFERENCE_HELPERS_H_
