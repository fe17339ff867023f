// The GPTQ solve for one weight matrix (Frantar et al., 2022): columns are
// quantized left to right and each column's rounding error, scaled by the
// inverse Hessian, is moved onto the columns not yet quantized, so errors
// cancel in the layer's output x W^T instead of adding up.
//
// As GPTQModel does it: dead columns (a zero Hessian diagonal) are zeroed;
// the Hessian is damped by `damp` times its mean diagonal, raised step by
// step while its Cholesky factorization fails; the upper Cholesky factor of
// its inverse drives the updates; columns go in blocks of `block` with the
// updates to later blocks applied lazily, once per block (a block holds
// whole groups). What a column rounds to is the quantizer's business: it
// fixes a group's scales when the group's first column comes up, from the
// weights with every earlier column's error applied (the reference code
// takes them before the current block's updates), then rounds column by
// column on that grid. The result equals Optimal Brain Quantization done
// column by column with the remaining Hessian inverted afresh (a test).
//
// With act_order (GPTQModel's desc_act with static groups), the columns go
// in order of decreasing Hessian diagonal, the inputs that carry the most
// energy first, while every group keeps its place: all groups' scales are
// fixed up front from the weights before any update, so a file still holds
// ordinary contiguous groups.
//
// Thread-safety: pure function of its arguments; the quantizer is called
// from the calling thread only.
#ifndef QUANTFLEET_CORE_CALIBRATION_GPTQ_SOLVER_H_
#define QUANTFLEET_CORE_CALIBRATION_GPTQ_SOLVER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

// The target grid, group by group.
class GptqQuantizer {
 public:
  virtual ~GptqQuantizer() = default;
  // Columns [first, first + count) start a group: fix its scales from
  // `w`, rows x count values (row r's at w + r * stride). With act_order
  // every group is begun before the first column is rounded.
  virtual void BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) = 0;
  // Rounds column `column` (`rows` values, one per row) on its group's
  // grid, writing the dequantized values to `q`.
  virtual void QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) = 0;
};

struct GptqOptions {
  double damp = 0.01;  // of the mean Hessian diagonal
  double damp_step = 0.01;
  double max_damp = 1.0;  // gives up past this
  int64_t block = 128;    // rounded up to whole groups
  int64_t group = 128;    // columns per quantization group (<= 0: the whole row)
  // false: no error moves onto later columns, which is rounding to
  // nearest on the quantizer's grid (the baseline GPTQ is measured from).
  bool feedback = true;
  // Columns by decreasing Hessian diagonal, groups fixed up front (above).
  bool act_order = false;
};

struct GptqResult {
  std::vector<double> q;  // rows x columns, dequantized, row-major
  double damp = 0;        // the damping that made the Hessian factorizable
  int64_t dead_columns = 0;
};

// `w`: rows x columns (row-major); `hessian`: columns x columns (full,
// symmetric, e.g. HessianCollector::Hessian). INVALID_ARGUMENT for shapes
// that do not fit; FAILED_PRECONDITION when no damping up to max_damp
// makes the Hessian positive definite.
absl::StatusOr<GptqResult> SolveGptq(const std::vector<double>& w, int64_t rows, int64_t columns,
                                     std::vector<double> hessian, GptqQuantizer& quantizer,
                                     const GptqOptions& options = {});

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_GPTQ_SOLVER_H_
