// `quantfleet quantize --target-size SIZE` (or --target-bpw): turns a file
// size into one type per weight matrix, measured on calibration text (see
// core/calibration/type_budget.h), as --tensor-type overrides of the
// recipe the command was given; the recipe still decides everything else
// (norms, which tensors stay unquantized, the recorded file type).
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_TARGET_SIZE_H_
#define QUANTFLEET_CLIENT_TARGET_SIZE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/imatrix_file.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

struct TargetSize {
  uint64_t file_bytes = 0;     // 0: not asked for
  double bits_per_weight = 0;  // used when file_bytes is 0
  std::string calibration;     // the text the choices are measured on
  int ctx = 256;
  int chunks = 8;
  int threads = 0;
};

struct TargetChoice {
  std::vector<TensorTypeOverride> overrides;  // one per matrix chosen
  double expected_kld = 0;                    // the sum of the chosen costs
  double recipe_kld = 0;                      // the same for the recipe's own types
  uint64_t budget_bytes = 0;
};

// Measures and chooses. `plan` is the recipe's plan for `model`.
// INVALID_ARGUMENT for a missing or unreadable text, a model the forward
// pass cannot run; FAILED_PRECONDITION when the size is below what the
// smallest types allow (the message says the smallest).
absl::StatusOr<TargetChoice> ChooseTypesForSize(const GgufModel& model, const std::string& path,
                                                const QuantizePlan& plan, const Imatrix* imatrix,
                                                const TargetSize& target);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_TARGET_SIZE_H_
