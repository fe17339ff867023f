// How a quantization plan is cut into runs of rows: the one rule that both
// `quantfleet quantize` (work items for its threads) and the coordinator
// (tasks for its workers) follow, so the two cut the same way and a run
// never crosses an expert boundary (each expert has its own importance
// weights). Only the run length differs between them.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_QUANT_ROW_RANGES_H_
#define QUANTFLEET_CORE_QUANT_ROW_RANGES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/quant/quantize_plan.h"

namespace quantfleet {

// Rows [first_row, first_row + n_rows) of plan.tensors[tensor].
struct RowRange {
  size_t tensor = 0;
  int64_t first_row = 0;
  int64_t n_rows = 0;
};

// Every tensor with data, in plan order, cut into runs of at most
// `max_rows(tensor)` rows (at least one).
std::vector<RowRange> CutRowRanges(const QuantizePlan& plan,
                                   const std::function<int64_t(const PlannedTensor&)>& max_rows);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_ROW_RANGES_H_
