// The layerwise quantization job kind: the plan and its row tasks, one
// task per layer solved in layer order, and the artifact assembled from
// both. See layerwise_job.h.
#include "coordinator/layerwise_job.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "coordinator/converted_model.h"
#include "coordinator/job_text.h"
#include "coordinator/model_copy.h"
#include "coordinator/quantize_job.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/chunk_statistics.h"
#include "core/calibration/layerwise_selection.h"
#include "core/model/llama_model.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// What a layer's task description may take (gRPC's 4 MiB, less room).
constexpr uint64_t kMaxSpecBytes = uint64_t{7} << 19;

// Tasks [0, first_layer_task_) are row ranges of the tensors the method
// leaves to each type's own quantizer (their unit is the plan's tensor);
// task first_layer_task_ + l solves layer l (unit: plan size + l).
class LayerwiseJob final : public JobKind {
 public:
  explicit LayerwiseJob(const KindEnvironment& env) : env_(env) {}

  absl::Status Prepare(ActiveJob& job) override {
    const v1::LayerwiseMethod& method = job.job.options().method();
    QF_RETURN_IF_ERROR(CheckLayerwiseMethod(method));
    const int ctx = method.ctx() > 0 ? method.ctx() : 256;
    QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
    QF_ASSIGN_OR_RETURN(const JobText text, ReadJobText(*env_.paths, method.text()));
    // Workers copy a GGUF file: a checkpoint folder is converted once, and
    // the row tasks read the same file.
    QF_ASSIGN_OR_RETURN(std::string served, GgufForWorkers(job.job.input(), env_.converted_dir));
    absl::StatusOr<GgufModel> model = GgufModel::Open(served);
    if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
    job.model = std::make_shared<GgufModel>(*std::move(model));
    QF_RETURN_IF_ERROR(PlanQuantization(*job.model, job.job.options(), *env_.paths, &imatrix_, &plan_));
    absl::StatusOr<LlamaModel> llama = LlamaModel::Load(*job.model, job.job.input());  // the workers run it
    if (!llama.ok()) return llama.status();
    // Cut as `quantfleet quantize --method` cuts it.
    QF_ASSIGN_OR_RETURN(const std::vector<std::vector<TokenId>> chunks,
                        CutJobText(text, *job.model, job.job.input(), ctx,
                                   method.max_chunks() > 0 ? method.max_chunks() : 8, /*parse_special=*/false));
    for (const std::vector<TokenId>& c : chunks) tokens_.insert(tokens_.end(), c.begin(), c.end());
    ctx_ = ctx;
    n_chunks_ = chunks.size();
    model_copy_ = ModelCopyOf(*job.model);
    const bool awq = method.name().starts_with("awq"), gptq = method.name().ends_with("gptq");
    selection_ = SelectLayerwise(*llama, plan_, awq, gptq, /*own_solver=*/false);
    const int n_layer = selection_.handled.empty() ? 0 : llama->hparams().n_layer;
    activation_bytes_ = tokens_.size() * static_cast<uint64_t>(llama->hparams().n_embd) * sizeof(float);
    layer_tensors_.clear();
    layer_bytes_ = 0;
    for (int l = 0; l < n_layer; ++l) {
      layer_tensors_.push_back(TensorsOfLayer(*llama, selection_, l));
      layer_bytes_ =
          std::max(layer_bytes_, LayerSolveBytes(llama->layers()[static_cast<size_t>(l)], activation_bytes_));
      // A layer's task carries the tokens and its importance weights in one
      // message, which gRPC caps at 4 MiB.
      uint64_t spec_bytes = tokens_.size() * 5 + (uint64_t{64} << 10);
      for (const std::string& name : layer_tensors_.back()) {
        const PlannedTensor& t = plan_.tensors[selection_.handled.at(name)];
        spec_bytes += t.imatrix ? t.imatrix->size() * sizeof(float) : 0;
      }
      if (spec_bytes > kMaxSpecBytes) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "layer %d's task would carry %d KiB (the chunks' %d tokens and its importance weights), more than a "
            "message to a worker may (%d KiB): give fewer --chunks or a smaller --ctx",
            l, spec_bytes >> 10, tokens_.size(), kMaxSpecBytes >> 10));
      }
    }

    // The row tasks, then the layers' results after the artifact's bytes.
    std::vector<TaskDef> tasks;
    for (TaskDef& d : CutTasks(plan_, env_.task_result_bytes)) {
      if (!selection_.handled.contains(plan_.tensors[d.unit].output.name)) tasks.push_back(d);
    }
    first_layer_task_ = tasks.size();
    uint64_t offset = plan_.file_size();
    for (int l = 0; l < n_layer; ++l) {
      TaskDef d;
      d.unit = plan_.tensors.size() + static_cast<size_t>(l);
      d.n_rows = 1;
      d.result_offset = offset;
      d.result_bytes = layer_activation_bytes(l);
      for (const std::string& name : layer_tensors_[static_cast<size_t>(l)]) {
        d.result_bytes += plan_.tensors[selection_.handled.at(name)].output.nbytes;
      }
      offset += d.result_bytes;
      tasks.push_back(d);
    }
    job.SetTasks(std::move(tasks), plan_.tensors.size() + static_cast<size_t>(n_layer));
    // A partial file already cut to the artifact's size had every solved
    // tensor moved into place (Finish cuts it only then): keep it so.
    const std::string part_path = PartFile::PathFor(job.job.output(), job.job.id());
    std::error_code ec;
    moved_ = offset > plan_.file_size() && std::filesystem::file_size(part_path, ec) == plan_.file_size() && !ec;
    QF_ASSIGN_OR_RETURN(
        job.part, PartFile::Open(job.job.output(), job.job.id(), moved_ ? plan_.file_size() : offset, env_.file_ops));
    QF_RETURN_IF_ERROR(job.part->PWrite(plan_.meta.data(), plan_.meta.size(), 0));
    job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
    uint64_t result_bytes = 0;
    for (const TaskDef& d : job.tasks) result_bytes += d.result_bytes;
    job.job.set_bytes_total(static_cast<int64_t>(result_bytes));
    job.job.set_layers_total(n_layer);
    job.job.set_tensors_total(static_cast<int64_t>(plan_.tensors.size()));
    return absl::OkStatus();
  }

  bool TasksCut(const ActiveJob& job) const override {
    (void)job;
    return true;
  }

  // The next layer first (every layer waits on the one before it), then
  // any row task. A layer goes to the worker that solved the one before
  // it while that worker lives: it kept the activations the layer starts
  // from (the layers run one at a time anyway).
  absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                 const v1::WorkerInfo& info, SchedulingContext& ctx) override {
    UpdateWaiting(job, ctx);
    for (size_t t = first_layer_task_; t < job.tasks.size() && HoldsALayer(info); ++t) {
      if (job.rt[t].finished()) continue;
      if (job.rt[t].state != TaskState::kPending) break;  // in flight: the layers after it wait
      // After a failure the layer may go anywhere: its worker's trouble
      // may be its own (a full cache disk).
      const std::string& before = t > first_layer_task_ ? job.rt[t - 1].worker : "";
      if (before.empty() || before == worker_id || !ctx.Live(before) || job.rt[t].failures > 0) return t;
      break;
    }
    for (size_t t = 0; t < first_layer_task_; ++t) {
      if (job.rt[t].state == TaskState::kPending) return t;
    }
    return std::nullopt;
  }

  void Describe(const ActiveJob& job, size_t task, v1::TaskSpec* spec) const override {
    if (task < first_layer_task_) return DescribeRowTask(plan_, job, task, spec);
    const int layer = LayerOf(task);
    spec->set_tensor(TaskLabel(job, task));
    spec->set_source_path(job.model->part(0).path());
    v1::LayerSolveTask* solve = spec->mutable_layer_solve();
    *solve->mutable_model() = model_copy_;
    solve->set_layer(layer);
    solve->mutable_tokens()->Add(tokens_.begin(), tokens_.end());
    solve->set_ctx(ctx_);
    const v1::LayerwiseMethod& method = job.job.options().method();
    solve->set_fold(selection_.fold);
    solve->set_gptq(method.name().ends_with("gptq"));
    solve->set_damp(method.damp());
    solve->set_act_order(method.act_order());
    solve->set_activation_bytes(layer > 0 ? static_cast<int64_t>(activation_bytes_) : 0);
    solve->set_output_activation_bytes(static_cast<int64_t>(layer_activation_bytes(layer)));
    if (layer > 0 && job.rt[task - 1].finished()) solve->set_input_result_crc32c(job.rt[task - 1].crc);
    for (const std::string& name : layer_tensors_[static_cast<size_t>(layer)]) {
      const PlannedTensor& t = plan_.tensors[selection_.handled.at(name)];
      v1::LayerTensor* out = solve->add_tensors();
      out->set_name(name);
      out->set_type(std::string(TypeName(t.output.type)));
      if (t.imatrix) out->mutable_imatrix()->Add(t.imatrix->begin(), t.imatrix->end());
    }
  }

  std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const override {
    if (task < first_layer_task_) return RowTaskSource(plan_, job, task);
    return std::nullopt;  // a layer's worker reads its own copy of the model, checked by its id
  }

  absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const override {
    if (task < first_layer_task_) return RowTaskSource(plan_, job, task);
    if (which.base) return absl::InvalidArgumentError("a layerwise quantization has no base model");
    return WholePart(job.model, which.part, "the model");
  }

  // The previous layer's result starts with them.
  std::optional<std::pair<uint64_t, uint64_t>> InputActivations(const ActiveJob& job, size_t task) const override {
    if (task <= first_layer_task_) return std::nullopt;
    return std::make_pair(job.tasks[task - 1].result_offset, activation_bytes_);
  }

  std::string TaskLabel(const ActiveJob& job, size_t task) const override {
    if (task < first_layer_task_) {
      return absl::StrFormat("tensor '%s'", plan_.tensors[job.tasks[task].unit].output.name);
    }
    return absl::StrFormat("layer %d of %d (%s, %d chunks)", LayerOf(task) + 1, layer_tensors_.size(),
                           job.job.options().method().name(), n_chunks_);
  }

  void OnCompleted(ActiveJob& job, size_t task, SchedulingContext& ctx) override {
    (void)job;
    if (task >= first_layer_task_) ctx.WorkAppeared();  // the next layer may start
  }

  // A durable layer no longer needs the activations it started from.
  void OnDurable(ActiveJob& job, size_t task) override {
    if (const std::optional<std::pair<uint64_t, uint64_t>> input = InputActivations(job, task)) {
      job.part->Release(input->first, input->second);
    }
  }

  // Tensors done: a row tensor's tasks all durable, a solved one's layer.
  void RefreshProgress(ActiveJob& job) const override {
    int layers = 0;
    std::string in_flight;
    for (size_t t = first_layer_task_; t < job.rt.size(); ++t) {
      layers += job.rt[t].state == TaskState::kDone ? 1 : 0;
      if (job.rt[t].state != TaskState::kLeased) continue;
      in_flight = absl::StrFormat("layer %d of %d on %s", LayerOf(t) + 1, layer_tensors_.size(), job.rt[t].worker);
      if (!job.rt[t].progress.empty()) absl::StrAppend(&in_flight, ": ", job.rt[t].progress);
    }
    job.job.set_layers_done(layers);
    job.job.set_layer_progress(in_flight);
    int64_t done = 0;
    for (size_t i = 0; i < plan_.tensors.size(); ++i) {
      auto h = selection_.handled.find(plan_.tensors[i].output.name);
      if (h == selection_.handled.end()) {
        done += job.unit_tasks_left[i] == 0 ? 1 : 0;
        continue;
      }
      const int layer = EntryLayer(h->first);
      const size_t task = first_layer_task_ + static_cast<size_t>(layer);
      done += layer >= 0 && task < job.rt.size() && job.rt[task].state == TaskState::kDone ? 1 : 0;
    }
    job.job.set_tensors_done(done);
  }

  // Moves each solved tensor to its offset, cuts the layers' results off
  // and renames the artifact into place.
  absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) override {
    if (!moved_) {
      std::vector<uint8_t> bytes;
      for (size_t l = 0; l < layer_tensors_.size(); ++l) {
        const TaskDef& def = job.tasks[first_layer_task_ + l];
        uint64_t at = def.result_offset + layer_activation_bytes(static_cast<int>(l));
        for (const std::string& name : layer_tensors_[l]) {
          const GgufTensorInfo& out = plan_.tensors[selection_.handled.at(name)].output;
          for (uint64_t done = 0; done < out.nbytes; done += bytes.size()) {  // 64 MiB at a time
            bytes.resize(std::min<uint64_t>(out.nbytes - done, uint64_t{64} << 20));
            QF_RETURN_IF_ERROR(part.PRead(bytes.data(), bytes.size(), at + done));
            QF_RETURN_IF_ERROR(part.PWrite(bytes.data(), bytes.size(), plan_.meta.size() + out.offset + done));
          }
          at += out.nbytes;
        }
      }
      QF_RETURN_IF_ERROR(part.Sync());  // everything in place before what it came from goes
      QF_RETURN_IF_ERROR(part.Truncate(plan_.file_size()));
      moved_ = true;
    }
    QF_RETURN_IF_ERROR(part.Finalize());
    return JobOutcome();
  }

  void ReleaseInputs() override {
    imatrix_.reset();
    tokens_ = {};
  }

 private:
  int LayerOf(size_t task) const { return static_cast<int>(task - first_layer_task_); }
  // Whether a worker registered with `info` may hold a layer's solve.
  bool HoldsALayer(const v1::WorkerInfo& info) const {
    return info.memory_bytes() <= 0 || static_cast<uint64_t>(info.memory_bytes()) >= layer_bytes_;
  }
  // Says in the job's `waiting` when layers are left and no live worker
  // may hold one; clears it otherwise.
  void UpdateWaiting(ActiveJob& job, const SchedulingContext& ctx) const {
    bool left = false;
    for (size_t t = first_layer_task_; t < job.tasks.size(); ++t) left = left || !job.rt[t].finished();
    bool held = false;
    for (const auto& [id, info] : ctx.LiveWorkers()) held = held || HoldsALayer(*info);
    job.job.set_waiting(left && !held ? absl::StrFormat("the layers (%d MiB each to solve) wait for a worker that can "
                                                        "hold one (--memory)",
                                                        (layer_bytes_ + (uint64_t{1} << 20) - 1) >> 20)
                                      : "");
  }
  // Bytes of the activations layer `layer`'s result starts with (none
  // after the last layer).
  uint64_t layer_activation_bytes(int layer) const {
    return static_cast<size_t>(layer) + 1 < layer_tensors_.size() ? activation_bytes_ : 0;
  }

  const KindEnvironment env_;
  std::optional<Imatrix> imatrix_;
  QuantizePlan plan_;
  LayerwiseSelection selection_;
  std::vector<std::vector<std::string>> layer_tensors_;  // per layer, the solved tensors in plan order
  std::vector<TokenId> tokens_;                          // the chunks, one after another
  int ctx_ = 256;
  size_t n_chunks_ = 0;
  uint64_t activation_bytes_ = 0;  // entering or leaving a layer, every chunk
  uint64_t layer_bytes_ = 0;       // the most a layer's solve holds (LayerSolveBytes)
  v1::ModelCopy model_copy_;
  size_t first_layer_task_ = 0;
  bool moved_ = false;  // the solved tensors are in place and the file is cut to the artifact
};

}  // namespace

absl::Status CheckLayerwiseMethod(const v1::LayerwiseMethod& m) {
  if (m.name() != "gptq" && m.name() != "awq" && m.name() != "awq+gptq") {
    return absl::InvalidArgumentError(
        absl::StrFormat("method '%s': expected gptq, awq or awq+gptq (rtn is the default, with no method)", m.name()));
  }
  if (m.text().empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("method %s needs a calibration text to measure the layers' inputs over", m.name()));
  }
  if (m.ctx() < 0 || m.max_chunks() < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("method %s: a negative ctx or chunk count", m.name()));
  }
  if (!(m.damp() >= 0) || m.damp() > 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("method %s: damp %g is not in [0, 1] (0: the default, 0.01)", m.name(), m.damp()));
  }
  if ((m.damp() > 0 || m.act_order()) && m.name() == "awq") {
    return absl::InvalidArgumentError("damp and act_order are GPTQ's: give them with gptq or awq+gptq");
  }
  return absl::OkStatus();
}

std::unique_ptr<JobKind> NewLayerwiseJob(const KindEnvironment& env) { return std::make_unique<LayerwiseJob>(env); }

}  // namespace quantfleet
