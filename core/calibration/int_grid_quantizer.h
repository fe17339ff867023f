// GPTQ onto a uniform integer grid per group of columns, the grid of GPTQ
// checkpoints (the "gptq" format vLLM, transformers and exllama load): for
// each row and group, b-bit codes q in [0, 2^b - 1] with a scale and a
// zero point, the weight being scale * (q - zero). The grid is fixed when
// the group's first column comes up, as GPTQModel fixes it: over the
// group's weights x of a row, xmin = min(x, 0) and xmax = max(x, 0) (-1
// and 1 when both are 0); asymmetric: scale = (xmax - xmin) / (2^b - 1),
// zero = round(-xmin / scale); symmetric: xmax = max(|xmin|, xmax), xmin =
// -xmax when xmin < 0, zero = 2^(b-1). The scale is rounded to F16, as the
// checkpoint stores it, before any weight is rounded with it, so the
// stored file dequantizes to exactly the values GPTQ chose. Rounding is
// half to even (torch.round).
//
// Thread-safety: used by one thread; results read after the solve.
#ifndef QUANTFLEET_CORE_CALIBRATION_INT_GRID_QUANTIZER_H_
#define QUANTFLEET_CORE_CALIBRATION_INT_GRID_QUANTIZER_H_

#include <cstdint>
#include <vector>

#include "core/calibration/gptq_solver.h"

namespace quantfleet {

// b-bit codes with a scale and a zero point per row and group of columns:
// weight = scale * (code - zero).
struct IntGrid {
  int64_t rows = 0, columns = 0, groups = 0, group_size = 0;
  std::vector<uint8_t> codes;  // rows x columns
  std::vector<float> scales;   // rows x groups, F16-exact
  std::vector<int32_t> zeros;  // rows x groups
};

// AutoAWQ's grid, rounding to nearest: over each group of a row,
// scale = max(max - min, 1e-5) / (2^b - 1) (kept as F16), zero =
// clamp(-round(min / scale), 0, 2^b - 1), code = clamp(round(w / scale) +
// zero, 0, 2^b - 1). `back` (when not null) gets the dequantized weights.
IntGrid RoundToAwqGrid(const float* w, int64_t rows, int64_t columns, int64_t group, int bits,
                       std::vector<float>* back);

class IntGridQuantizer final : public GptqQuantizer {
 public:
  // `group` <= 0: one group per row (all columns).
  IntGridQuantizer(int bits, bool symmetric, int64_t rows, int64_t columns, int64_t group);

  void BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) override;
  void QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) override;

  int64_t groups() const { return groups_; }
  int64_t group_size() const { return group_; }
  // The grid as chosen (after the solve).
  IntGrid grid() const { return {rows_, columns_, groups_, group_, codes_, scales_, zeros_}; }
  // rows x columns codes, row-major.
  const std::vector<uint8_t>& codes() const { return codes_; }
  // rows x groups, row-major: the F16-exact scales and the zero points.
  const std::vector<float>& scales() const { return scales_; }
  const std::vector<int32_t>& zeros() const { return zeros_; }

 private:
  const int max_code_;
  const bool symmetric_;
  const int64_t rows_, columns_, group_, groups_;
  std::vector<uint8_t> codes_;
  std::vector<float> scales_;
  std::vector<int32_t> zeros_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_INT_GRID_QUANTIZER_H_
