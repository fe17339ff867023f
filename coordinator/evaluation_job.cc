// The evaluation job kind: the text cut into chunks, the plan of stages
// over the workers that hold both models (one: data-parallel), one task per
// chunk and stage, the running statistics, and the report summed in chunk
// order. See evaluation_job.h.
#include "coordinator/evaluation_job.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "coordinator/chunk_pipeline.h"
#include "coordinator/converted_model.h"
#include "coordinator/job_text.h"
#include "coordinator/model_copy.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/eval_gate.h"
#include "core/calibration/eval_report_json.h"
#include "core/calibration/eval_statistics.h"
#include "core/io/atomic_file.h"
#include "core/model/llama_model.h"
#include "core/util/status_macros.h"
#include "proto/eval_report_wire.h"

namespace quantfleet {

namespace {

// Positions a chunk of `tokens` tokens scores: its second half, less the
// last token, which predicts nothing.
size_t ScoredPositions(size_t tokens) { return tokens - tokens / 2 - 1; }

// Opens a model the job names, checked as the forward pass will load it.
// A checkpoint folder is converted once into `converted_dir` (workers copy
// a GGUF file).
absl::StatusOr<std::shared_ptr<GgufModel>> OpenRunnable(const std::string& named, const std::string& converted_dir,
                                                        LlamaHparams* hparams) {
  QF_ASSIGN_OR_RETURN(std::string path, GgufForWorkers(named, converted_dir));
  absl::StatusOr<GgufModel> file = GgufModel::Open(path);
  if (!file.ok()) return absl::InvalidArgumentError(file.status().message());
  auto model = std::make_shared<GgufModel>(*std::move(file));
  absl::StatusOr<LlamaModel> llama = LlamaModel::Load(*model, path);
  if (!llama.ok()) return llama.status();
  *hparams = llama->hparams();
  return model;
}

// What a stage of both models holds: the sum of their footprints.
ModelFootprint BothModels(const ModelFootprint& a, const ModelFootprint& b) {
  ModelFootprint sum = a;
  sum.embedding += b.embedding;
  sum.head += b.head;
  for (size_t l = 0; l < sum.layers.size(); ++l) sum.layers[l] += b.layers[l];
  return sum;
}

// Once planned (over the live workers' --memory), a job has one task per
// chunk and stage: task chunk * stages + stage, whose result (both models'
// activations leaving the stage unless it is the last, then the chunk's
// scored positions) lies in the partial file at its result_offset.
class EvaluationJob final : public JobKind {
 public:
  explicit EvaluationJob(const KindEnvironment& env) : env_(env) {}

