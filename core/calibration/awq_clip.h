// AWQ's clipping search (AutoAWQ's auto_clip), after the scales are folded:
// for each row and group of columns of a weight matrix, the largest |w| the
// group keeps, among max|w| * (1 - i / 20) for i = 0..9 (shrinking by at
// most half), is the one whose rounding gives the least error in the
// matrix's output over the calibration inputs: d^T H_g d, with d the
// group's rounded-and-clipped weights minus its original ones and H_g the
// group's block of the input Hessian. Weights beyond it are clamped to it,
// so the grid's range spends its levels where the output needs them.
// AutoAWQ skips q and k (whose error is felt through the attention scores,
// not their output); the caller does too.
//
// Thread-safety: a pure function.
#ifndef QUANTFLEET_CORE_CALIBRATION_AWQ_CLIP_H_
#define QUANTFLEET_CORE_CALIBRATION_AWQ_CLIP_H_

#include <cstdint>
#include <vector>

#include "core/calibration/awq_search.h"

namespace quantfleet {

struct AwqClipReport {
  int64_t groups = 0;    // row groups searched
  int64_t clipped = 0;   // of them, clamped below their maximum
  double loss = 0;       // sum of d^T H_g d after clipping
  double unclipped = 0;  // the same without clipping
};

// Clamps `w` (rows x columns, row-major) in place. `round` rounds a whole
// matrix on the grid, in groups of `group` columns (<= 0: one group per
// row); `hessian` is columns x columns. Steps: AutoAWQ's 20-step grid,
// shrinking by at most `max_shrink`.
AwqClipReport ClipAwqGroups(float* w, int64_t rows, int64_t columns, int64_t group, const std::vector<double>& hessian,
                            const AwqRound& round, int grid = 20, double max_shrink = 0.5);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_AWQ_CLIP_H_
