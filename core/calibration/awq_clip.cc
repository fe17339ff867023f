// See awq_clip.h.
#include "core/calibration/awq_clip.h"

#include <algorithm>
#include <cmath>

namespace quantfleet {
namespace {

// d^T H_g d for the group of `count` columns at `first` (d: that many values).
double GroupLoss(const double* d, int64_t first, int64_t count, const std::vector<double>& hessian, int64_t columns) {
  double loss = 0;
  for (int64_t j = 0; j < count; ++j) {
    if (d[j] == 0) continue;
    const double* h = hessian.data() + (first + j) * columns + first;
    double dot = 0;
    for (int64_t k = 0; k < count; ++k) dot += h[k] * d[k];
    loss += d[j] * dot;
  }
  return loss;
}

}  // namespace

AwqClipReport ClipAwqGroups(float* w, int64_t rows, int64_t columns, int64_t group, const std::vector<double>& hessian,
                            const AwqRound& round, int grid, double max_shrink) {
  AwqClipReport report;
  if (rows <= 0 || columns <= 0 || static_cast<int64_t>(hessian.size()) != columns * columns) return report;
  const int64_t size = group > 0 ? std::min(group, columns) : columns;
  const int64_t groups = (columns + size - 1) / size;
  const size_t n = static_cast<size_t>(rows * columns);
  const std::vector<float> original(w, w + n);
  std::vector<float> max_abs(static_cast<size_t>(rows * groups), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < columns; ++c) {
      float& m = max_abs[static_cast<size_t>(r * groups + c / size)];
      m = std::max(m, std::fabs(original[static_cast<size_t>(r * columns + c)]));
    }
  }
  std::vector<double> best(static_cast<size_t>(rows * groups), 0.0);
  std::vector<float> clipped(n), back(n);
  std::vector<double> d(static_cast<size_t>(size));
  const int steps = std::max(1, static_cast<int>(max_shrink * grid));
  for (int step = 0; step < steps; ++step) {
    const float ratio = 1.0f - static_cast<float>(step) / static_cast<float>(grid);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < columns; ++c) {
        const size_t i = static_cast<size_t>(r * columns + c);
        const float limit = max_abs[static_cast<size_t>(r * groups + c / size)] * ratio;
        clipped[i] = std::clamp(original[i], -limit, limit);
      }
    }
    round(clipped.data(), rows, columns, back.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t first = g * size, count = std::min(size, columns - first);
        const size_t at = static_cast<size_t>(r * columns + first);
        for (int64_t j = 0; j < count; ++j) d[static_cast<size_t>(j)] = double{back[at + j]} - original[at + j];
        const double loss = GroupLoss(d.data(), first, count, hessian, columns);
        double& b = best[static_cast<size_t>(r * groups + g)];
        if (step == 0) report.unclipped += loss;
        if (step == 0 || loss < b) {
          b = loss;
          std::copy(clipped.begin() + static_cast<std::ptrdiff_t>(at),
                    clipped.begin() + static_cast<std::ptrdiff_t>(at + count), w + at);
        }
      }
    }
  }
  report.groups = rows * groups;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      report.loss += best[static_cast<size_t>(r * groups + g)];
      const int64_t first = g * size, count = std::min(size, columns - first);
      const size_t at = static_cast<size_t>(r * columns + first);
      if (!std::equal(w + at, w + at + count, original.begin() + static_cast<std::ptrdiff_t>(at))) ++report.clipped;
    }
  }
  return report;
}

}  // namespace quantfleet
