// The importance-matrix job kind: the calibration text cut into chunks, the
// plan of stages over the live workers' memory, one task per chunk and
// stage, the running perplexity, and the statistics summed in chunk order
// into the imatrix. See calibration_job.h.
#include "coordinator/calibration_job.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/calibration_plan.h"
#include "coordinator/chunk_pipeline.h"
#include "coordinator/converted_model.h"
#include "coordinator/job_text.h"
#include "coordinator/model_copy.h"
#include "core/calibration/chunk_statistics.h"
#include "core/calibration/imatrix_run.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// The model bytes a worker may hold for a calibration job: for GPU jobs its
// --gpu-memory, else 90% of its first GPU (nullopt without a GPU); for CPU
// jobs its --memory.
std::optional<uint64_t> CalibrationBudget(const v1::WorkerInfo& info, bool gpu) {
  if (!gpu) return static_cast<uint64_t>(info.memory_bytes());
  if (info.gpus_size() == 0) return std::nullopt;
  if (info.gpu_memory_bytes() > 0) return static_cast<uint64_t>(info.gpu_memory_bytes());
  return static_cast<uint64_t>(info.gpus(0).memory_bytes()) / 10 * 9;
}

// Once planned, a job has one task per chunk and stage: task
// chunk * stages + stage, whose result (the stage's output activations
// unless it is the last, then its statistics) lies in the partial file at
// its result_offset.
class CalibrationJob final : public JobKind {
 public:
  explicit CalibrationJob(const KindEnvironment& env) : env_(env) {}

  absl::Status Prepare(ActiveJob& job) override {
    const v1::CalibrationOptions& o = job.job.calibration();
    const std::string& input = job.job.input();
    const int ctx = o.ctx() > 0 ? o.ctx() : 512;
    QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
    QF_ASSIGN_OR_RETURN(const JobText text, ReadJobText(*env_.paths, o.text()));
    // Workers copy a GGUF file: a checkpoint folder is converted once.
    QF_ASSIGN_OR_RETURN(std::string served, GgufForWorkers(input, env_.converted_dir));
    absl::StatusOr<GgufModel> model = GgufModel::Open(served);
    if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
    job.model = std::make_shared<GgufModel>(std::move(*model));
    // Loading checks the architecture and shapes (weights stay mapped).
    absl::StatusOr<LlamaModel> llama = LlamaModel::Load(*job.model, input);
    if (!llama.ok()) return llama.status();
    absl::StatusOr<std::vector<std::vector<TokenId>>> chunks =
        CutJobText(text, *job.model, input, ctx, o.max_chunks(), o.parse_special());
    if (!chunks.ok()) return chunks.status();
    // A worker finds its cached copy by the model's id; a changed model gets a new one.
    model_copy_ = ModelCopyOf(*job.model);
    layout_ = ImatrixLayoutOf(*job.model, o.process_output());
    chunks_ = *std::move(chunks);
    n_layer_ = llama->hparams().n_layer;
    n_embd_ = llama->hparams().n_embd;
    const bool gpu = o.gpu();
    pipeline_.emplace(
        FootprintOf(*job.model, n_layer_), [gpu](const v1::WorkerInfo& info) { return CalibrationBudget(info, gpu); },
        "the model", gpu ? "GPU workers' memory" : "workers' --memory");
    job.job.set_tensors_total(static_cast<int64_t>(chunks_.size()));
    if (job.job.has_plan()) return CutTasks(job);  // resumed after a restart
    return absl::OkStatus();
  }

  bool TasksCut(const ActiveJob& job) const override { return job.job.has_plan(); }

  absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                 const v1::WorkerInfo& info, SchedulingContext& ctx) override {
    return pipeline_->Next(
        job, worker_id, info, ctx, [this](ActiveJob& j) { return CutTasks(j); }, "calibration");
  }

  void Describe(const ActiveJob& job, size_t task, v1::TaskSpec* spec) const override {
    const size_t c = job.tasks[task].unit, s = StageOf(task);
    spec->set_tensor(stages() == 1
                         ? absl::StrFormat("chunk %d", c + 1)
                         : absl::StrFormat("chunk %d, layers %d-%d", c + 1, first_layer(s), end_layer(s) - 1));
    spec->set_source_path(job.model->part(0).path());
    v1::CalibrationChunk* chunk = spec->mutable_calibration();
    chunk->set_chunk(static_cast<int32_t>(c));
    chunk->mutable_tokens()->Add(chunks_[c].begin(), chunks_[c].end());
    chunk->set_process_output(job.job.calibration().process_output());
    chunk->set_gpu(job.job.calibration().gpu());
    for (const ImatrixEntryShape& e : stage_layouts_[s]) chunk->add_entries(e.name);
    chunk->set_model_bytes(model_copy_.bytes());
    chunk->set_model_id(model_copy_.id());
    *chunk->mutable_part_names() = model_copy_.part_names();
    *chunk->mutable_part_bytes() = model_copy_.part_bytes();
    if (stages() > 1) {
      chunk->set_first_layer(first_layer(s));
      chunk->set_end_layer(end_layer(s));
      if (s > 0) chunk->set_activation_bytes(static_cast<int64_t>(activation_bytes(c)));
    }
  }

  // Workers read the model from their own copy or cache, checked by model_id.
  std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const override {
    (void)job, (void)task;
    return std::nullopt;
  }

  absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const override {
    (void)task;  // every task may stream the whole model
    return WholePart(job.model, which.part, "the model");
  }

  // The previous stage's result of the same chunk starts with them.
  std::optional<std::pair<uint64_t, uint64_t>> InputActivations(const ActiveJob& job, size_t task) const override {
    if (StageOf(task) == 0) return std::nullopt;
    return std::make_pair(job.tasks[task - 1].result_offset, activation_bytes(job.tasks[task].unit));
  }

  std::string TaskLabel(const ActiveJob& job, size_t task) const override {
    return absl::StrFormat("chunk %d", job.tasks[task].unit + 1);
  }

  void OnCompleted(ActiveJob& job, size_t task, SchedulingContext& ctx) override {
    ctx.WorkAppeared();  // the next pipeline stage of its chunk may start
    AddChunkPerplexity(job, task);
  }

  // A pipeline stage that is durable no longer needs the activations its
  // previous stage left: their disk space goes back.
  void OnDurable(ActiveJob& job, size_t task) override {
    if (const std::optional<std::pair<uint64_t, uint64_t>> input = InputActivations(job, task)) {
      job.part->Release(input->first, input->second);
    }
  }

  void RefreshProgress(ActiveJob& job) const override {
    if (pipeline_) pipeline_->RefreshProgress(job);
  }

  // Adds the chunks' statistics in chunk order and writes the imatrix.
  absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) override {
    const v1::CalibrationOptions& o = job.job.calibration();
    ChunkStatistics total(o.process_output());
    std::string bytes;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      // A chunk's statistics are the union of its stages' entries.
      ChunkStatistics chunk(o.process_output());
      for (size_t s = 0; s < stages(); ++s) {
        const TaskDef& def = job.tasks[c * stages() + s];
        const size_t skip = s + 1 < stages() ? activation_bytes(c) : 0;
        bytes.resize(def.result_bytes - skip);
        QF_RETURN_IF_ERROR(part.PRead(bytes.data(), bytes.size(), def.result_offset + skip));
        QF_ASSIGN_OR_RETURN(ChunkStatistics stage, DecodeChunk(bytes, stage_layouts_[s], o.process_output()));
        chunk.Add(stage);
      }
      total.Add(chunk);  // in chunk order, as `quantfleet imatrix` does
    }
    JobOutcome outcome;
    double perplexity = 0, error = 0;
    Perplexity(total, &perplexity, &error);
    outcome.perplexity = perplexity;
    // The partial file becomes the imatrix: its content is replaced and it
    // is renamed into place like any artifact.
    const std::vector<uint8_t> imatrix =
        total.imatrix.SerializeGguf({o.text()}, static_cast<int>(chunks_.size()), o.ctx() > 0 ? o.ctx() : 512);
    QF_RETURN_IF_ERROR(part.FinalizeWith(imatrix));
    return outcome;
  }

  // After a pipeline, each layer's quantization goes first to the worker
  // that held it.
  void PrepareFollowUp(const ActiveJob& job, const SchedulingContext& ctx, v1::SubmitJobRequest* next) const override {
    (void)job;
    if (stages() < 2) return;
    for (size_t s = 0; s < stages(); ++s) {
      const std::string name = ctx.WorkerName(pipeline_->owner(s));
      for (int l = first_layer(s); l < end_layer(s); ++l) next->add_layer_workers(name);
    }
  }

 private:
  size_t stages() const { return pipeline_->stages(); }
  size_t StageOf(size_t task) const { return pipeline_->StageOf(task); }
  int first_layer(size_t stage) const { return pipeline_->first_layer(stage); }
  int end_layer(size_t stage) const { return pipeline_->end_layer(stage); }
  // Bytes of the activations leaving a stage of chunk `chunk`.
  size_t activation_bytes(size_t chunk) const { return chunks_[chunk].size() * static_cast<size_t>(n_embd_) * 4; }

  // Tasks and partial file from the job's plan.
  absl::Status CutTasks(ActiveJob& job) {
    QF_RETURN_IF_ERROR(pipeline_->SetStages(
        std::vector<int>(job.job.plan().stage_end_layers().begin(), job.job.plan().stage_end_layers().end())));
    stage_layouts_.clear();
    for (size_t s = 0; s < stages(); ++s) {
      stage_layouts_.push_back(StageLayout(layout_, first_layer(s), end_layer(s), n_layer_));
    }
    std::vector<TaskDef> tasks;
    uint64_t offset = 0;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      for (size_t s = 0; s < stages(); ++s) {
        TaskDef d;
        d.unit = c;
        d.n_rows = 1;
        d.result_offset = offset;
        d.result_bytes = (s + 1 < stages() ? activation_bytes(c) : 0) + EncodedChunkBytes(stage_layouts_[s]);
        offset += d.result_bytes;
        tasks.push_back(d);
      }
    }
    job.SetTasks(std::move(tasks), chunks_.size());
    QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(job.job.output(), job.job.id(), offset, env_.file_ops));
    job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
    job.job.set_bytes_total(static_cast<int64_t>(offset));
    return absl::OkStatus();
  }

  // Adds a completed task's perplexity sums to the job's running
  // perplexity. Progress only: a result whose sums cannot be read shows
  // no perplexity yet; the final value is summed from the decoded chunks.
  void AddChunkPerplexity(ActiveJob& job, size_t task) {
    const TaskDef& def = job.tasks[task];
    std::string tail(kChunkPerplexityBytes, '\0');
    if (!job.part->PRead(tail.data(), tail.size(), def.result_offset + def.result_bytes - tail.size()).ok()) return;
    absl::StatusOr<ChunkPerplexity> sums = DecodeChunkPerplexity(tail);
    if (!sums.ok()) return;
    running_nll_ += sums->nll;
    running_predictions_ += sums->predictions;
    if (running_predictions_ > 0) {
      job.job.set_perplexity(std::exp(running_nll_ / static_cast<double>(running_predictions_)));
    }
  }

  const KindEnvironment env_;
  ImatrixLayout layout_;
  std::vector<std::vector<TokenId>> chunks_;
  v1::ModelCopy model_copy_;  // what workers find or fetch their copy by
  int n_layer_ = 0;
  int n_embd_ = 0;
  std::optional<ChunkPipeline> pipeline_;  // set by Prepare; its stages once planned
  std::vector<ImatrixLayout> stage_layouts_;
  // Perplexity sums of the chunks completed so far (in arrival order).
  double running_nll_ = 0;
  int64_t running_predictions_ = 0;
};

}  // namespace

std::unique_ptr<JobKind> NewCalibrationJob(const KindEnvironment& env) { return std::make_unique<CalibrationJob>(env); }

}  // namespace quantfleet
