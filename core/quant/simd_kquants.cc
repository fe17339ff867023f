#include "core/quant/simd_kquants.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "core/quant/half.h"
#include "core/quant/kquant_blocks.h"

// Lane-parallel versions of the reference recipes. Read them next to
// reference_kernels.cc: each statement below is the scalar statement of
// the same name, applied to eight independent groups at once.
//
// Non-inlined functions never take or return vectors by value: results go
// through pointers. (A 256-bit struct returned by value across an
// out-of-line call between target("avx2") functions lost its upper lanes
// with GCC 12.)

#define QF_AVX2 __attribute__((target("avx2"), always_inline)) inline
#define QF_AVX2_FN __attribute__((target("avx2")))

namespace quantfleet::simd {
namespace {

using ref::NearestInt;

struct F8 {
  __m256 v;
};
struct I8 {
  __m256i v;
};
struct M8 {  // a lane mask (all ones or all zeros per lane)
  __m256 v;
};

QF_AVX2 F8 Splat(float f) { return {_mm256_set1_ps(f)}; }
QF_AVX2 F8 operator+(F8 a, F8 b) { return {_mm256_add_ps(a.v, b.v)}; }
QF_AVX2 F8 operator-(F8 a, F8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
QF_AVX2 F8 operator*(F8 a, F8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
QF_AVX2 F8 operator/(F8 a, F8 b) { return {_mm256_div_ps(a.v, b.v)}; }
QF_AVX2 F8 Sqrt(F8 a) { return {_mm256_sqrt_ps(a.v)}; }
QF_AVX2 F8 Abs(F8 a) { return {_mm256_and_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))}; }
QF_AVX2 F8 Neg(F8 a) { return {_mm256_xor_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)))}; }
QF_AVX2 M8 operator<(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
QF_AVX2 M8 operator>(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
QF_AVX2 M8 operator==(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
QF_AVX2 M8 operator!=(F8 a, F8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_NEQ_UQ)}; }
QF_AVX2 M8 operator&(M8 a, M8 b) { return {_mm256_and_ps(a.v, b.v)}; }
QF_AVX2 M8 operator|(M8 a, M8 b) { return {_mm256_or_ps(a.v, b.v)}; }
// cond ? a : b, per lane.
QF_AVX2 F8 Select(M8 cond, F8 a, F8 b) { return {_mm256_blendv_ps(b.v, a.v, cond.v)}; }
QF_AVX2 I8 Select(M8 cond, I8 a, I8 b) {
  return {_mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b.v), _mm256_castsi256_ps(a.v), cond.v))};
}
QF_AVX2 bool Any(M8 m) { return _mm256_movemask_ps(m.v) != 0; }

QF_AVX2 I8 SplatI(int i) { return {_mm256_set1_epi32(i)}; }
QF_AVX2 I8 operator+(I8 a, I8 b) { return {_mm256_add_epi32(a.v, b.v)}; }
QF_AVX2 I8 Clamp(I8 a, int lo, int hi) { return {_mm256_max_epi32(SplatI(lo).v, _mm256_min_epi32(SplatI(hi).v, a.v))}; }
QF_AVX2 F8 ToF(I8 a) { return {_mm256_cvtepi32_ps(a.v)}; }
// NearestInt: round half to even through the float adder.
QF_AVX2 I8 Nearest(F8 f) {
  const __m256i bits = _mm256_castps_si256(_mm256_add_ps(f.v, _mm256_set1_ps(12582912.f)));
  return {_mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000))};
}

// Lane j of element i is x[j * stride + i].
QF_AVX2 F8 Gather(const float* x, int stride, int i) {
  const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
  return {_mm256_i32gather_ps(x + i, idx, 4)};
}

QF_AVX2 void Store(F8 a, float* out) { _mm256_storeu_ps(out, a.v); }
QF_AVX2 void Store(I8 a, int32_t* out) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), a.v); }

