// The type-choice job kind: one task per layer of matrices to measure, the
// costs decoded and allocated into one type per matrix. See
// type_choice_job.h.
#include "coordinator/type_choice_job.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "coordinator/chunk_pipeline.h"
#include "coordinator/converted_model.h"
#include "coordinator/job_text.h"
#include "coordinator/model_copy.h"
#include "coordinator/quantize_job.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/type_choice.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

namespace {

// Task g measures group g of the matrices (one layer's); its result (their
// costs) lies in the partial file at its result_offset.
class TypeChoiceJob final : public JobKind {
 public:
  explicit TypeChoiceJob(const KindEnvironment& env) : env_(env) {}

  absl::Status Prepare(ActiveJob& job) override {
    const v1::TargetSizeOptions& target = job.job.type_choice().target();
    if (target.file_bytes() <= 0 && !(target.bits_per_weight() > 0)) {
      return absl::InvalidArgumentError("a type choice needs a file size or bits per weight");
    }
    if (target.text().empty()) return absl::InvalidArgumentError("a type choice needs a text to measure on");
    const int ctx = target.ctx() > 0 ? target.ctx() : 256;
    QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
    QF_ASSIGN_OR_RETURN(const JobText text, ReadJobText(*env_.paths, target.text()));
    // Workers copy a GGUF file: a checkpoint folder is converted once.
    QF_ASSIGN_OR_RETURN(std::string served, GgufForWorkers(job.job.input(), env_.converted_dir));
    absl::StatusOr<GgufModel> model = GgufModel::Open(served);
    if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
    job.model = std::make_shared<GgufModel>(*std::move(model));
    absl::StatusOr<LlamaModel> llama = LlamaModel::Load(*job.model, job.job.input());  // the workers run it
    if (!llama.ok()) return llama.status();
    // One stage: each measurement runs the model from the matrix's layer to
    // the logits, so a worker holds all of it.
    const int n_layer = llama->hparams().n_layer;
    pipeline_.emplace(
        FootprintOf(*job.model, n_layer),
        [](const v1::WorkerInfo& info) { return std::optional<uint64_t>(static_cast<uint64_t>(info.memory_bytes())); },
        "the model", "workers' --memory");
    QF_RETURN_IF_ERROR(pipeline_->SetStages({n_layer}));
    QuantizePlan plan;
    QF_RETURN_IF_ERROR(PlanQuantization(*job.model, job.job.type_choice().options(), *env_.paths, &imatrix_, &plan));
    QF_ASSIGN_OR_RETURN(problem_,
                        TypeChoiceFor(plan, static_cast<uint64_t>(target.file_bytes()), target.bits_per_weight()));
    // Cut as `quantfleet quantize --target-size` cuts it.
    QF_ASSIGN_OR_RETURN(const std::vector<std::vector<TokenId>> chunks,
                        CutJobText(text, *job.model, job.job.input(), ctx,
                                   target.max_chunks() > 0 ? target.max_chunks() : 8, /*parse_special=*/false));
    for (const std::vector<TokenId>& c : chunks) tokens_.insert(tokens_.end(), c.begin(), c.end());
    ctx_ = ctx;
    model_copy_ = ModelCopyOf(*job.model);
    groups_ = GroupByLayer(problem_.names);
    std::vector<TaskDef> tasks;
    uint64_t offset = 0;
    for (size_t g = 0; g < groups_.size(); ++g) {
      TaskDef d;
      d.unit = g;
      d.n_rows = 1;
      d.result_offset = offset;
      d.result_bytes = TypeCostsBytes(problem_, groups_[g]);
      offset += d.result_bytes;
      tasks.push_back(d);
    }
    job.SetTasks(std::move(tasks), groups_.size());
    QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(job.job.output(), job.job.id(), offset, env_.file_ops));
    job.job.set_tensors_total(static_cast<int64_t>(groups_.size()));
    job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
    job.job.set_bytes_total(static_cast<int64_t>(offset));
    return absl::OkStatus();
  }

  bool TasksCut(const ActiveJob& job) const override {
    (void)job;
    return true;
  }

