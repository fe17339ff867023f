// The reference K-quant and IQ4 recipes, one super-block at a time (their
// building blocks are in kquant_levels.h), written once for the CPU and
// CUDA devices (QF_HD): both run these statements in this order and so
// give ggml's bits. Compile
// with no fused multiply-add (-ffp-contract=off, nvcc -fmad=false) and IEEE
// division and square root. reference_kernels.cc loops them over rows; the
// GPU kernels run one super-block per thread.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_KQUANT_BLOCKS_H_
#define QUANTFLEET_CORE_QUANT_KQUANT_BLOCKS_H_

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/quant/blocks.h"
#include "core/quant/half.h"
#include "core/quant/kquant_levels.h"
#include "core/quant/portable.h"

// Every expression keeps the operand order and the float/int conversions
// of ggml's reference code, because a different association changes a
// rounding and so the bytes.

namespace quantfleet {
namespace ref {

// ------------------------------------------------------------------ Q2_K

QF_HD inline void QuantizeQ2_KRef(const float* x, BlockQ2_K* y, int64_t k) {
  const int64_t nb = k / kQK_K;
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  const float q4scale = 15.f;
  for (int64_t i = 0; i < nb; i++) {
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
      scales[j] = MakeQkxQuants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true, false);
      float scale = scales[j];
      if (scale > max_scale) max_scale = scale;
      float min = mins[j];
      if (min > max_min) max_min = min;
    }
    if (max_scale > 0) {
      float iscale = q4scale / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        int l = NearestInt(iscale * scales[j]);
        y[i].scales[j] = static_cast<uint8_t>(l);
      }
      y[i].d = FloatToHalf(max_scale / q4scale);
    } else {
      for (int j = 0; j < kQK_K / 16; ++j) y[i].scales[j] = 0;
      y[i].d = FloatToHalf(0.f);
    }
    if (max_min > 0) {
      float iscale = q4scale / max_min;
      for (int j = 0; j < kQK_K / 16; ++j) {
        int l = NearestInt(iscale * mins[j]);
        y[i].scales[j] |= static_cast<uint8_t>(l << 4);
      }
      y[i].dmin = FloatToHalf(max_min / q4scale);
    } else {
      y[i].dmin = FloatToHalf(0.f);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = HalfToFloat(y[i].d) * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float dm = HalfToFloat(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt((x[16 * j + ii] + dm) / d);
        l = Max(0, Min(3, l));
        L[16 * j + ii] = static_cast<uint8_t>(l);
      }
    }
    Pack2Bit(L, y[i].qs);
    x += kQK_K;
  }
}

QF_HD inline void QuantizeQ2_KWeighted(const float* x, BlockQ2_K* y, int64_t n_per_row, const float* quant_weights) {
  const int64_t nb = n_per_row / kQK_K;
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  float sw[kQK_K / 16];
  float weight[16];
  uint8_t Ls[kQK_K / 16], Lm[kQK_K / 16];
  for (int64_t i = 0; i < nb; i++) {
    memset(sw, 0, sizeof(sw));
    float sumx2 = 0;
    for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
    float sigma2 = sumx2 / kQK_K;
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float* qw = quant_weights + kQK_K * i + 16 * j;
      for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
      for (int l = 0; l < kQK_K / 16; ++l) sw[j] += weight[l];
      scales[j] = MakeQkxQuants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false, true);
    }
    float dm = MakeQpQuants(kQK_K / 16, 15, scales, Ls, sw);
    float mm = MakeQpQuants(kQK_K / 16, 15, mins, Lm, sw);
    y[i].d = FloatToHalf(dm);
    y[i].dmin = FloatToHalf(mm);
    dm = HalfToFloat(y[i].d);
    mm = HalfToFloat(y[i].dmin);
    for (int j = 0; j < kQK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = dm * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float m = mm * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt((x[16 * j + ii] + m) / d);
        l = Max(0, Min(3, l));
        L[16 * j + ii] = static_cast<uint8_t>(l);
      }
    }
    Pack2Bit(L, y[i].qs);
    x += kQK_K;
  }
}

// ------------------------------------------------------------------ Q3_K

QF_HD inline void PackQ3Scale(int j, int l, uint8_t* scales) {
  if (j < 8) {
    scales[j] = static_cast<uint8_t>(l & 0xF);
  } else {
    scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
  }
  l >>= 4;
  scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
}

