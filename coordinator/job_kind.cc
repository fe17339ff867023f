// The kind of a job, by its record. See job_kind.h.
#include "coordinator/job_kind.h"

#include "coordinator/calibration_job.h"
#include "coordinator/evaluation_job.h"
#include "coordinator/layerwise_job.h"
#include "coordinator/quantize_job.h"
#include "coordinator/type_choice_job.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewJobKind(const quantfleet::v1::Job& job, const KindEnvironment& env) {
  switch (job.kind_case()) {
    case quantfleet::v1::Job::kCalibration:
      return NewCalibrationJob(env);
    case quantfleet::v1::Job::kEvaluation:
      return NewEvaluationJob(env);
    case quantfleet::v1::Job::kTypeChoice:
      return NewTypeChoiceJob(env);
    case quantfleet::v1::Job::kOptions:
      if (job.options().has_method()) return NewLayerwiseJob(env);
      break;
    case quantfleet::v1::Job::KIND_NOT_SET:  // refused by the quantization's options check
      break;
  }
  return NewQuantizeJob(env);
}

}  // namespace quantfleet
