#include "core/model/activation_rounding.h"

#include <algorithm>
#include <cmath>

#include "core/quant/half.h"

namespace quantfleet {
namespace {

enum class DotType { kF32, kF16, kBF16, kQ8_0, kQ8_K };

DotType DotTypeOf(GgmlType t) {
  switch (t) {
    case GgmlType::kF16:
      return DotType::kF16;
    case GgmlType::kBF16:
      return DotType::kBF16;
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
    case GgmlType::kQ8_0:
    case GgmlType::kIQ4_NL:
    case GgmlType::kQ4_1:  // Q8_1: the same values as Q8_0
    case GgmlType::kQ5_1:
      return DotType::kQ8_0;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_XS:
      return DotType::kQ8_K;
    default:
      return DotType::kF32;
  }
}

// Blocks of 32: scale amax / 127 (kept as F16), values round(x * 127 / amax).
void RoundQ8_0(float* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    float* v = x + b;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = HalfToFloat(FloatToHalf(amax / 127.f));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < 32; ++j) v[j] = std::nearbyint(v[j] * id) * d;
  }
}

// Blocks of 256: scale -127 / (the value of largest magnitude), kept as F32.
void RoundQ8_K(float* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 256) {
    float* v = x + b;
    float amax = 0, max = 0;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(v[j]);
      if (ax > amax) {
        amax = ax;
        max = v[j];
      }
    }
    if (amax == 0.0f) {
      std::fill(v, v + 256, 0.0f);
      continue;
    }
    const float iscale = -127.f / max;
    const float d = 1 / iscale;
    for (int j = 0; j < 256; ++j) v[j] = std::min(127.0f, std::nearbyint(iscale * v[j])) * d;
  }
}

}  // namespace

void RoundActivationsFor(GgmlType weight_type, float* x, int64_t n_rows, int64_t n_in) {
  const int64_t n = n_rows * n_in;
  switch (DotTypeOf(weight_type)) {
    case DotType::kF32:
      break;
    case DotType::kF16:
      for (int64_t i = 0; i < n; ++i) x[i] = HalfToFloat(FloatToHalf(x[i]));
      break;
    case DotType::kBF16:
      for (int64_t i = 0; i < n; ++i) x[i] = BFloat16ToFloat(FloatToBFloat16(x[i]));
      break;
    case DotType::kQ8_0:
      RoundQ8_0(x, n);
      break;
    case DotType::kQ8_K:
      RoundQ8_K(x, n);
      break;
  }
}

}  // namespace quantfleet
