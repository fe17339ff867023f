#include "core/quant/reference_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/quant/blocks.h"
#include "core/quant/half.h"
#include "core/quant/kquant_blocks.h"
#include "core/quant/simple_blocks.h"

// Every expression below keeps the operand order and the float/int
// conversions of ggml's reference code, because a different association
// changes a rounding and so the bytes. Comments say why, not what.

namespace quantfleet {

namespace {

using namespace ref;  // NOLINT: the recipes below are written in terms of the shared helpers

// ---------------------------------------------------------------- 32-blocks

void QuantizeQ4_0Ref(const float* x, BlockQ4_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK4_0; i++) QuantizeBlockQ4_0(x + i * kQK4_0, &y[i]);
}

void QuantizeQ4_1Ref(const float* x, BlockQ4_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK4_1; i++) QuantizeBlockQ4_1(x + i * kQK4_1, &y[i]);
}

void QuantizeQ5_0Ref(const float* x, BlockQ5_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK5_0; i++) QuantizeBlockQ5_0(x + i * kQK5_0, &y[i]);
}

void QuantizeQ5_1Ref(const float* x, BlockQ5_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK5_1; i++) QuantizeBlockQ5_1(x + i * kQK5_1, &y[i]);
}

void QuantizeQ8_0Ref(const float* x, BlockQ8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK8_0; i++) QuantizeBlockQ8_0(x + i * kQK8_0, &y[i]);
}

void QuantizeQ4_0Weighted(const float* x, BlockQ4_0* y, int64_t n_per_row, const float* qw_row, float sigma2) {
  float weight[kQK4_0];
  int8_t L[kQK4_0];
  const int64_t nb = n_per_row / kQK4_0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQK4_0 * ib;
    const float* qw = qw_row + kQK4_0 * ib;
    for (int j = 0; j < kQK4_0; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    float d = MakeQxQuants(kQK4_0, 8, xb, L, 1, weight);
    y[ib].d = FloatToHalf(d);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void QuantizeQ4_1Weighted(const float* x, BlockQ4_1* y, int64_t n_per_row, const float* qw_row, float sigma2) {
  float weight[kQK4_1];
  uint8_t L[kQK4_1], Laux[kQK4_1];
  const int64_t nb = n_per_row / kQK4_1;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQK4_1 * ib;
    const float* qw = qw_row + kQK4_1 * ib;
    for (int j = 0; j < kQK4_1; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    float min;
    float d = MakeQkxQuants(kQK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false, true);
    y[ib].d = FloatToHalf(d);
    y[ib].m = FloatToHalf(-min);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void QuantizeQ5_0Weighted(const float* x, BlockQ5_0* y, int64_t n_per_row, const float* qw_row, float sigma2) {
  float weight[kQK5_0];
  int8_t L[kQK5_0];
  const int64_t nb = n_per_row / kQK5_0;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQK5_0 * ib;
    const float* qw = qw_row + kQK5_0 * ib;
    for (int j = 0; j < kQK5_0; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    float d = MakeQxQuants(kQK5_0, 16, xb, L, 1, weight);
    y[ib].d = FloatToHalf(d);
    Pack5Bit(reinterpret_cast<const uint8_t*>(L), y[ib].qs, y[ib].qh);
  }
}

void QuantizeQ5_1Weighted(const float* x, BlockQ5_1* y, int64_t n_per_row, const float* qw_row, float sigma2) {
  float weight[kQK5_1];
  uint8_t L[kQK5_1], Laux[kQK5_1];
  const int64_t nb = n_per_row / kQK5_1;
  for (int64_t ib = 0; ib < nb; ++ib) {
    const float* xb = x + kQK5_1 * ib;
    const float* qw = qw_row + kQK5_1 * ib;
    for (int j = 0; j < kQK5_1; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    float min;
    float d = MakeQkxQuants(kQK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false, true);
    y[ib].d = FloatToHalf(d);
    y[ib].m = FloatToHalf(-min);
    Pack5Bit(L, y[ib].qs, y[ib].qh);
  }
}

// ------------------------------------------------------------ dequantize

void DequantizeQ4_0(const BlockQ4_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK4_0; i++) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kQK4_0 + j] = x0 * d;
      y[i * kQK4_0 + j + kQK4_0 / 2] = x1 * d;
    }
  }
}

void DequantizeQ4_1(const BlockQ4_1* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK4_1; i++) {
    const float d = HalfToFloat(x[i].d);
    const float m = HalfToFloat(x[i].m);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F);
      const int x1 = (x[i].qs[j] >> 4);
      y[i * kQK4_1 + j] = x0 * d + m;
      y[i * kQK4_1 + j + kQK4_1 / 2] = x1 * d + m;
    }
  }
}