  // Any pending group, for a worker that can hold the whole model.
  absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                 const v1::WorkerInfo& info, SchedulingContext& ctx) override {
    const std::optional<size_t> task = pipeline_->NextTask(job, worker_id, info, ctx);
    pipeline_->UpdateWaiting(job, ctx);
    return task;
  }

  void Describe(const ActiveJob& job, size_t task, v1::TaskSpec* spec) const override {
    spec->set_tensor(TaskLabel(job, task));
    spec->set_source_path(job.model->part(0).path());
    v1::TypeCostTask* costs = spec->mutable_type_costs();
    *costs->mutable_model() = model_copy_;
    costs->mutable_tokens()->Add(tokens_.begin(), tokens_.end());
    costs->set_ctx(ctx_);
    for (const std::string& name : groups_[job.tasks[task].unit]) {
      costs->add_names(name);
      if (!imatrix_) continue;
      const auto w = imatrix_->weights.find(name);
      if (w == imatrix_->weights.end()) continue;
      v1::ImportanceWeights* weights = costs->add_weights();
      weights->set_name(name);
      weights->mutable_values()->Add(w->second.begin(), w->second.end());
    }
  }

  std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const override {
    (void)job, (void)task;
    return std::nullopt;
  }

  absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const override {
    (void)task;  // every task may stream the whole model
    if (which.base) return absl::InvalidArgumentError("a type choice has no base model");
    return WholePart(job.model, which.part, "the model");
  }

  void ReleaseInputs() override {
    imatrix_.reset();
    tokens_ = {};
  }

  std::string TaskLabel(const ActiveJob& job, size_t task) const override {
    const std::vector<std::string>& group = groups_[job.tasks[task].unit];
    return group.size() == 1 ? absl::StrFormat("the types of '%s'", group.front())
                             : absl::StrFormat("the types of %d matrices from '%s'", group.size(), group.front());
  }

  // Decodes every group's costs, allocates, and writes the choice.
  absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) override {
    std::vector<TensorCosts> costs;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const TaskDef& def = job.tasks[g];
      std::string bytes(def.result_bytes, '\0');
      QF_RETURN_IF_ERROR(part.PRead(bytes.data(), bytes.size(), def.result_offset));
      absl::StatusOr<std::vector<TensorCosts>> group = DecodeTypeCosts(bytes, problem_, groups_[g]);
      if (!group.ok())
        return absl::DataLossError(absl::StrFormat("%s: %s", TaskLabel(job, g), group.status().message()));
      costs.insert(costs.end(), group->begin(), group->end());
    }
    QF_ASSIGN_OR_RETURN(TypeChoice choice, ChooseTypes(problem_, costs));
    // The quantization that follows, planned with the choice, fits.
    if (job.job.type_choice().target().file_bytes() > 0) {
      QF_ASSIGN_OR_RETURN(QuantizeOptions options, OptionsFromProto(job.job.type_choice().options()));
      options.tensor_types.insert(options.tensor_types.begin(), choice.overrides.begin(), choice.overrides.end());
      QF_ASSIGN_OR_RETURN(QuantizePlan plan, BuildQuantizePlan(*job.model, options, imatrix_ ? &*imatrix_ : nullptr,
                                                               /*dry_run=*/false));
      if (plan.file_size() > problem_.file_bytes) {
        return absl::InternalError(absl::StrFormat("the chosen types make %d bytes, over the %d asked for",
                                                   plan.file_size(), problem_.file_bytes));
      }
    }
    nlohmann::json types = nlohmann::json::object();
    for (size_t t = 0; t < costs.size(); ++t) types[costs[t].name] = std::string(TypeName(choice.overrides[t].type));
    const nlohmann::json report = {{"file_bytes", problem_.file_bytes},
                                   {"budget_bytes", problem_.budget_bytes},
                                   {"expected_kld", choice.expected_kld},
                                   {"recipe_kld", choice.recipe_kld},
                                   {"types", types}};
    const std::string json = report.dump(2) + "\n";
    QF_RETURN_IF_ERROR(part.FinalizeWith({reinterpret_cast<const uint8_t*>(json.data()), json.size()}));
    JobOutcome outcome;
    outcome.then_tensor_types = choice.specs;
    outcome.expected_kld = choice.expected_kld;
    return outcome;
  }

 private:
  const KindEnvironment env_;
  std::optional<Imatrix> imatrix_;
  TypeChoiceProblem problem_;
  std::vector<std::vector<std::string>> groups_;  // one task each
  std::vector<TokenId> tokens_;                   // the chunks, one after another
  int ctx_ = 256;
  v1::ModelCopy model_copy_;
  std::optional<ChunkPipeline> pipeline_;  // one stage: which worker can hold the model, what waits
};

}  // namespace

std::unique_ptr<JobKind> NewTypeChoiceJob(const KindEnvironment& env) { return std::make_unique<TypeChoiceJob>(env); }

}  // namespace quantfleet
