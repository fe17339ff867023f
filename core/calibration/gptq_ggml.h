// GPTQ onto the grid of a ggml type, so its result is ordinary blocks of
// that type that llama.cpp reads. When a block's first column comes up,
// the type's own quantizer (with the importance weights) writes the block
// from the weights as GPTQ has updated them so far, which fixes the
// block's header (scales, mins); GPTQ then rounds column by column onto
// that header's levels (block_levels.h) and moves each rounding error
// onto the columns still to come.
//
// Thread-safety: GgmlGridQuantizer is used by one thread; GptqQuantizeRows
// is a pure function of its arguments.
#ifndef QUANTFLEET_CORE_CALIBRATION_GPTQ_GGML_H_
#define QUANTFLEET_CORE_CALIBRATION_GPTQ_GGML_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/gptq_solver.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

class GgmlGridQuantizer final : public GptqQuantizer {
 public:
  // `w`: the weights before GPTQ (rows x columns), whose rows' mean
  // squares the importance-weighted legacy recipes use; `imatrix`: null or
  // `columns` importance weights for the type's quantizer. Precondition:
  // HasBlockLevels(type), columns a multiple of its block size; groups are
  // its blocks. `static_groups` (GPTQ's act_order): every block is begun
  // up front and columns come in any order; the grid of every weight is
  // then kept (8 bytes a weight) instead of the current block's.
  GgmlGridQuantizer(GgmlType type, const float* w, int64_t rows, int64_t columns, const float* imatrix,
                    bool static_groups = false);

  void BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) override;
  void QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) override;

  // The rows as the type's blocks: rows x RowSize(type, columns) bytes.
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  uint8_t* Block(int64_t row, int64_t first_column);

  const GgmlType type_;
  const int64_t rows_, columns_, block_size_;
  const size_t row_bytes_;
  const float* const imatrix_;
  std::vector<uint8_t> bytes_;
  int64_t group_first_ = 0;
  std::vector<float> row_mean_square_;
  // rows x block size, for the current group: its grid, the weights the
  // type's quantizer saw and the levels it chose (kept for a weight that
  // no error has moved since, so that without feedback the bytes are the
  // quantizer's own).
  std::vector<double> scale_, offset_, seen_;
  std::vector<int> level_;
  // With static groups: every weight's grid (rows x columns).
  const bool static_groups_;
  std::vector<float> static_scale_, static_offset_;
};

// Quantizes `rows` x `columns` weights (row-major) to `type` with GPTQ
// over `hessian` (columns x columns). options.group is the type's block
// size whatever it says. With options.feedback false (and act_order off)
// the bytes are QuantizeRows's for the same weights and imatrix. Errors: those of SolveGptq, and INVALID_ARGUMENT
// for a type without block levels or a row length that is not a whole
// number of blocks.
absl::StatusOr<std::vector<uint8_t>> GptqQuantizeRows(GgmlType type, const float* w, int64_t rows, int64_t columns,
                                                      std::vector<double> hessian, const float* imatrix,
                                                      GptqOptions options = {});

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_GPTQ_GGML_H_
