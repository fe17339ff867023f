// GPTQ onto a ggml type's grid. See gptq_ggml.h.
#include "core/calibration/gptq_ggml.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "core/quant/block_levels.h"
#include "core/quant/quantize_rows.h"
#include "core/quant/reference_kernels.h"

namespace quantfleet {

GgmlGridQuantizer::GgmlGridQuantizer(GgmlType type, const float* w, int64_t rows, int64_t columns, const float* imatrix,
                                     bool static_groups)
    : type_(type),
      rows_(rows),
      columns_(columns),
      block_size_(BlockSize(type)),
      row_bytes_(RowSize(type, columns)),
      imatrix_(imatrix),
      bytes_(static_cast<size_t>(rows) * row_bytes_),
      row_mean_square_(static_cast<size_t>(rows)),
      scale_(static_groups ? 0 : static_cast<size_t>(rows * block_size_)),
      offset_(static_groups ? 0 : static_cast<size_t>(rows * block_size_)),
      seen_(static_groups ? 0 : static_cast<size_t>(rows * block_size_)),
      level_(static_groups ? 0 : static_cast<size_t>(rows * block_size_)),
      static_groups_(static_groups),
      static_scale_(static_groups ? static_cast<size_t>(rows * columns) : 0),
      static_offset_(static_groups ? static_cast<size_t>(rows * columns) : 0) {
  for (int64_t r = 0; r < rows; ++r) row_mean_square_[r] = RowMeanSquare(w + r * columns, columns);
}

uint8_t* GgmlGridQuantizer::Block(int64_t row, int64_t first_column) {
  return bytes_.data() + static_cast<size_t>(row) * row_bytes_ +
         static_cast<size_t>(first_column / block_size_) * TypeSize(type_);
}

void GgmlGridQuantizer::BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) {
  (void)count;  // always one block: the solver runs with group = block size
  group_first_ = first;
  std::vector<float> x(static_cast<size_t>(block_size_));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < block_size_; ++c) x[c] = static_cast<float>(w[r * stride + c]);
    uint8_t* block = Block(r, first);
    QuantizeRowPartFast(type_, x.data(), block, block_size_, imatrix_ != nullptr ? imatrix_ + first : nullptr,
                        row_mean_square_[r]);
    const BlockAffine a = AffineOf(type_, block);
    if (static_groups_) {
      const size_t at = static_cast<size_t>(r * columns_ + first);
      std::copy(a.scale.begin(), a.scale.end(), static_scale_.begin() + at);
      std::copy(a.offset.begin(), a.offset.end(), static_offset_.begin() + at);
      continue;
    }
    const size_t at = static_cast<size_t>(r * block_size_);
    std::copy(a.scale.begin(), a.scale.end(), scale_.begin() + at);
    std::copy(a.offset.begin(), a.offset.end(), offset_.begin() + at);
    for (int64_t c = 0; c < block_size_; ++c) {
      seen_[at + c] = w[r * stride + c];
      level_[at + c] = GetLevel(type_, block, static_cast<int>(c));
    }
  }
}

void GgmlGridQuantizer::QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) {
  const int64_t first = static_groups_ ? column - column % block_size_ : group_first_;
  const int64_t e = column - first;
  const LevelRange range = LevelsOf(type_);
  const bool linear = HasLinearLevels(type_);
  for (int64_t r = 0; r < rows; ++r) {
    const size_t at = static_cast<size_t>(r * block_size_ + e);
    const size_t at_static = static_cast<size_t>(r * columns_ + column);
    const double a = static_groups_ ? static_scale_[at_static] : scale_[at];
    const double b = static_groups_ ? static_offset_[at_static] : offset_[at];
    int level = range.lo;
    if (!static_groups_ && w[r] == seen_[at]) {
      level = level_[at];
    } else if (a != 0 && linear) {
      const double l = std::nearbyint((w[r] - b) / a);
      level = static_cast<int>(std::fmin(std::fmax(l, range.lo), range.hi));
    } else if (a != 0) {  // a table of values: the nearest one
      double best = INFINITY;
      for (int l = range.lo; l <= range.hi; ++l) {
        const double d = std::fabs(w[r] - (a * LevelValue(type_, l) + b));
        if (d < best) {
          best = d;
          level = l;
        }
      }
    }
    q[r] = a * LevelValue(type_, level) + b;
    SetLevel(type_, Block(r, first), static_cast<int>(e), level);
  }
}

absl::StatusOr<std::vector<uint8_t>> GptqQuantizeRows(GgmlType type, const float* w, int64_t rows, int64_t columns,
                                                      std::vector<double> hessian, const float* imatrix,
                                                      GptqOptions options) {
  if (!HasBlockLevels(type)) {
    return absl::InvalidArgumentError(absl::StrFormat("GPTQ has no grid for %s", TypeName(type)));
  }
  if (columns % BlockSize(type) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("GPTQ to %s: rows of %d values are not whole blocks of %d",
                                                      TypeName(type), columns, BlockSize(type)));
  }
  GgmlGridQuantizer grid(type, w, rows, columns, imatrix, options.act_order);
  options.group = BlockSize(type);
  const std::vector<double> weights(w, w + rows * columns);
  absl::StatusOr<GptqResult> solved = SolveGptq(weights, rows, columns, std::move(hessian), grid, options);
  if (!solved.ok()) return solved.status();
  return grid.bytes();
}

}  // namespace quantfleet
