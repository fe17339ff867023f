// The quantization job kind: a GGUF model in, the same model with its
// tensors quantized out (the bytes `quantfleet quantize` writes). Its
// plan fixes the output layout before any data exists; each task is a run
// of rows of one tensor. See job_kind.h.
//
// Thread-safety: as job_kind.h says of every kind; the free functions are
// pure.
#ifndef QUANTFLEET_COORDINATOR_QUANTIZE_JOB_H_
#define QUANTFLEET_COORDINATOR_QUANTIZE_JOB_H_

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/active_job.h"
#include "coordinator/job_kind.h"
#include "coordinator/path_policy.h"
#include "core/quant/imatrix_file.h"
#include "core/quant/quantize_plan.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

std::unique_ptr<JobKind> NewQuantizeJob(const KindEnvironment& env);

// Cuts a plan into tasks of about `target_result_bytes` (never crossing an
// expert boundary; every tensor with data gets at least one task).
std::vector<TaskDef> CutTasks(const QuantizePlan& plan, uint64_t target_result_bytes);

// What a worker needs to quantize `task`, one of the row tasks CutTasks
// made of `plan` (its unit is the plan's tensor).
void DescribeRowTask(const QuantizePlan& plan, const ActiveJob& job, size_t task, quantfleet::v1::TaskSpec* spec);
// The source rows of that task.
SourceSpan RowTaskSource(const QuantizePlan& plan, const ActiveJob& job, size_t task);

// Converts wire options to the planner's (a method's options checked too);
// errors name the bad option.
absl::StatusOr<QuantizeOptions> OptionsFromProto(const quantfleet::v1::QuantizeOptions& proto);

// The plan of a quantization of `model` with `proto`'s options, as a job
// plans it: the imatrix they name (resolved by `paths`) is loaded into
// `imatrix`, which the plan points into. INVALID_ARGUMENT naming the bad
// option, file or tensor; UNIMPLEMENTED for what the planner does not do.
absl::Status PlanQuantization(const GgufModel& model, const quantfleet::v1::QuantizeOptions& proto,
                              const PathPolicy& paths, std::optional<Imatrix>* imatrix, QuantizePlan* plan);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_QUANTIZE_JOB_H_
