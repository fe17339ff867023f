#include "client/target_size.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_format.h"
#include "client/calibration_text.h"
#include "core/calibration/imatrix_run.h"
#include "core/calibration/type_budget.h"
#include "core/calibration/type_choice.h"
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
  absl::StatusOr<TypeChoiceProblem> problem = TypeChoiceFor(plan, target.file_bytes, target.bits_per_weight);
  if (!problem.ok()) return problem.status();

  absl::StatusOr<CalibrationText> calibration =
      LoadCalibrationText(model, path, target.calibration, target.ctx, target.chunks);
  if (!calibration.ok()) return calibration.status();
  SetBlasThreads(target.threads);

  std::map<std::string, std::vector<float>> weights;
  if (imatrix != nullptr) weights = imatrix->weights;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  absl::StatusOr<std::vector<TensorCosts>> costs =
      MeasureTypeCosts(calibration->model.llama, calibration->chunks, problem->names, weights,
                       target.threads > 0 ? target.threads : static_cast<int>(std::thread::hardware_concurrency()),
                       [&](int done, int total) {
                         if (tty) absl::FPrintF(stderr, "\rmeasuring the types of %d/%d matrices ", done, total);
                       });
  if (tty) absl::FPrintF(stderr, "\n");
  if (!costs.ok()) return costs.status();
  absl::StatusOr<TypeChoice> choice = ChooseTypes(*problem, *costs);
  if (!choice.ok()) return choice.status();
  TargetChoice out;
  out.overrides = choice->overrides;
  out.expected_kld = choice->expected_kld;
  out.recipe_kld = choice->recipe_kld;
  out.budget_bytes = problem->budget_bytes;
  return out;
}

}  // namespace quantfleet