// MakeQkxQuants for eight 32-weight groups (qkx2 and qkx3 agree whenever
// weights are given: max == min and max <= min select the same lanes, as
// max >= min always holds). L[i] receives the levels of element i.
QF_AVX2_FN void MakeQkxLanes(int nmax, const F8* x, const F8* w, I8* L, F8* the_min, F8* scale_out, float rmin,
                             float rdelta, int nstep) {
  constexpr int n = 32;
  F8 min = x[0];
  F8 max = x[0];
  F8 sum_w = w[0];
  F8 sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = Select(x[i] < min, x[i], min);
    max = Select(x[i] > max, x[i], max);
    sum_w = sum_w + w[i];
    sum_x = sum_x + w[i] * x[i];
  }
  const F8 zero = Splat(0.f);
  min = Select(min > zero, zero, min);
  const M8 flat = max == min;
  const F8 min0 = min;
  F8 iscale = Splat(static_cast<float>(nmax)) / (max - min);
  F8 scale = Splat(1.f) / iscale;
  F8 best_error = zero;
  for (int i = 0; i < n; ++i) {
    L[i] = Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
    F8 diff = scale * ToF(L[i]) + min - x[i];
    diff = diff * diff;
    best_error = best_error + w[i] * diff;
  }
  I8 Laux[n];
  for (int is = 0; is <= nstep; ++is) {
    const float numerator = rmin + rdelta * is + nmax;
    iscale = Splat(numerator) / (max - min);
    F8 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      Laux[i] = Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
      const F8 l = ToF(Laux[i]);
      sum_l = sum_l + w[i] * l;
      sum_l2 = sum_l2 + w[i] * l * l;
      sum_xl = sum_xl + w[i] * l * x[i];
    }
    const F8 D = sum_w * sum_l2 - sum_l * sum_l;
    const M8 d_positive = D > zero;
    if (!Any(d_positive)) continue;
    F8 this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    F8 this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const M8 min_positive = this_min > zero;
    this_min = Select(min_positive, zero, this_min);
    this_scale = Select(min_positive, sum_xl / sum_l2, this_scale);
    F8 cur_error = zero;
    for (int i = 0; i < n; ++i) {
      F8 diff = this_scale * ToF(Laux[i]) + this_min - x[i];
      diff = diff * diff;
      cur_error = cur_error + w[i] * diff;
    }
    const M8 better = d_positive & (cur_error < best_error);
    if (!Any(better)) continue;
    for (int i = 0; i < n; ++i) L[i] = Select(better, Laux[i], L[i]);
    best_error = Select(better, cur_error, best_error);
    scale = Select(better, this_scale, scale);
    min = Select(better, this_min, min);
  }
  for (int i = 0; i < n; ++i) L[i] = Select(flat, SplatI(0), L[i]);
  *scale_out = Select(flat, zero, scale);
  *the_min = Neg(Select(flat, min0, min));
}

// Requantizes eight 32-weight groups with their stored scales: lane j uses
// d[j] and dm[j]; lanes with d == 0 keep their levels.
QF_AVX2_FN void RequantizeLanes(const F8* x, const float* d, const float* dm, int nmax, I8* L) {
  const F8 dv = {_mm256_loadu_ps(d)};
  const F8 dmv = {_mm256_loadu_ps(dm)};
  const M8 nonzero = dv != Splat(0.f);
  for (int i = 0; i < 32; ++i) L[i] = Select(nonzero, Clamp(Nearest((x[i] + dmv) / dv), 0, nmax), L[i]);
}

// The lanes' levels back in element order: out[32 * j + i] = lane j of L[i].
QF_AVX2_FN void UnpackLevels(const I8* L, uint8_t* out) {
  alignas(32) int32_t tmp[8];
  for (int i = 0; i < 32; ++i) {
    Store(L[i], tmp);
    for (int j = 0; j < 8; ++j) out[32 * j + i] = static_cast<uint8_t>(tmp[j]);
  }
}

