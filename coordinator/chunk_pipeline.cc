// See chunk_pipeline.h.
#include "coordinator/chunk_pipeline.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace quantfleet {

ChunkPipeline::ChunkPipeline(ModelFootprint footprint, Budget budget, std::string what, std::string budgets_name)
    : footprint_(std::move(footprint)),
      budget_(std::move(budget)),
      what_(std::move(what)),
      budgets_name_(std::move(budgets_name)) {}

absl::StatusOr<std::optional<size_t>> ChunkPipeline::Next(ActiveJob& job, const std::string& worker_id,
                                                          const v1::WorkerInfo& info, SchedulingContext& ctx,
                                                          const CutTasks& cut, const std::string& what) {
  if (!job.job.has_plan()) {
    std::string waiting;
    const std::optional<std::vector<int>> ends = Plan(ctx, &waiting);
    if (!ends) {
      job.job.set_waiting(waiting);
      return std::nullopt;
    }
    job.job.clear_waiting();
    job.job.mutable_plan()->mutable_stage_end_layers()->Assign(ends->begin(), ends->end());
    absl::Status s = cut(job);
    if (s.ok()) s = ctx.TasksCreated(job);
    if (!s.ok()) return absl::Status(s.code(), absl::StrFormat("planning the %s failed: %s", what, s.message()));
  }
  const std::optional<size_t> task = NextTask(job, worker_id, info, ctx);
  UpdateWaiting(job, ctx);
  return task;
}

std::optional<std::vector<int>> ChunkPipeline::Plan(const SchedulingContext& ctx, std::string* waiting) const {
  std::vector<uint64_t> budgets;
  for (const auto& [id, info] : ctx.LiveWorkers()) {
    if (const std::optional<uint64_t> budget = budget_(*info)) budgets.push_back(*budget);
  }
  std::optional<std::vector<int>> ends = PlanStages(footprint_, budgets);
  if (!ends) {
    uint64_t held = 0;
    for (uint64_t b : budgets) held += b;
    *waiting = absl::StrFormat("waiting for workers that can hold %s: it needs %d MiB, the %d live %s add up to %d MiB",
                               what_, footprint_.Total() >> 20, budgets.size(), budgets_name_, held >> 20);
  }
  return ends;
}

absl::Status ChunkPipeline::SetStages(const std::vector<int>& ends) {
  const int n_layer = static_cast<int>(footprint_.layers.size());
  if (ends.empty()) return absl::InvalidArgumentError("the job's plan has no stage");
  for (size_t s = 0; s < ends.size(); ++s) {
    const int first = s == 0 ? 0 : ends[s - 1];
    if (ends[s] <= first || (s + 1 == ends.size()) != (ends[s] == n_layer)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the job's stages end at layers [%s], which do not cut the model's %d layers",
                          absl::StrJoin(ends, ", "), n_layer));
    }
  }
  stage_end_ = ends;
  stage_owner_.assign(stages(), "");
  return absl::OkStatus();
}

std::optional<size_t> ChunkPipeline::NextTask(const ActiveJob& job, const std::string& worker_id,
                                              const v1::WorkerInfo& info, const SchedulingContext& ctx) {
  const std::optional<size_t> stage = StageFor(worker_id, info, ctx);
  if (!stage) return std::nullopt;
  for (size_t t = *stage; t < job.rt.size(); t += stages()) {
    if (job.rt[t].state == TaskState::kPending && (*stage == 0 || job.rt[t - 1].finished())) return t;
  }
  return std::nullopt;
}

std::optional<size_t> ChunkPipeline::StageFor(const std::string& worker_id, const v1::WorkerInfo& info,
                                              const SchedulingContext& ctx) {
  const std::optional<uint64_t> can_hold = budget_(info);
  if (!can_hold) return std::nullopt;
  const uint64_t budget = *can_hold;
  auto fits = [&](size_t s) { return budget == 0 || footprint_.StageBytes(first_layer(s), end_layer(s)) <= budget; };
  if (stages() == 1) return fits(0) ? std::optional<size_t>(0) : std::nullopt;
  for (size_t s = 0; s < stages(); ++s) {
    if (stage_owner_[s] == worker_id) return s;
  }
  // A stage nobody holds (yet, or any more): the first that fits.
  for (size_t s = 0; s < stages(); ++s) {
    if (!ctx.Live(stage_owner_[s]) && fits(s)) {
      stage_owner_[s] = worker_id;
      return s;
    }
  }
  return std::nullopt;
}

void ChunkPipeline::UpdateWaiting(ActiveJob& job, const SchedulingContext& ctx) const {
  const auto live = ctx.LiveWorkers();
  for (size_t s = 0; s < stages(); ++s) {
    if (stages() > 1 && ctx.Live(stage_owner_[s])) continue;
    bool work_left = false;
    for (size_t t = s; t < job.rt.size() && !work_left; t += stages()) {
      work_left = job.rt[t].state == TaskState::kPending || job.rt[t].state == TaskState::kLeased;
    }
    if (!work_left) continue;
    const uint64_t bytes = footprint_.StageBytes(first_layer(s), end_layer(s));
    bool taker = false;
    for (const auto& [id, info] : live) {
      const std::optional<uint64_t> budget = budget_(*info);
      const bool owns = stages() > 1 && std::find(stage_owner_.begin(), stage_owner_.end(), id) != stage_owner_.end();
      taker = taker || (!owns && budget && (*budget == 0 || bytes <= *budget));
    }
    if (!taker) {
      job.job.set_waiting(stages() == 1
                              ? absl::StrFormat("waiting for a worker that can hold %s (%d MiB)", what_, bytes >> 20)
                              : absl::StrFormat("stage %d (layers %d-%d, %d MiB) waits for a worker that can hold it",
                                                s + 1, first_layer(s), end_layer(s) - 1, bytes >> 20));
      return;
    }
  }
  job.job.clear_waiting();
}

void ChunkPipeline::RefreshProgress(ActiveJob& job) const {
  job.job.clear_stage_chunks_done();
  if (stages() < 2) return;
  std::vector<int64_t> per_stage(stages(), 0);
  for (size_t i = 0; i < job.rt.size(); ++i) {
    if (job.rt[i].state == TaskState::kDone) ++per_stage[StageOf(i)];
  }
  job.job.mutable_stage_chunks_done()->Assign(per_stage.begin(), per_stage.end());
}

}  // namespace quantfleet
