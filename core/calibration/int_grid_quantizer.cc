#include "core/calibration/int_grid_quantizer.h"

#include <algorithm>
#include <cmath>

#include "core/quant/half.h"

namespace quantfleet {
namespace {

// The F16 a scale is stored as, never zero (2^-24 at least).
float StoredScale(float scale) {
  const float stored = HalfToFloat(FloatToHalf(scale));
  return stored > 0 ? stored : HalfToFloat(1);
}

}  // namespace

IntGrid RoundToAwqGrid(const float* w, int64_t rows, int64_t columns, int64_t group, int bits,
                       std::vector<float>* back) {
  IntGrid g;
  g.rows = rows;
  g.columns = columns;
  g.group_size = group > 0 ? group : columns;
  g.groups = (columns + g.group_size - 1) / g.group_size;
  g.codes.resize(static_cast<size_t>(rows * columns));
  g.scales.resize(static_cast<size_t>(rows * g.groups));
  g.zeros.resize(static_cast<size_t>(rows * g.groups));
  if (back != nullptr) back->resize(static_cast<size_t>(rows * columns));
  const int max_code = (1 << bits) - 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < g.groups; ++k) {
      const int64_t first = k * g.group_size, last = std::min(columns, first + g.group_size);
      float lo = w[r * columns + first], hi = lo;
      for (int64_t j = first; j < last; ++j) {
        lo = std::min(lo, w[r * columns + j]);
        hi = std::max(hi, w[r * columns + j]);
      }
      const float scale = StoredScale(std::max(hi - lo, 1e-5f) / static_cast<float>(max_code));
      const int32_t zero = std::clamp(static_cast<int32_t>(-std::nearbyint(lo / scale)), 0, max_code);
      g.scales[static_cast<size_t>(r * g.groups + k)] = scale;
      g.zeros[static_cast<size_t>(r * g.groups + k)] = zero;
      for (int64_t j = first; j < last; ++j) {
        const float code =
            std::clamp(std::nearbyint(w[r * columns + j] / scale) + zero, 0.0f, static_cast<float>(max_code));
        g.codes[static_cast<size_t>(r * columns + j)] = static_cast<uint8_t>(code);
        if (back != nullptr) {
          (*back)[static_cast<size_t>(r * columns + j)] =
              static_cast<float>(static_cast<double>(scale) * (code - zero));
        }
      }
    }
  }
  return g;
}

IntGridQuantizer::IntGridQuantizer(int bits, bool symmetric, int64_t rows, int64_t columns, int64_t group)
    : max_code_((1 << bits) - 1),
      symmetric_(symmetric),
      rows_(rows),
      columns_(columns),
      group_(group > 0 ? group : columns),
      groups_((columns + group_ - 1) / group_),
      codes_(static_cast<size_t>(rows * columns), 0),
      scales_(static_cast<size_t>(rows * groups_), 0.f),
      zeros_(static_cast<size_t>(rows * groups_), 0) {}

void IntGridQuantizer::BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) {
  const int64_t g = first / group_;
  for (int64_t r = 0; r < rows; ++r) {
    double lo = 0, hi = 0;
    for (int64_t j = 0; j < count; ++j) {
      lo = std::min(lo, w[r * stride + j]);
      hi = std::max(hi, w[r * stride + j]);
    }
    if (symmetric_) {
      hi = std::max(-lo, hi);
      if (lo < 0) lo = -hi;
    }
    if (lo == 0 && hi == 0) lo = -1, hi = 1;
    // Computed in float, as the reference does on the GPU, then kept as the
    // F16 the file stores (never zero: the smallest F16 step at least).
    const float scale = static_cast<float>((hi - lo) / max_code_);
    const float stored = StoredScale(scale);
    const int32_t zero =
        symmetric_ ? (max_code_ + 1) / 2 : static_cast<int32_t>(std::nearbyint(static_cast<float>(-lo) / scale));
    scales_[static_cast<size_t>(r * groups_ + g)] = stored;
    zeros_[static_cast<size_t>(r * groups_ + g)] = std::clamp(zero, 0, max_code_);
  }
}

void IntGridQuantizer::QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) {
  const int64_t g = column / group_;
  for (int64_t r = 0; r < rows; ++r) {
    const double scale = scales_[static_cast<size_t>(r * groups_ + g)];
    const int32_t zero = zeros_[static_cast<size_t>(r * groups_ + g)];
    const double code = std::clamp(std::nearbyint(w[r] / scale) + zero, 0.0, static_cast<double>(max_code_));
    codes_[static_cast<size_t>(r * columns_ + column)] = static_cast<uint8_t>(code);
    q[r] = scale * (code - zero);
  }
}

}  // namespace quantfleet