  absl::Status Prepare(ActiveJob& job) override {
    const v1::EvaluationOptions& o = job.job.evaluation();
    const int ctx = o.ctx() > 0 ? o.ctx() : 512;
    QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
    if (o.base().empty()) return absl::InvalidArgumentError("an evaluation needs the base model to measure against");
    if (o.text().empty()) return absl::InvalidArgumentError("an evaluation needs a text");
    QF_ASSIGN_OR_RETURN(const JobText text, ReadJobText(*env_.paths, o.text()));
    QF_ASSIGN_OR_RETURN(std::string base_path, env_.paths->ResolveInput(o.base()));
    if (!o.accept_as().empty() && !std::filesystem::exists(job.job.input())) {
      // Moved by this job's own end, just before a restart recorded it.
      for (const std::string& moved : {o.accept_as(), RejectedPath(o.accept_as())}) {
        if (std::filesystem::exists(moved)) {
          return absl::FailedPreconditionError(
              absl::StrFormat("the evaluation had finished: the measured model is at %s and the report at %s", moved,
                              job.job.output()));
        }
      }
    }
    LlamaHparams measured, base;
    QF_ASSIGN_OR_RETURN(job.model, OpenRunnable(job.job.input(), env_.converted_dir, &measured));
    QF_ASSIGN_OR_RETURN(base_, OpenRunnable(base_path, env_.converted_dir, &base));
    if (measured.n_vocab != base.n_vocab || measured.n_layer != base.n_layer || measured.n_embd != base.n_embd) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s (%d tokens, %d layers of %d) and %s (%d tokens, %d layers of %d) are not the same model: measure a "
          "model against the one it was quantized from",
          job.job.input(), measured.n_vocab, measured.n_layer, measured.n_embd, base_path, base.n_vocab, base.n_layer,
          base.n_embd));
    }
    n_layer_ = base.n_layer;
    n_embd_ = base.n_embd;
    // The text is tokenized by the base model's tokenizer, as `quantfleet eval` does.
    absl::StatusOr<std::vector<std::vector<TokenId>>> chunks =
        CutJobText(text, *base_, base_path, ctx, o.max_chunks(), /*parse_special=*/false);
    if (!chunks.ok()) return chunks.status();
    chunks_ = *std::move(chunks);
    model_copy_ = ModelCopyOf(*job.model);
    base_copy_ = ModelCopyOf(*base_);
    pipeline_.emplace(
        BothModels(FootprintOf(*job.model, n_layer_), FootprintOf(*base_, n_layer_)),
        [](const v1::WorkerInfo& info) { return std::optional<uint64_t>(static_cast<uint64_t>(info.memory_bytes())); },
        "both models", "workers' --memory");
    job.job.set_tensors_total(static_cast<int64_t>(chunks_.size()));
    if (job.job.has_plan()) return CutTasks(job);  // resumed after a restart
    return absl::OkStatus();
  }

  bool TasksCut(const ActiveJob& job) const override { return job.job.has_plan(); }

  absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                 const v1::WorkerInfo& info, SchedulingContext& ctx) override {
    return pipeline_->Next(
        job, worker_id, info, ctx, [this](ActiveJob& j) { return CutTasks(j); }, "evaluation");
  }

  void Describe(const ActiveJob& job, size_t task, v1::TaskSpec* spec) const override {
    const size_t c = job.tasks[task].unit, s = pipeline_->StageOf(task);
    spec->set_tensor(stages() == 1 ? absl::StrFormat("evaluation chunk %d", c + 1)
                                   : absl::StrFormat("evaluation chunk %d, layers %d-%d", c + 1,
                                                     pipeline_->first_layer(s), pipeline_->end_layer(s) - 1));
    spec->set_source_path(job.model->part(0).path());
    v1::EvaluationChunk* chunk = spec->mutable_evaluation();
    chunk->set_chunk(static_cast<int32_t>(c));
    chunk->mutable_tokens()->Add(chunks_[c].begin(), chunks_[c].end());
    *chunk->mutable_model() = model_copy_;
    *chunk->mutable_base() = base_copy_;
    if (stages() > 1) {
      chunk->set_first_layer(pipeline_->first_layer(s));
      chunk->set_end_layer(pipeline_->end_layer(s));
      if (s > 0) chunk->set_activation_bytes(static_cast<int64_t>(activation_bytes(c)));
    }
  }

  // Workers read both models from their own copies or cache.
  std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const override {
    (void)job, (void)task;
    return std::nullopt;
  }

  absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const override {
    (void)task;  // every task may stream both models
    return which.base ? WholePart(base_, which.part, "the base model")
                      : WholePart(job.model, which.part, "the measured model");
  }

  // The previous stage's result of the same chunk: both streams.
  std::optional<std::pair<uint64_t, uint64_t>> InputActivations(const ActiveJob& job, size_t task) const override {
    if (pipeline_->StageOf(task) == 0) return std::nullopt;
    return std::make_pair(job.tasks[task - 1].result_offset, activation_bytes(job.tasks[task].unit));
  }

  void ReleaseInputs() override {
    base_.reset();
    chunks_ = {};
  }

  std::string TaskLabel(const ActiveJob& job, size_t task) const override {
    return absl::StrFormat("evaluation chunk %d", job.tasks[task].unit + 1);
  }

  // A stage that is durable no longer needs its input's disk space.
  void OnDurable(ActiveJob& job, size_t task) override {
    if (const std::optional<std::pair<uint64_t, uint64_t>> input = InputActivations(job, task)) {
      job.part->Release(input->first, input->second);
    }
  }

  void RefreshProgress(ActiveJob& job) const override {
    if (pipeline_) pipeline_->RefreshProgress(job);
  }

  // The running report, over the chunks in the order they arrived, and
  // after a restart those already done (progress only: the final one is
  // summed in chunk order; a result that cannot be read is left out here).
  void OnCompleted(ActiveJob& job, size_t task, SchedulingContext& ctx) override {
    (void)task;
    ctx.WorkAppeared();  // the next pipeline stage of its chunk may start
    counted_.resize(job.rt.size(), false);
    for (size_t t = stages() - 1; t < job.rt.size(); t += stages()) {  // the scoring stage's tasks
      if (counted_[t] || !job.rt[t].finished()) continue;
      counted_[t] = true;
      absl::StatusOr<std::vector<EvalPosition>> positions = ReadPositions(job, *job.part, t);
      if (!positions.ok()) continue;
      for (const EvalPosition& p : *positions) running_.Add(p);
      ++running_chunks_;
    }
    if (running_chunks_ > 0) *job.job.mutable_report() = ReportToProto(running_.Report(running_chunks_));
  }

  // Sums the chunks in chunk order, writes the report, applies the gate
  // and moves the measured model where the gate sends it.
  absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) override {
    const v1::EvaluationOptions& o = job.job.evaluation();
    EvalAccumulator total;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      QF_ASSIGN_OR_RETURN(std::vector<EvalPosition> positions, ReadPositions(job, part, c * stages() + stages() - 1));
      for (const EvalPosition& p : positions) total.Add(p);
    }
    const EvalReport report = total.Report(static_cast<int>(chunks_.size()));
    JobOutcome outcome;
    outcome.report = ReportToProto(report);
    outcome.rejected = GateFailure(report, o.max_kld(), o.max_ppl_ratio());
    const std::string json = ReportJson(report).dump(2) + "\n";
    QF_RETURN_IF_ERROR(part.FinalizeWith({reinterpret_cast<const uint8_t*>(json.data()), json.size()}));
    if (!o.accept_as().empty()) {
      const std::string destination = outcome.rejected.empty() ? o.accept_as() : RejectedPath(o.accept_as());
      QF_RETURN_IF_ERROR(RenameDurably(job.job.input(), destination, env_.file_ops));
      if (!outcome.rejected.empty()) absl::StrAppend(&outcome.rejected, "; the model is kept as ", destination);
    }
    return outcome;
  }

 private:
  size_t stages() const { return pipeline_->stages(); }
  // Bytes of both streams leaving a stage of chunk `chunk`.
  size_t activation_bytes(size_t chunk) const {
    return 2 * chunks_[chunk].size() * static_cast<size_t>(n_embd_) * sizeof(float);
  }

  // Tasks and partial file from the job's plan.
  absl::Status CutTasks(ActiveJob& job) {
    QF_RETURN_IF_ERROR(pipeline_->SetStages(
        std::vector<int>(job.job.plan().stage_end_layers().begin(), job.job.plan().stage_end_layers().end())));
    std::vector<TaskDef> tasks;
    uint64_t offset = 0;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      for (size_t s = 0; s < stages(); ++s) {
        TaskDef d;
        d.unit = c;
        d.n_rows = 1;
        d.result_offset = offset;
        d.result_bytes =
            s + 1 < stages() ? activation_bytes(c) : ScoredPositions(chunks_[c].size()) * kEvalPositionBytes;
        offset += d.result_bytes;
        tasks.push_back(d);
      }
    }
    job.SetTasks(std::move(tasks), chunks_.size());
    QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(job.job.output(), job.job.id(), offset, env_.file_ops));
    job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
    job.job.set_bytes_total(static_cast<int64_t>(offset));
    counted_.clear();
    return absl::OkStatus();
  }

  // The scored positions that task `task` (of the scoring stage) wrote
  // into the partial file.
  absl::StatusOr<std::vector<EvalPosition>> ReadPositions(const ActiveJob& job, const PartFile& part,
                                                          size_t task) const {
    const TaskDef& def = job.tasks[task];
    const size_t c = def.unit;
    std::string bytes(def.result_bytes, '\0');
    QF_RETURN_IF_ERROR(part.PRead(bytes.data(), bytes.size(), def.result_offset));
    absl::StatusOr<std::vector<EvalPosition>> positions =
        DecodeEvalPositions(bytes, ScoredPositions(chunks_[c].size()));
    if (!positions.ok()) {
      return absl::DataLossError(absl::StrFormat("chunk %d: %s", c + 1, positions.status().message()));
    }
    return positions;
  }

  const KindEnvironment env_;
  std::shared_ptr<GgufModel> base_;
  std::vector<std::vector<TokenId>> chunks_;
  v1::ModelCopy model_copy_, base_copy_;  // what workers find or fetch their copies by
  int n_layer_ = 0;
  int n_embd_ = 0;
  std::optional<ChunkPipeline> pipeline_;  // set by Prepare; its stages once planned
  EvalAccumulator running_;
  int running_chunks_ = 0;
  std::vector<bool> counted_;  // per task: in running_ already
};

}  // namespace

std::unique_ptr<JobKind> NewEvaluationJob(const KindEnvironment& env) { return std::make_unique<EvaluationJob>(env); }

}  // namespace quantfleet