// Requantizes with the stored scales, then splits off the high bit.
QF_HD inline void FinishQ3K(const float* x, BlockQ3_K* y, int8_t* L) {
  for (int j = 0; j < kQK_K / 16; ++j) {
    int8_t sc = static_cast<int8_t>(j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4);
    sc = static_cast<int8_t>((sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    float d = HalfToFloat(y->d) * sc;
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = NearestInt(x[16 * j + ii] / d);
      l = Max(-4, Min(3, l));
      L[16 * j + ii] = static_cast<int8_t>(l + 4);
    }
  }
  memset(y->hmask, 0, kQK_K / 8);
  int m = 0;
  uint8_t hm = 1;
  for (int j = 0; j < kQK_K; ++j) {
    if (L[j] > 3) {
      y->hmask[m] |= hm;
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
    if (++m == kQK_K / 8) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  Pack2Bit(reinterpret_cast<const uint8_t*>(L), y->qs);
}

QF_HD inline void QuantizeQ3_KRef(const float* x, BlockQ3_K* y, int64_t k) {
  const int64_t nb = k / kQK_K;
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; i++) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j, true);
      float scale = fabsf(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    memset(y[i].scales, 0, 12);
    if (max_scale) {
      float iscale = -32.f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        int8_t l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
        l = static_cast<int8_t>(Max<int>(-32, Min<int>(31, l)) + 32);
        PackQ3Scale(j, l, y[i].scales);
      }
      y[i].d = FloatToHalf(1 / iscale);
    } else {
      y[i].d = FloatToHalf(0.f);
    }
    FinishQ3K(x, &y[i], L);
    x += kQK_K;
  }
}

QF_HD inline void QuantizeQ3_KWeighted(const float* x, BlockQ3_K* y, int64_t n_per_row, const float* quant_weights) {
  const int64_t nb = n_per_row / kQK_K;
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float weight[16];
  float sw[kQK_K / 16];
  int8_t Ls[kQK_K / 16];
  for (int64_t i = 0; i < nb; i++) {
    float sumx2 = 0;
    for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
    float sigma2 = 2 * sumx2 / kQK_K;
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float* qw = quant_weights + kQK_K * i + 16 * j;
      for (int l = 0; l < 16; ++l) weight[l] = qw[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
      float sumw = 0;
      for (int l = 0; l < 16; ++l) sumw += weight[l];
      sw[j] = sumw;
      scales[j] = MakeQxQuants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
    }
    memset(y[i].scales, 0, 12);
    float d_block = MakeQxQuants(kQK_K / 16, 32, scales, Ls, 1, sw);
    for (int j = 0; j < kQK_K / 16; ++j) PackQ3Scale(j, Ls[j], y[i].scales);
    y[i].d = FloatToHalf(d_block);
    FinishQ3K(x, &y[i], L);
    x += kQK_K;
  }
}

// ------------------------------------------------------- Q4_K and Q5_K

// Requantizes one super-block with its stored 6-bit scales and mins into
// levels in [0, nmax].
template <typename Block>
QF_HD inline void RequantizeWithScaleMins(const float* x, const Block& y, int nmax, uint8_t* L) {
  uint8_t sc, m;
  for (int j = 0; j < kQK_K / 32; ++j) {
    GetScaleMinK4(j, y.scales, &sc, &m);
    const float d = HalfToFloat(y.d) * sc;
    if (!d) continue;
    const float dm = HalfToFloat(y.dmin) * m;
    for (int ii = 0; ii < 32; ++ii) {
      int l = NearestInt((x[32 * j + ii] + dm) / d);
      l = Max(0, Min(nmax, l));
      L[32 * j + ii] = static_cast<uint8_t>(l);
    }
  }
}

// The weight-free recipe shared by Q4_K and Q5_K: per 32-weight group an
// affine fit, then the group scales and mins quantized to 6 bits.
template <typename Block>
QF_HD inline void QuantizeScaleMinsRef(const float* x, Block& y, int nmax, float rmin, int nstep, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
    scales[j] =
        MakeQkxQuants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false, false);
    float scale = scales[j];
    if (scale > max_scale) max_scale = scale;
    float min = mins[j];
    if (min > max_min) max_min = min;
  }
  float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls = Min<uint8_t>(63, ls);
    lm = Min<uint8_t>(63, lm);
    PackScaleMinK4(j, ls, lm, y.scales);
  }
  y.d = FloatToHalf(max_scale / 63.f);
  y.dmin = FloatToHalf(max_min / 63.f);
  RequantizeWithScaleMins(x, y, nmax, L);
}

// The importance-weighted recipe shared by Q4_K and Q5_K.
template <typename Block>
QF_HD inline void QuantizeScaleMinsWeighted(const float* x, Block& y, int nmax, const float* qw_block, uint8_t* L) {
  uint8_t Laux[32];
  uint8_t Ls[kQK_K / 32];
  uint8_t Lm[kQK_K / 32];
  float weights[32];
  float sw[kQK_K / 32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  float sigma2 = 2 * sum_x2 / kQK_K;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float* qw = qw_block + 32 * j;
    for (int l = 0; l < 32; ++l) weights[l] = qw[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = MakeQkxQuants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false, true);
  }
  float d_block = MakeQpQuants(kQK_K / 32, 63, scales, Ls, sw);
  float m_block = MakeQpQuants(kQK_K / 32, 63, mins, Lm, sw);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t ls = Min<uint8_t>(63, Ls[j]);
    uint8_t lm = Min<uint8_t>(63, Lm[j]);
    PackScaleMinK4(j, ls, lm, y.scales);
  }
  y.d = FloatToHalf(d_block);
  y.dmin = FloatToHalf(m_block);
  RequantizeWithScaleMins(x, y, nmax, L);
}

