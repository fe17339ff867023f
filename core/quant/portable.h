// Marks functions that compile for both the CPU and CUDA devices, so one
// definition of a quantization recipe serves both (and so both give the
// same bits), and holds the helpers every recipe shares.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_PORTABLE_H_
#define QUANTFLEET_CORE_QUANT_PORTABLE_H_

#include <math.h>

#ifdef __CUDACC__
#define QF_HD __host__ __device__
#else
#define QF_HD
#endif

namespace quantfleet {

// The value of x[0..n) with the largest magnitude, sign kept (the first one
// on ties; 0 for an empty or all-zero range). Its fabsf is the group's amax.
QF_HD inline float LargestMagnitude(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_PORTABLE_H_