// Q4_K and Q5_K super-block: eight 32-weight groups, one per lane.
template <typename Block>
QF_AVX2_FN void QuantizeScaleMinsBlock(const float* x, Block& y, int nmax, const float* qw, uint8_t* levels) {
  F8 xs[32], w[32];
  I8 L[32];
  for (int i = 0; i < 32; ++i) xs[i] = Gather(x, 32, i);
  F8 mins_v, scales_v;
  alignas(32) float mins[8], scales[8];
  if (qw) {
    float sum_x2 = 0;
    for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
    const F8 sigma2 = Splat(2 * sum_x2 / kQK_K);
    F8 sw = Splat(0.f);
    for (int i = 0; i < 32; ++i) {
      w[i] = Gather(qw, 32, i) * Sqrt(sigma2 + xs[i] * xs[i]);
      sw = sw + w[i];
    }
    MakeQkxLanes(nmax, xs, w, L, &mins_v, &scales_v, -0.9f, 0.05f, 36);
    alignas(32) float sw_arr[8];
    Store(sw, sw_arr);
    Store(mins_v, mins);
    Store(scales_v, scales);
    uint8_t Ls[8], Lm[8];
    const float d_block = ref::MakeQpQuants(8, 63, scales, Ls, sw_arr);
    const float m_block = ref::MakeQpQuants(8, 63, mins, Lm, sw_arr);
    for (int j = 0; j < 8; ++j) {
      ref::PackScaleMinK4(j, ref::Min<uint8_t>(63, Ls[j]), ref::Min<uint8_t>(63, Lm[j]), y.scales);
    }
    y.d = FloatToHalf(d_block);
    y.dmin = FloatToHalf(m_block);
  } else {
    F8 sum_x2 = Splat(0.f);
    for (int i = 0; i < 32; ++i) sum_x2 = sum_x2 + xs[i] * xs[i];
    const F8 av_x = Sqrt(sum_x2 / Splat(32.f));
    for (int i = 0; i < 32; ++i) w[i] = av_x + Abs(xs[i]);
    const float rmin = nmax == 15 ? -1.f : -0.5f;
    const int nstep = nmax == 15 ? 20 : 15;
    MakeQkxLanes(nmax, xs, w, L, &mins_v, &scales_v, rmin, 0.1f, nstep);
    Store(mins_v, mins);
    Store(scales_v, scales);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
      uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
      uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
      ref::PackScaleMinK4(j, ref::Min<uint8_t>(63, ls), ref::Min<uint8_t>(63, lm), y.scales);
    }
    y.d = FloatToHalf(max_scale / 63.f);
    y.dmin = FloatToHalf(max_min / 63.f);
  }
  alignas(32) float d[8], dm[8];
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    ref::GetScaleMinK4(j, y.scales, &sc, &m);
    d[j] = HalfToFloat(y.d) * sc;
    dm[j] = HalfToFloat(y.dmin) * m;
  }
  RequantizeLanes(xs, d, dm, nmax, L);
  UnpackLevels(L, levels);
}

// MakeQxQuants(16, 32, x, L, rmse_type 1, qw) for eight 16-weight groups.
QF_AVX2_FN void MakeQxLanesQ6(const F8* x, const F8* qw, I8* L, F8* scale_out) {
  constexpr int n = 16;
  constexpr int nmax = 32;
  const F8 zero = Splat(0.f);
  F8 max = zero, amax = zero;
  for (int i = 0; i < n; ++i) {
    const F8 ax = Abs(x[i]);
    const M8 bigger = ax > amax;
    amax = Select(bigger, ax, amax);
    max = Select(bigger, x[i], max);
  }
  const M8 flat = amax < Splat(ref::kGroupMaxEps);
  F8 w[n];
  for (int i = 0; i < n; ++i) w[i] = qw ? qw[i] : x[i] * x[i];
  F8 iscale = Splat(-static_cast<float>(nmax)) / max;
  F8 sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; ++i) {
    const I8 l = Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
    L[i] = l + SplatI(nmax);
    const F8 lf = ToF(l);
    sumlx = sumlx + w[i] * x[i] * lf;
    suml2 = suml2 + w[i] * lf * lf;
  }
  F8 scale = Select(suml2 != zero, sumlx / suml2, zero);
  F8 best = scale * sumlx;
  I8 Lt[n];
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float numerator = -(nmax + 0.1f * is);
    iscale = Splat(numerator) / max;
    sumlx = suml2 = zero;
    for (int i = 0; i < n; ++i) {
      Lt[i] = Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
      const F8 lf = ToF(Lt[i]);
      sumlx = sumlx + w[i] * x[i] * lf;
      suml2 = suml2 + w[i] * lf * lf;
    }
    const M8 better = (suml2 > zero) & (sumlx * sumlx > best * suml2);
    if (!Any(better)) continue;
    for (int i = 0; i < n; ++i) L[i] = Select(better, Lt[i] + SplatI(nmax), L[i]);
    const F8 new_scale = sumlx / suml2;
    scale = Select(better, new_scale, scale);
    best = Select(better, new_scale * sumlx, best);
  }
  for (int i = 0; i < n; ++i) L[i] = Select(flat, SplatI(0), L[i]);
  *scale_out = Select(flat, zero, scale);
}

