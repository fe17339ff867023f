#include "client/target_size.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/calibration_text.h"
#include "core/calibration/imatrix_run.h"
#include "core/calibration/type_budget.h"
#include "core/io/mapped_file.h"
#include "core/model/forward_pass.h"
#include "core/model/runnable_model.h"

namespace quantfleet {

absl::StatusOr<TargetChoice> ChooseTypesForSize(const GgufModel& model, const std::string& path,
                                                const QuantizePlan& plan, const Imatrix* imatrix,
                                                const TargetSize& target) {
  if (target.calibration.empty()) {
    return absl::InvalidArgumentError("--target-size and --target-bpw need --calibration TEXT to measure the choices");
  }
  // The matrices the recipe quantizes are the ones to choose for; every
  // other tensor keeps the recipe's type.
  std::vector<std::string> names;
  std::map<std::string, GgmlType> recipe_type;
  uint64_t chosen_bytes_in_recipe = 0;
  for (const PlannedTensor& t : plan.tensors) {
    if (!t.convert || !IsQuantized(t.output.type) || t.output.ne[2] != 1 || t.output.ne[1] <= 1) continue;
    names.push_back(t.output.name);
    recipe_type[t.output.name] = t.output.type;
    chosen_bytes_in_recipe += (t.output.nbytes + 31) / 32 * 32;
  }
  if (names.empty()) return absl::InvalidArgumentError("the recipe quantizes no weight matrix; nothing to choose");
  uint64_t file_bytes = target.file_bytes;
  if (file_bytes == 0) {
    file_bytes = static_cast<uint64_t>(target.bits_per_weight * static_cast<double>(plan.n_elements) / 8);
  }
  const uint64_t fixed = plan.file_size() - chosen_bytes_in_recipe;
  uint64_t smallest = fixed;
  for (const PlannedTensor& t : plan.tensors) {
    if (!recipe_type.contains(t.output.name)) continue;
    const GgmlType least = CandidateTypes(t.output.ne[0]).front();
    smallest += (RowSize(least, t.output.ne[0]) * static_cast<uint64_t>(t.output.n_rows()) + 31) / 32 * 32;
  }
  if (file_bytes < smallest) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "a file of %d bytes cannot hold this model: with every weight matrix in its smallest type (Q2_K, or Q4_0 "
        "where rows are not whole super-blocks) it takes %d bytes",
        file_bytes, smallest));
  }

  absl::StatusOr<CalibrationText> calibration =
      LoadCalibrationText(model, path, target.calibration, target.ctx, target.chunks);
  if (!calibration.ok()) return calibration.status();
  SetBlasThreads(target.threads);

  std::map<std::string, std::vector<float>> weights;
  if (imatrix != nullptr) weights = imatrix->weights;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  absl::StatusOr<std::vector<TensorCosts>> costs =
      MeasureTypeCosts(calibration->model.llama, calibration->chunks, names, weights,
                       target.threads > 0 ? target.threads : static_cast<int>(std::thread::hardware_concurrency()),
                       [&](int done, int total) {
                         if (tty) absl::FPrintF(stderr, "\rmeasuring the types of %d/%d matrices ", done, total);
                       });
  if (tty) absl::FPrintF(stderr, "\n");
  if (!costs.ok()) return costs.status();
  TargetChoice out;
  out.budget_bytes = file_bytes - fixed;
  absl::StatusOr<std::vector<size_t>> picks = AllocateTypes(*costs, out.budget_bytes);
  if (!picks.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("a file of %d bytes is too small for this model: %s", file_bytes, picks.status().message()));
  }
  for (size_t t = 0; t < costs->size(); ++t) {
    const TensorCosts& c = (*costs)[t];
    const TypeCost& pick = c.options[(*picks)[t]];
    out.expected_kld += pick.kld;
    for (const TypeCost& o : c.options) {
      if (o.type == recipe_type[c.name]) out.recipe_kld += o.kld;
    }
    // An exact-name pattern: first match wins, ahead of any the user gave.
    out.overrides.push_back({"^" + absl::StrReplaceAll(c.name, {{".", "\\."}}) + "$", pick.type});
  }
  return out;
}

}  // namespace quantfleet