QF_HD inline void QuantizeQ4_K(const float* x, BlockQ4_K* y, int64_t n, const float* quant_weights) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    if (quant_weights) {
      QuantizeScaleMinsWeighted(x, y[i], 15, quant_weights + kQK_K * i, L);
    } else {
      QuantizeScaleMinsRef(x, y[i], 15, -1.f, 20, L);
    }
    PackQ4K(L, y[i]);
  }
}

QF_HD inline void QuantizeQ5_K(const float* x, BlockQ5_K* y, int64_t n, const float* quant_weights) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    if (quant_weights) {
      QuantizeScaleMinsWeighted(x, y[i], 31, quant_weights + kQK_K * i, L);
    } else {
      QuantizeScaleMinsRef(x, y[i], 31, -0.5f, 15, L);
    }
    PackQ5K(L, y[i]);
  }
}

// ------------------------------------------------------------------ Q6_K

QF_HD inline void QuantizeQ6_K(const float* x, BlockQ6_K* y, int64_t n, const float* quant_weights) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < n / kQK_K; i++) {
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float* qw = quant_weights ? quant_weights + kQK_K * i + 16 * ib : nullptr;
      const float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
      scales[ib] = scale;
      const float abs_scale = fabsf(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      memset(&y[i], 0, sizeof(BlockQ6_K));
      y[i].d = FloatToHalf(0.f);
      x += kQK_K;
      continue;
    }
    float iscale = -128.f / max_scale;
    y[i].d = FloatToHalf(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      y[i].scales[ib] = static_cast<int8_t>(Min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      float d = HalfToFloat(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(x[16 * j + ii] / d);
        l = Max(-32, Min(31, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF;
        const uint8_t q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF;
        const uint8_t q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                     ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
    x += kQK_K;
  }
}

// ------------------------------------------------------ IQ4_NL and IQ4_XS

QF_HD inline int BestIndexInt8(int n, const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  int ml = 0, mu = n - 1;
  while (mu - ml > 1) {
    int mav = (ml + mu) / 2;
    if (x < val[mav])
      mu = mav;
    else
      ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// One IQ4 super-block of `super_block_size` weights in 32-weight groups.
// With one group (IQ4_NL) the scale is stored directly; with eight (IQ4_XS)
// the group scales are 6-bit multiples of one half-precision scale.
QF_HD inline void QuantizeIQ4Block(int super_block_size, const float* x, half_bits* dh, uint8_t* q4, uint16_t* scales_h,
                                   uint8_t* scales_l, const float* quant_weights, int ntry) {
  constexpr int kBlock = 32;
  const int8_t values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  float scales[kQK_K / 32];
  float weight[kBlock];
  uint8_t L[kQK_K];
  float sigma2 = 0;
  for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / super_block_size;
  memset(q4, 0, super_block_size / 2);
  dh[0] = FloatToHalf(0.f);
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < super_block_size / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* Lb = L + ib * kBlock;
    if (quant_weights) {
      const float* qw = quant_weights + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
    } else {
      for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    }
    const float max = LargestMagnitude(xb, kBlock);
    const float amax = fabsf(max);
    if (amax < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = ntry > 0 ? -max / values[0] : max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      float al = id * xb[j];
      int l = BestIndexInt8(16, values, al);
      Lb[j] = static_cast<uint8_t>(l);
      float q = values[l];
      float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        float al = id * xb[j];
        int l = BestIndexInt8(16, values, al);
        float q = values[l];
        float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    float abs_d = fabsf(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }
  if (super_block_size / kBlock > 1) {
    int nb = super_block_size / kBlock;
    memset(scales_h, 0, ((nb + 7) / 8) * sizeof(uint16_t));
    float d = -max_scale / 32;
    dh[0] = FloatToHalf(d);
    float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < super_block_size / kBlock; ++ib) {
      int l = NearestInt(id * scales[ib]);
      l = Max(-32, Min(31, l));
      float dl = d * l;
      float idl = dl ? 1 / dl : 0.f;
      uint8_t* Lb = L + ib * kBlock;
      const float* xb = x + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) Lb[j] = static_cast<uint8_t>(BestIndexInt8(16, values, idl * xb[j]));
      l += 32;
      uint8_t l_l = l & 0xf;
      uint8_t l_h = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) {
        scales_l[ib / 2] = l_l;
      } else {
        scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
      }
      scales_h[ib / 8] |= static_cast<uint16_t>(l_h << 2 * (ib % 8));
    }
  } else {
    dh[0] = FloatToHalf(scales[0]);
    if (ntry > 0) {
      float id = scales[0] ? 1 / scales[0] : 0;
      for (int j = 0; j < super_block_size; ++j) L[j] = static_cast<uint8_t>(BestIndexInt8(16, values, id * x[j]));
    }
  }
  for (int i = 0; i < super_block_size / 32; ++i) {
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

}  // namespace ref
}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_KQUANT_BLOCKS_H_
