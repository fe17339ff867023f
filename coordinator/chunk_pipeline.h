// How a job cut into text chunks (an importance matrix, an evaluation)
// spreads over the workers: one stage (data-parallel: every worker that
// holds the whole model takes chunks) or a pipeline of contiguous layer
// ranges, each held by one worker, a chunk passing from stage to stage. A
// job whose every task needs the whole model (a type choice) sets one
// stage itself and uses the same choice of workers and waiting message.
// Task chunk * stages + stage is one chunk through one stage; a stage's
// task is ready once the chunk's previous stage is finished. The kind that
// owns the pipeline says what a worker may hold (its budget), what a task
// does and where its activations lie.
//
// Thread-safety: as job_kind.h says of a kind's state: used under the
// coordinator's lock only.
#ifndef QUANTFLEET_COORDINATOR_CHUNK_PIPELINE_H_
#define QUANTFLEET_COORDINATOR_CHUNK_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/calibration_plan.h"
#include "coordinator/job_kind.h"

namespace quantfleet {

class ChunkPipeline {
 public:
  // The bytes a worker registered with `info` may hold (0: no limit), or
  // nullopt when it takes none of this job's chunks.
  using Budget = std::function<std::optional<uint64_t>(const quantfleet::v1::WorkerInfo& info)>;

  // `footprint`: what the stages hold; `what` names it in messages
  // ("the model", "both models"); `budgets_name` names the workers' budgets
  // ("workers' --memory").
  ChunkPipeline(ModelFootprint footprint, Budget budget, std::string what, std::string budgets_name);

  // Makes a job's tasks from its recorded plan (SetStages, then the
  // kind's own layout of tasks and partial file).
  using CutTasks = std::function<absl::Status(ActiveJob& job)>;

  // The task `worker_id` should take next, planning the job first when it
  // has no plan: over the live workers' budgets, recorded in the job, its
  // tasks cut by `cut` (or, when they cannot hold it, the job's `waiting`
  // says so and there is no task yet). Keeps `waiting` current. An error
  // (from `cut`, or recording the plan) fails the job; `what` names the job
  // in it ("calibration").
  absl::StatusOr<std::optional<size_t>> Next(ActiveJob& job, const std::string& worker_id,
                                             const quantfleet::v1::WorkerInfo& info, SchedulingContext& ctx,
                                             const CutTasks& cut, const std::string& what);

  // The stage ends over the live workers' budgets, or nullopt with
  // `*waiting` saying why none fits.
  std::optional<std::vector<int>> Plan(const SchedulingContext& ctx, std::string* waiting) const;
  // Takes the stage ends of the job's plan. INVALID_ARGUMENT unless they
  // cut the model's layers.
  absl::Status SetStages(const std::vector<int>& ends);

  size_t stages() const { return stage_end_.size(); }
  size_t StageOf(size_t task) const { return task % stages(); }
  int first_layer(size_t stage) const { return stage == 0 ? 0 : stage_end_[stage - 1]; }
  int end_layer(size_t stage) const { return stage_end_[stage]; }
  // The worker that holds stage `stage` ("" while nobody has claimed it).
  const std::string& owner(size_t stage) const { return stage_owner_[stage]; }

  // The task `worker_id` should take next: of its stage (claiming one whose
  // holder is gone), pending, its chunk's previous stage finished.
  std::optional<size_t> NextTask(const ActiveJob& job, const std::string& worker_id,
                                 const quantfleet::v1::WorkerInfo& info, const SchedulingContext& ctx);
  // Says in the job's `waiting` which stage with work left no live worker
  // holds or can take; clears it when none.
  void UpdateWaiting(ActiveJob& job, const SchedulingContext& ctx) const;
  // The job's stage_chunks_done (durable chunks per stage, for a pipeline).
  void RefreshProgress(ActiveJob& job) const;

 private:
  std::optional<size_t> StageFor(const std::string& worker_id, const quantfleet::v1::WorkerInfo& info,
                                 const SchedulingContext& ctx);

  const ModelFootprint footprint_;
  const Budget budget_;
  const std::string what_, budgets_name_;
  std::vector<int> stage_end_;            // from the job's plan; empty until planned
  std::vector<std::string> stage_owner_;  // the worker holding each stage
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_CHUNK_PIPELINE_H_