template <typename Block, bool kHasMin>
void Dequantize5Bit(const Block* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / 32; i++) {
    const float d = HalfToFloat(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>(((qh >> (j + 12))) & 0x10);
      if constexpr (kHasMin) {
        const float m = HalfToFloat(x[i].m);
        const int x0 = (x[i].qs[j] & 0x0F) | xh_0;
        const int x1 = (x[i].qs[j] >> 4) | xh_1;
        y[i * 32 + j] = x0 * d + m;
        y[i * 32 + j + 16] = x1 * d + m;
      } else {
        const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
        const int32_t x1 = ((x[i].qs[j] >> 4) | xh_1) - 16;
        y[i * 32 + j] = x0 * d;
        y[i * 32 + j + 16] = x1 * d;
      }
    }
  }
}

void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK8_0; i++) {
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = x[i].qs[j] * d;
  }
}

void DequantizeQ2_K(const BlockQ2_K* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const float d = HalfToFloat(x[i].d);
    const float min = HalfToFloat(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    float dl, ml;
    for (int n = 0; n < kQK_K; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        uint8_t sc = x[i].scales[is++];
        dl = d * (sc & 0xF);
        ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l] >> shift) & 3) - ml;
        sc = x[i].scales[is++];
        dl = d * (sc & 0xF);
        ml = min * (sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l + 16] >> shift) & 3) - ml;
        shift += 2;
      }
      q += 32;
    }
  }
}

