#include "core/quant/quantize_rows.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/quant/blocks.h"
#include "core/quant/reference_kernels.h"
#include "core/quant/simd_kquants.h"

namespace quantfleet {
namespace {

bool ReferenceForced() {
  static const bool forced = [] {
    const char* v = std::getenv("QUANTFLEET_REFERENCE_KERNELS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return forced;
}

template <typename Block, typename RowFn>
size_t ForRows(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix, RowFn fn) {
  auto* out = static_cast<Block*>(dst);
  const int64_t blocks_per_row = n_per_row / kQK_K;
  for (int64_t r = 0; r < nrows; ++r) fn(src + r * n_per_row, out + r * blocks_per_row, n_per_row, imatrix);
  return static_cast<size_t>(nrows * blocks_per_row) * sizeof(Block);
}

}  // namespace

bool HasFastPath(GgmlType type) {
  if (ReferenceForced() || !simd::HaveAvx2()) return false;
  return type == GgmlType::kQ4_K || type == GgmlType::kQ5_K || type == GgmlType::kQ6_K || type == GgmlType::kIQ4_XS ||
         type == GgmlType::kIQ4_NL;
}

size_t QuantizeRowPartFast(GgmlType type, const float* x, void* dst, int64_t n, const float* imatrix,
                           float row_mean_square) {
  if (HasFastPath(type)) return QuantizeRowsFast(type, x, dst, 1, n, imatrix);
  return QuantizeRowPart(type, x, dst, n, imatrix, row_mean_square);
}

size_t QuantizeRowsFast(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                        const float* imatrix) {
  if (HasFastPath(type)) {
    switch (type) {
      case GgmlType::kQ4_K:
        return ForRows<BlockQ4_K>(src, dst, nrows, n_per_row, imatrix, simd::QuantizeRowQ4_K);
      case GgmlType::kQ5_K:
        return ForRows<BlockQ5_K>(src, dst, nrows, n_per_row, imatrix, simd::QuantizeRowQ5_K);
      case GgmlType::kQ6_K:
        return ForRows<BlockQ6_K>(src, dst, nrows, n_per_row, imatrix, simd::QuantizeRowQ6_K);
      case GgmlType::kIQ4_XS:
        return ForRows<BlockIQ4_XS>(src, dst, nrows, n_per_row, imatrix, simd::QuantizeRowIQ4_XS);
      case GgmlType::kIQ4_NL: {
        // Blocks are independent: eight at a time in lanes, the rest of each
        // row by the reference.
        auto* out = static_cast<BlockIQ4_NL*>(dst);
        const int64_t blocks = n_per_row / kQK4_NL;
        for (int64_t r = 0; r < nrows; ++r) {
          const float* x = src + r * n_per_row;
          BlockIQ4_NL* y = out + r * blocks;
          const int64_t done = simd::QuantizeRowIQ4_NLPrefix(x, y, n_per_row, imatrix);
          if (done < blocks) {
            QuantizeRows(type, x + done * kQK4_NL, y + done, 1, (blocks - done) * kQK4_NL,
                         imatrix ? imatrix + done * kQK4_NL : nullptr);
          }
        }
        return static_cast<size_t>(nrows * blocks) * sizeof(BlockIQ4_NL);
      }
      default:
        break;
    }
  }
  return QuantizeRows(type, src, dst, nrows, n_per_row, imatrix);
}

size_t ConvertRows(GgmlType src_type, const void* src, GgmlType dst_type, void* dst, int64_t nrows, int64_t n_per_row,
                   const float* imatrix, std::vector<float>* scratch) {
  constexpr int64_t kSliceFloats = 64 << 10;
  const size_t src_row = RowSize(src_type, n_per_row);
  const size_t dst_row = RowSize(dst_type, n_per_row);
  const int64_t slice = std::max<int64_t>(1, kSliceFloats / std::max<int64_t>(1, n_per_row));
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  size_t written = 0;
  for (int64_t r = 0; r < nrows; r += slice) {
    const int64_t n = std::min(slice, nrows - r);
    const uint8_t* rows_in = in + static_cast<size_t>(r) * src_row;
    const float* rows;
    if (src_type == GgmlType::kF32) {
      rows = reinterpret_cast<const float*>(rows_in);
    } else {
      if (scratch->size() < static_cast<size_t>(n * n_per_row)) scratch->resize(static_cast<size_t>(n * n_per_row));
      DequantizeToFloat(src_type, rows_in, scratch->data(), n * n_per_row);
      rows = scratch->data();
    }
    written += QuantizeRowsFast(dst_type, rows, out + static_cast<size_t>(r) * dst_row, n, n_per_row, imatrix);
  }
  return written;
}

}  // namespace quantfleet