QF_AVX2_FN void QuantizeQ6KBlock(const float* x, BlockQ6_K& y, const float* qw) {
  int8_t levels[kQK_K];
  float scales[16];
  F8 xs[2][16];
  I8 L[2][16];
  for (int half = 0; half < 2; ++half) {
    const float* xh = x + 128 * half;
    F8 w[16];
    for (int i = 0; i < 16; ++i) {
      xs[half][i] = Gather(xh, 16, i);
      if (qw) w[i] = Gather(qw + 128 * half, 16, i);
    }
    F8 group_scales;
    MakeQxLanesQ6(xs[half], qw ? w : nullptr, L[half], &group_scales);
    Store(group_scales, scales + 8 * half);
  }
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < ref::kGroupMaxEps) {
    std::memset(&y, 0, sizeof(BlockQ6_K));
    y.d = FloatToHalf(0.f);
    return;
  }
  const float iscale = -128.f / max_scale;
  y.d = FloatToHalf(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) y.scales[ib] = static_cast<int8_t>(ref::Min(127, NearestInt(iscale * scales[ib])));
  for (int half = 0; half < 2; ++half) {
    alignas(32) float d[8];
    for (int j = 0; j < 8; ++j) d[j] = HalfToFloat(y.d) * y.scales[8 * half + j];
    const F8 dv = {_mm256_loadu_ps(d)};
    const M8 nonzero = dv != Splat(0.f);
    alignas(32) int32_t tmp[8];
    for (int i = 0; i < 16; ++i) {
      const I8 l = Clamp(Nearest(xs[half][i] / dv), -32, 31) + SplatI(32);
      Store(Select(nonzero, l, L[half][i]), tmp);
      for (int j = 0; j < 8; ++j) levels[128 * half + 16 * j + i] = static_cast<int8_t>(tmp[j]);
    }
  }
  uint8_t* ql = y.ql;
  uint8_t* qh = y.qh;
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = levels[j + l + 0] & 0xF;
      const uint8_t q2 = levels[j + l + 32] & 0xF;
      const uint8_t q3 = levels[j + l + 64] & 0xF;
      const uint8_t q4 = levels[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((levels[j + l] >> 4) | ((levels[j + l + 32] >> 4) << 2) |
                                   ((levels[j + l + 64] >> 4) << 4) | ((levels[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

// BestIndexInt8 over the IQ4 levels: the binary search ends at the mu with
// levels[mu-1] <= x < levels[mu], which counting comparisons finds too.
QF_AVX2 I8 BestIndexIQ4(F8 x) {
  alignas(32) static const float kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                1,    13,   25,  38,  53,  69,  89,  113};
  I8 mu = SplatI(1);
  for (int k = 1; k < 15; ++k) {
    const M8 at_or_above = {_mm256_cmp_ps(x.v, _mm256_set1_ps(kLevels[k]), _CMP_NLT_UQ)};  // !(x < v)
    mu = Select(at_or_above, mu + SplatI(1), mu);
  }
  const I8 below = {_mm256_sub_epi32(mu.v, SplatI(1).v)};
  const F8 lo = {_mm256_i32gather_ps(kLevels, below.v, 4)};
  const F8 hi = {_mm256_i32gather_ps(kLevels, mu.v, 4)};
  I8 idx = Select((x - lo) < (hi - x), below, mu);
  idx = Select((x > Splat(kLevels[15])) | (x == Splat(kLevels[15])), SplatI(15), idx);
  idx = Select((x < Splat(kLevels[0])) | (x == Splat(kLevels[0])), SplatI(0), idx);
  return idx;
}

QF_AVX2 F8 LevelValue(I8 idx) {
  alignas(32) static const float kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                1,    13,   25,  38,  53,  69,  89,  113};
  return {_mm256_i32gather_ps(kLevels, idx.v, 4)};
}

// The per-group search of the IQ4 recipe (ntry 7) for eight 32-weight
// groups; returns each group's scale.
QF_AVX2_FN void SearchIQ4Scales(const F8* x, const F8* w, F8* scale_out) {
  constexpr int kTry = 7;
  const F8 zero = Splat(0.f);
  F8 amax = zero, max = zero;
  for (int j = 0; j < 32; ++j) {
    const F8 ax = Abs(x[j]);
    const M8 bigger = ax > amax;
    amax = Select(bigger, ax, amax);
    max = Select(bigger, x[j], max);
  }
  const M8 flat = amax < Splat(ref::kGroupMaxEps);
  F8 d = Neg(max) / Splat(static_cast<float>(kIQ4NLValues[0]));
  F8 id = Splat(1.f) / d;
  F8 sumqx = zero, sumq2 = zero;
  for (int j = 0; j < 32; ++j) {
    const F8 q = LevelValue(BestIndexIQ4(id * x[j]));
    sumqx = sumqx + w[j] * q * x[j];
    sumq2 = sumq2 + w[j] * q * q;
  }
  d = Select(sumq2 > zero, sumqx / sumq2, zero);
  F8 best = d * sumqx;
  for (int itry = -kTry; itry <= kTry; ++itry) {
    id = Splat(static_cast<float>(itry + kIQ4NLValues[0])) / max;
    sumqx = sumq2 = zero;
    for (int j = 0; j < 32; ++j) {
      const F8 q = LevelValue(BestIndexIQ4(id * x[j]));
      sumqx = sumqx + w[j] * q * x[j];
      sumq2 = sumq2 + w[j] * q * q;
    }
    const M8 better = (sumq2 > zero) & (sumqx * sumqx > best * sumq2);
    const F8 new_d = sumqx / sumq2;
    d = Select(better, new_d, d);
    best = Select(better, new_d * sumqx, best);
  }
  *scale_out = Select(flat, zero, d);
}

QF_AVX2_FN void QuantizeIQ4XSBlock(const float* x, BlockIQ4_XS& y, const float* qw) {
  F8 xs[32], w[32];
  float sigma2 = 0;
  for (int j = 0; j < kQK_K; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / kQK_K;
  for (int j = 0; j < 32; ++j) {
    xs[j] = Gather(x, 32, j);
    w[j] = qw ? Gather(qw, 32, j) * Sqrt(Splat(sigma2) + xs[j] * xs[j]) : xs[j] * xs[j];
  }
  F8 group_scales;
  SearchIQ4Scales(xs, w, &group_scales);
  alignas(32) float scales[8];
  Store(group_scales, scales);
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float abs_d = std::fabs(scales[ib]);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = scales[ib];
    }
  }
  std::memset(y.qs, 0, sizeof(y.qs));
  y.scales_h = 0;
  const float d = -max_scale / 32;
  y.d = FloatToHalf(d);
  const float id = d ? 1 / d : 0.f;
  alignas(32) float idl[8];
  for (int ib = 0; ib < 8; ++ib) {
    int l = NearestInt(id * scales[ib]);
    l = ref::Max(-32, ref::Min(31, l));
    const float dl = d * l;
    idl[ib] = dl ? 1 / dl : 0.f;
    l += 32;
    const uint8_t l_l = l & 0xf;
    const uint8_t l_h = static_cast<uint8_t>(l >> 4);
    if (ib % 2 == 0) {
      y.scales_l[ib / 2] = l_l;
    } else {
      y.scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
    }
    y.scales_h |= static_cast<uint16_t>(l_h << 2 * (ib % 8));
  }
  const F8 idlv = {_mm256_loadu_ps(idl)};
  I8 L[32];
  for (int j = 0; j < 32; ++j) L[j] = BestIndexIQ4(idlv * xs[j]);
  uint8_t levels[kQK_K];
  UnpackLevels(L, levels);
  for (int i = 0; i < kQK_K / 32; ++i) {
    for (int j = 0; j < 16; ++j) {
      y.qs[16 * i + j] = static_cast<uint8_t>(levels[32 * i + j] | (levels[32 * i + 16 + j] << 4));
    }
  }
}

// IQ4_NL: eight consecutive 32-weight blocks of a row, one per lane (each
// block is its own super-block, so its statistics are its own).
QF_AVX2_FN void QuantizeIQ4NLBlocks(const float* x, BlockIQ4_NL* y, const float* qw) {
  F8 xs[32], w[32];
  alignas(32) float sigma2[8];
  for (int b = 0; b < 8; ++b) {
    float s = 0;
    for (int j = 0; j < 32; ++j) s += x[32 * b + j] * x[32 * b + j];
    sigma2[b] = s * (2.f / 32);
  }
  const F8 sigma2v = {_mm256_loadu_ps(sigma2)};
  for (int j = 0; j < 32; ++j) {
    xs[j] = Gather(x, 32, j);
    w[j] = qw ? Gather(qw, 32, j) * Sqrt(sigma2v + xs[j] * xs[j]) : xs[j] * xs[j];
  }
  F8 scale;
  SearchIQ4Scales(xs, w, &scale);
  alignas(32) float scales[8];
  Store(scale, scales);
  const F8 id = Select(scale != Splat(0.f), Splat(1.f) / scale, Splat(0.f));
  I8 L[32];
  for (int j = 0; j < 32; ++j) L[j] = BestIndexIQ4(id * xs[j]);
  uint8_t levels[kQK_K];
  UnpackLevels(L, levels);
  for (int b = 0; b < 8; ++b) {
    y[b].d = FloatToHalf(scales[b]);
    for (int j = 0; j < 16; ++j) {
      y[b].qs[j] = static_cast<uint8_t>(levels[32 * b + j] | (levels[32 * b + 16 + j] << 4));
    }
  }
}

}  // namespace

QF_AVX2_FN void QuantizeRowIQ4_XS(const float* x, BlockIQ4_XS* y, int64_t n_per_row, const float* qw) {
  for (int64_t i = 0; i < n_per_row / kQK_K; ++i)
    QuantizeIQ4XSBlock(x + kQK_K * i, y[i], qw ? qw + kQK_K * i : nullptr);
}

// Rows whose block count is not a multiple of eight finish on the
// reference recipe (declared in reference_kernels.h via QuantizeRows).
QF_AVX2_FN int64_t QuantizeRowIQ4_NLPrefix(const float* x, BlockIQ4_NL* y, int64_t n_per_row, const float* qw) {
  const int64_t nblocks = n_per_row / kQK4_NL;
  int64_t b = 0;
  for (; b + 8 <= nblocks; b += 8) {
    QuantizeIQ4NLBlocks(x + kQK4_NL * b, y + b, qw ? qw + kQK4_NL * b : nullptr);
  }
  return b;
}

bool HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}

QF_AVX2_FN void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, int64_t n_per_row, const float* qw) {
  uint8_t levels[kQK_K];
  for (int64_t i = 0; i < n_per_row / kQK_K; ++i) {
    QuantizeScaleMinsBlock(x + kQK_K * i, y[i], 15, qw ? qw + kQK_K * i : nullptr, levels);
    ref::PackQ4K(levels, y[i]);
  }
}

QF_AVX2_FN void QuantizeRowQ5_K(const float* x, BlockQ5_K* y, int64_t n_per_row, const float* qw) {
  uint8_t levels[kQK_K];
  for (int64_t i = 0; i < n_per_row / kQK_K; ++i) {
    QuantizeScaleMinsBlock(x + kQK_K * i, y[i], 31, qw ? qw + kQK_K * i : nullptr, levels);
    ref::PackQ5K(levels, y[i]);
  }
}

QF_AVX2_FN void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, int64_t n_per_row, const float* qw) {
  for (int64_t i = 0; i < n_per_row / kQK_K; ++i) QuantizeQ6KBlock(x + kQK_K * i, y[i], qw ? qw + kQK_K * i : nullptr);
}

}  // namespace quantfleet::simd