void DequantizeQ3_K(const BlockQ3_K* x, float* y, int64_t k) {
  const uint32_t kmask1 = 0x03030303;
  const uint32_t kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  const int8_t* scales = reinterpret_cast<const int8_t*>(aux);
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const float d_all = HalfToFloat(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    std::memcpy(aux, x[i].scales, 12);
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int is = 0;
    float dl;
    for (int n = 0; n < kQK_K; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          *y++ = dl * (static_cast<int8_t>((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
        }
        dl = d_all * (scales[is++] - 32);
        for (int l = 0; l < 16; ++l) {
          *y++ = dl * (static_cast<int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
        }
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

void DequantizeQ4_K(const BlockQ4_K* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const uint8_t* q = x[i].qs;
    const float d = HalfToFloat(x[i].d);
    const float min = HalfToFloat(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < kQK_K; j += 64) {
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void DequantizeQ5_K(const BlockQ5_K* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = HalfToFloat(x[i].d);
    const float min = HalfToFloat(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < kQK_K; j += 64) {
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const float d = HalfToFloat(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQK_K; n += 128) {
      for (int l = 0; l < 32; ++l) {
        int is = l / 16;
        const int8_t q1 = static_cast<int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        const int8_t q2 = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        const int8_t q3 = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        const int8_t q4 = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void DequantizeIQ4_NL(const BlockIQ4_NL* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK4_NL; i++) {
    const uint8_t* qs = x[i].qs;
    const float d = HalfToFloat(x[i].d);
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      y[j + 0] = d * kIQ4NLValues[qs[j] & 0xf];
      y[j + kQK4_NL / 2] = d * kIQ4NLValues[qs[j] >> 4];
    }
    y += kQK4_NL;
  }
}

void DequantizeIQ4_XS(const BlockIQ4_XS* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; i++) {
    const uint8_t* qs = x[i].qs;
    const float d = HalfToFloat(x[i].d);
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j + 0] = dl * kIQ4NLValues[qs[j] & 0xf];
        y[j + 16] = dl * kIQ4NLValues[qs[j] >> 4];
      }
      y += 32;
      qs += 16;
    }
  }
}

// Applies `row_fn(src_row, dst_row)` to each row; used by the recipes whose
// statistics span a whole row.
template <typename Block, typename Fn>
void ForEachRow(const float* src, void* dst, int64_t nrows, int64_t n_per_row, size_t row_size, Fn row_fn) {
  char* qrow = static_cast<char*>(dst);
  for (int64_t row = 0; row < nrows; ++row) {
    row_fn(src, reinterpret_cast<Block*>(qrow));
    src += n_per_row;
    qrow += row_size;
  }
}

}  // namespace

float RowMeanSquare(const float* x, int64_t n) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n);
}

size_t QuantizeRowPart(GgmlType type, const float* x, void* dst, int64_t n, const float* imatrix,
                       float row_mean_square) {
  if (imatrix != nullptr) {
    switch (type) {
      case GgmlType::kQ4_0:
        QuantizeQ4_0Weighted(x, static_cast<BlockQ4_0*>(dst), n, imatrix, row_mean_square);
        return RowSize(type, n);
      case GgmlType::kQ4_1:
        QuantizeQ4_1Weighted(x, static_cast<BlockQ4_1*>(dst), n, imatrix, row_mean_square);
        return RowSize(type, n);
      case GgmlType::kQ5_0:
        QuantizeQ5_0Weighted(x, static_cast<BlockQ5_0*>(dst), n, imatrix, row_mean_square);
        return RowSize(type, n);
      case GgmlType::kQ5_1:
        QuantizeQ5_1Weighted(x, static_cast<BlockQ5_1*>(dst), n, imatrix, row_mean_square);
        return RowSize(type, n);
      default:
        break;
    }
  }
  return QuantizeRows(type, x, dst, 1, n, imatrix);  // every other recipe sees a block at a time
}

size_t QuantizeRows(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  const size_t row_size = RowSize(type, n_per_row);
  const int64_t n = nrows * n_per_row;
  const float* qw = imatrix;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case GgmlType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(src[i]);
      break;
    }
    case GgmlType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = FloatToBFloat16(src[i]);
      break;
    }
    case GgmlType::kQ8_0:
      QuantizeQ8_0Ref(src, static_cast<BlockQ8_0*>(dst), n);
      break;
    case GgmlType::kQ4_0:
      if (!qw) {
        QuantizeQ4_0Ref(src, static_cast<BlockQ4_0*>(dst), n);
      } else {
        ForEachRow<BlockQ4_0>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockQ4_0* y) {
          QuantizeQ4_0Weighted(x, y, n_per_row, qw, RowMeanSquare(x, n_per_row));
        });
      }
      break;
    case GgmlType::kQ4_1:
      if (!qw) {
        QuantizeQ4_1Ref(src, static_cast<BlockQ4_1*>(dst), n);
      } else {
        ForEachRow<BlockQ4_1>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockQ4_1* y) {
          QuantizeQ4_1Weighted(x, y, n_per_row, qw, RowMeanSquare(x, n_per_row));
        });
      }
      break;
    case GgmlType::kQ5_0:
      if (!qw) {
        QuantizeQ5_0Ref(src, static_cast<BlockQ5_0*>(dst), n);
      } else {
        ForEachRow<BlockQ5_0>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockQ5_0* y) {
          QuantizeQ5_0Weighted(x, y, n_per_row, qw, RowMeanSquare(x, n_per_row));
        });
      }
      break;
    case GgmlType::kQ5_1:
      if (!qw) {
        QuantizeQ5_1Ref(src, static_cast<BlockQ5_1*>(dst), n);
      } else {
        ForEachRow<BlockQ5_1>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockQ5_1* y) {
          QuantizeQ5_1Weighted(x, y, n_per_row, qw, RowMeanSquare(x, n_per_row));
        });
      }
      break;
    case GgmlType::kQ2_K:
      if (!qw) {
        QuantizeQ2_KRef(src, static_cast<BlockQ2_K*>(dst), n);
      } else {
        ForEachRow<BlockQ2_K>(src, dst, nrows, n_per_row, row_size,
                              [&](const float* x, BlockQ2_K* y) { QuantizeQ2_KWeighted(x, y, n_per_row, qw); });
      }
      break;
    case GgmlType::kQ3_K:
      if (!qw) {
        QuantizeQ3_KRef(src, static_cast<BlockQ3_K*>(dst), n);
      } else {
        ForEachRow<BlockQ3_K>(src, dst, nrows, n_per_row, row_size,
                              [&](const float* x, BlockQ3_K* y) { QuantizeQ3_KWeighted(x, y, n_per_row, qw); });
      }
      break;
    case GgmlType::kQ4_K:
      ForEachRow<BlockQ4_K>(src, dst, nrows, n_per_row, row_size,
                            [&](const float* x, BlockQ4_K* y) { QuantizeQ4_K(x, y, n_per_row, qw); });
      break;
    case GgmlType::kQ5_K:
      ForEachRow<BlockQ5_K>(src, dst, nrows, n_per_row, row_size,
                            [&](const float* x, BlockQ5_K* y) { QuantizeQ5_K(x, y, n_per_row, qw); });
      break;
    case GgmlType::kQ6_K:
      ForEachRow<BlockQ6_K>(src, dst, nrows, n_per_row, row_size,
                            [&](const float* x, BlockQ6_K* y) { QuantizeQ6_K(x, y, n_per_row, qw); });
      break;
    case GgmlType::kIQ4_NL:
      ForEachRow<BlockIQ4_NL>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockIQ4_NL* y) {
        // The reference path (no weights) and the quantize path share one
        // recipe in ggml's quantize_iq4_nl: always 7 refinement tries.
        for (int64_t ib = 0; ib < n_per_row / kQK4_NL; ++ib) {
          QuantizeIQ4Block(kQK4_NL, x + kQK4_NL * ib, &y[ib].d, y[ib].qs, nullptr, nullptr,
                           qw ? qw + kQK4_NL * ib : nullptr, 7);
        }
      });
      break;
    case GgmlType::kIQ4_XS:
      ForEachRow<BlockIQ4_XS>(src, dst, nrows, n_per_row, row_size, [&](const float* x, BlockIQ4_XS* y) {
        for (int64_t ib = 0; ib < n_per_row / kQK_K; ++ib) {
          QuantizeIQ4Block(kQK_K, x + kQK_K * ib, &y[ib].d, y[ib].qs, &y[ib].scales_h, y[ib].scales_l,
                           qw ? qw + kQK_K * ib : nullptr, 7);
        }
      });
      break;
    default:
      return 0;
  }
  return static_cast<size_t>(nrows) * row_size;
}

