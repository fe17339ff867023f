// The reference recipes of the 32-weight block types (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, without importance weights), one block per call, written once
// for the CPU and CUDA devices: both run these statements, in this order,
// so both give ggml's bits. Compile with no fused multiply-add
// (-ffp-contract=off, nvcc -fmad=false) and IEEE division.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_SIMPLE_BLOCKS_H_
#define QUANTFLEET_CORE_QUANT_SIMPLE_BLOCKS_H_

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/quant/blocks.h"
#include "core/quant/half.h"
#include "core/quant/portable.h"

namespace quantfleet {

// Splits 32 five-bit levels into low nibbles and the packed high bits.
QF_HD inline void Pack5Bit(const uint8_t* levels, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xi0 = levels[j];
    const uint8_t xi1 = levels[j + 16];
    qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
    qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
    qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
  }
  memcpy(qh_bytes, &qh, sizeof(qh));
}

QF_HD inline int MinInt(int a, int b) { return a < b ? a : b; }

QF_HD inline void QuantizeBlockQ4_0(const float* x, BlockQ4_0* y) {
  const int qk = kQK4_0;
  const float max = LargestMagnitude(x, qk);
  const float d = max / -8;
  const float id = d ? 1.0f / d : 0.0f;
  y->d = FloatToHalf(d);
  for (int j = 0; j < qk / 2; ++j) {
    const float x0 = x[0 + j] * id;
    const float x1 = x[qk / 2 + j] * id;
    const uint8_t xi0 = static_cast<uint8_t>(MinInt(15, static_cast<int8_t>(x0 + 8.5f)));
    const uint8_t xi1 = static_cast<uint8_t>(MinInt(15, static_cast<int8_t>(x1 + 8.5f)));
    y->qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
  }
}

QF_HD inline void QuantizeBlockQ4_1(const float* x, BlockQ4_1* y) {
  const int qk = kQK4_1;
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < qk; j++) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const float d = (max - min) / ((1 << 4) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  y->d = FloatToHalf(d);
  y->m = FloatToHalf(min);
  for (int j = 0; j < qk / 2; ++j) {
    const float x0 = (x[0 + j] - min) * id;
    const float x1 = (x[qk / 2 + j] - min) * id;
    const uint8_t xi0 = static_cast<uint8_t>(MinInt(15, static_cast<int8_t>(x0 + 0.5f)));
    const uint8_t xi1 = static_cast<uint8_t>(MinInt(15, static_cast<int8_t>(x1 + 0.5f)));
    y->qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
  }
}

QF_HD inline void QuantizeBlockQ5_0(const float* x, BlockQ5_0* y) {
  const int qk = kQK5_0;
  const float max = LargestMagnitude(x, qk);
  const float d = max / -16;
  const float id = d ? 1.0f / d : 0.0f;
  y->d = FloatToHalf(d);
  uint8_t levels[32];
  for (int j = 0; j < qk / 2; ++j) {
    const float x0 = x[0 + j] * id;
    const float x1 = x[qk / 2 + j] * id;
    levels[j] = static_cast<uint8_t>(MinInt(31, static_cast<int8_t>(x0 + 16.5f)));
    levels[j + 16] = static_cast<uint8_t>(MinInt(31, static_cast<int8_t>(x1 + 16.5f)));
  }
  Pack5Bit(levels, y->qs, y->qh);
}

QF_HD inline void QuantizeBlockQ5_1(const float* x, BlockQ5_1* y) {
  const int qk = kQK5_1;
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < qk; j++) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const float d = (max - min) / ((1 << 5) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  y->d = FloatToHalf(d);
  y->m = FloatToHalf(min);
  uint8_t levels[32];
  for (int j = 0; j < qk / 2; ++j) {
    const float x0 = (x[0 + j] - min) * id;
    const float x1 = (x[qk / 2 + j] - min) * id;
    levels[j] = static_cast<uint8_t>(x0 + 0.5f);
    levels[j + 16] = static_cast<uint8_t>(x1 + 0.5f);
  }
  Pack5Bit(levels, y->qs, y->qh);
}

QF_HD inline void QuantizeBlockQ8_0(const float* x, BlockQ8_0* y) {
  float amax = 0.0f;
  for (int j = 0; j < kQK8_0; j++) {
    const float v = fabsf(x[j]);
    amax = amax > v ? amax : v;
  }
  const float d = amax / ((1 << 7) - 1);
  const float id = d ? 1.0f / d : 0.0f;
  y->d = FloatToHalf(d);
  for (int j = 0; j < kQK8_0; ++j) {
    const float x0 = x[j] * id;
    y->qs[j] = static_cast<int8_t>(roundf(x0));
  }
}

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_SIMPLE_BLOCKS_H_
