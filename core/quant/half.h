// Conversions between float and the 16-bit formats (IEEE half, bfloat16).
//
// FloatToHalf rounds to nearest-even and maps NaN to 0x7E00 (sign kept),
// exactly as ggml's portable conversion does; HalfToFloat is exact. Pure
// functions, safe from any thread; usable in CUDA device code.
#ifndef QUANTFLEET_CORE_QUANT_HALF_H_
#define QUANTFLEET_CORE_QUANT_HALF_H_

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/quant/portable.h"

namespace quantfleet {

QF_HD inline float BitsToFloat(uint32_t w) {
  float f;
  memcpy(&f, &w, sizeof(f));
  return f;
}

QF_HD inline uint32_t FloatToBits(float f) {
  uint32_t w;
  memcpy(&w, &f, sizeof(w));
  return w;
}

QF_HD inline float HalfToFloat(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float normalized = BitsToFloat((two_w >> 4) + exp_offset) * 0x1.0p-112f;
  const uint32_t magic_mask = 126u << 23;
  const float denormalized = BitsToFloat((two_w >> 17) | magic_mask) - 0.5f;
  const uint32_t denormalized_cutoff = 1u << 27;
  const uint32_t result = sign | (two_w < denormalized_cutoff ? FloatToBits(denormalized) : FloatToBits(normalized));
  return BitsToFloat(result);
}

QF_HD inline uint16_t FloatToHalf(float f) {
  float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = FloatToBits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = BitsToFloat((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = FloatToBits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

QF_HD inline float BFloat16ToFloat(uint16_t h) { return BitsToFloat(static_cast<uint32_t>(h) << 16); }

QF_HD inline uint16_t FloatToBFloat16(float f) {
  const uint32_t u = FloatToBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it, force quiet
    return static_cast<uint16_t>((u >> 16) | 64);
  }
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

QF_HD inline bool HalfIsInf(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) == 0; }
QF_HD inline bool HalfIsNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_HALF_H_