bool CanDequantize(GgmlType type) { return IsSupportedTargetType(type); }

void DequantizeToFloat(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      break;
    case GgmlType::kF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = HalfToFloat(in[i]);
      break;
    }
    case GgmlType::kBF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16ToFloat(in[i]);
      break;
    }
    case GgmlType::kQ4_0:
      DequantizeQ4_0(static_cast<const BlockQ4_0*>(src), dst, n);
      break;
    case GgmlType::kQ4_1:
      DequantizeQ4_1(static_cast<const BlockQ4_1*>(src), dst, n);
      break;
    case GgmlType::kQ5_0:
      Dequantize5Bit<BlockQ5_0, false>(static_cast<const BlockQ5_0*>(src), dst, n);
      break;
    case GgmlType::kQ5_1:
      Dequantize5Bit<BlockQ5_1, true>(static_cast<const BlockQ5_1*>(src), dst, n);
      break;
    case GgmlType::kQ8_0:
      DequantizeQ8_0(static_cast<const BlockQ8_0*>(src), dst, n);
      break;
    case GgmlType::kQ2_K:
      DequantizeQ2_K(static_cast<const BlockQ2_K*>(src), dst, n);
      break;
    case GgmlType::kQ3_K:
      DequantizeQ3_K(static_cast<const BlockQ3_K*>(src), dst, n);
      break;
    case GgmlType::kQ4_K:
      DequantizeQ4_K(static_cast<const BlockQ4_K*>(src), dst, n);
      break;
    case GgmlType::kQ5_K:
      DequantizeQ5_K(static_cast<const BlockQ5_K*>(src), dst, n);
      break;
    case GgmlType::kQ6_K:
      DequantizeQ6_K(static_cast<const BlockQ6_K*>(src), dst, n);
      break;
    case GgmlType::kIQ4_NL:
      DequantizeIQ4_NL(static_cast<const BlockIQ4_NL*>(src), dst, n);
      break;
    case GgmlType::kIQ4_XS:
      DequantizeIQ4_XS(static_cast<const BlockIQ4_XS*>(src), dst, n);
      break;
    default:
      break;
  }
}

}  // namespace quantfleet
