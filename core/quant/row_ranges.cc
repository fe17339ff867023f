#include "core/quant/row_ranges.h"

#include <algorithm>

namespace quantfleet {

std::vector<RowRange> CutRowRanges(const QuantizePlan& plan,
                                   const std::function<int64_t(const PlannedTensor&)>& max_rows) {
  std::vector<RowRange> out;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    const int64_t rows = t.output.n_rows();
    if (rows == 0 || t.output.nbytes == 0) continue;
    const int64_t step = std::max<int64_t>(1, max_rows(t));
    const int64_t rows_per_expert = t.output.ne[1];
    for (int64_t r = 0; r < rows;) {
      const int64_t expert_end = (r / rows_per_expert + 1) * rows_per_expert;
      const int64_t n = std::min({step, rows - r, expert_end - r});
      out.push_back({i, r, n});
      r += n;
    }
  }
  return out;
}

}  // namespace quantfleet
