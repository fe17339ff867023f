// The quantization job kind: wire options to the planner's, the plan of a
// job (types, layout, the partial file with its header), its cutting into
// row-range tasks, and what a worker is told about one. See quantize_job.h.
#include "coordinator/quantize_job.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"
#include "coordinator/layerwise_job.h"
#include "core/calibration/chunk_statistics.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/quant/file_type.h"
#include "core/quant/row_ranges.h"
#include "core/util/status_macros.h"

namespace quantfleet {

std::vector<TaskDef> CutTasks(const QuantizePlan& plan, uint64_t target_result_bytes) {
  // About `target_result_bytes` of output per task; the source side is
  // bounded too (four times that), so a worker's buffers stay small.
  auto max_rows = [target_result_bytes](const PlannedTensor& t) {
    const uint64_t rows = static_cast<uint64_t>(t.output.n_rows());
    const uint64_t by_out = std::max<uint64_t>(1, target_result_bytes / (t.output.nbytes / rows));
    const uint64_t by_src = std::max<uint64_t>(1, 4 * target_result_bytes / (t.source->info.nbytes / rows));
    return static_cast<int64_t>(std::min(by_out, by_src));
  };
  std::vector<TaskDef> tasks;
  for (const RowRange& r : CutRowRanges(plan, max_rows)) {
    const PlannedTensor& t = plan.tensors[r.tensor];
    const uint64_t out_row = t.output.nbytes / static_cast<uint64_t>(t.output.n_rows());
    const uint64_t src_row = t.source->info.nbytes / static_cast<uint64_t>(t.output.n_rows());
    TaskDef d;
    d.unit = r.tensor;
    d.first_row = r.first_row;
    d.n_rows = r.n_rows;
    d.source_offset = static_cast<uint64_t>(r.first_row) * src_row;
    d.source_bytes = static_cast<uint64_t>(r.n_rows) * src_row;
    d.result_offset = plan.meta.size() + t.output.offset + static_cast<uint64_t>(r.first_row) * out_row;
    d.result_bytes = static_cast<uint64_t>(r.n_rows) * out_row;
    tasks.push_back(d);
  }
  return tasks;
}

absl::StatusOr<QuantizeOptions> OptionsFromProto(const v1::QuantizeOptions& p) {
  QuantizeOptions o;
  std::optional<FileTypeOption> ft = ParseFileType(p.file_type());
  if (!ft) return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a file type (e.g. Q4_K_M)", p.file_type()));
  o.file_type = *ft;
  auto type = [](const std::string& flag, const std::string& v) -> absl::StatusOr<std::optional<GgmlType>> {
    if (v.empty()) return std::optional<GgmlType>();
    std::optional<GgmlType> t = ParseGgmlTypeName(v);
    if (!t) return absl::InvalidArgumentError(absl::StrFormat("%s: '%s' is not a tensor type", flag, v));
    return t;
  };
  QF_ASSIGN_OR_RETURN(o.output_tensor_type, type("--output-tensor-type", p.output_tensor_type()));
  QF_ASSIGN_OR_RETURN(o.token_embedding_type, type("--token-embedding-type", p.token_embedding_type()));
  o.leave_output_tensor = p.leave_output_tensor();
  o.pure = p.pure();
  o.allow_requantize = p.allow_requantize();
  for (const std::string& s : p.tensor_types()) {
    QF_ASSIGN_OR_RETURN(TensorTypeOverride t, ParseTensorTypeOverride(s));
    o.tensor_types.push_back(t);
  }
  for (const std::string& s : p.override_kv()) {
    QF_ASSIGN_OR_RETURN(GgufKv kv, ParseKvOverride(s));
    o.kv_overrides.push_back(std::move(kv));
  }
  o.imatrix_path = p.imatrix();
  o.include_weights.assign(p.include_weights().begin(), p.include_weights().end());
  o.exclude_weights.assign(p.exclude_weights().begin(), p.exclude_weights().end());
  if (!o.include_weights.empty() && !o.exclude_weights.empty()) {
    return absl::InvalidArgumentError("--include-weights and --exclude-weights cannot be used together");
  }
  if (p.has_method()) QF_RETURN_IF_ERROR(CheckLayerwiseMethod(p.method()));
  return o;
}

absl::Status PlanQuantization(const GgufModel& model, const v1::QuantizeOptions& proto, const PathPolicy& paths,
                              std::optional<Imatrix>* imatrix, QuantizePlan* plan) {
  QF_ASSIGN_OR_RETURN(QuantizeOptions options, OptionsFromProto(proto));
  if (!options.imatrix_path.empty()) {
    QF_ASSIGN_OR_RETURN(std::string imatrix_path, paths.ResolveInput(options.imatrix_path));
    absl::StatusOr<Imatrix> im = LoadImatrix(imatrix_path);
    if (!im.ok()) return absl::InvalidArgumentError(im.status().message());
    *imatrix = std::move(*im);
    FilterImatrix(**imatrix, options.include_weights, options.exclude_weights);
  }
  absl::StatusOr<QuantizePlan> planned =
      BuildQuantizePlan(model, options, *imatrix ? &**imatrix : nullptr, /*dry_run=*/false);
  if (!planned.ok()) {
    return planned.status().code() == absl::StatusCode::kUnimplemented
               ? planned.status()
               : absl::Status(absl::StatusCode::kInvalidArgument, planned.status().message());
  }
  *plan = std::move(*planned);
  return absl::OkStatus();
}

void DescribeRowTask(const QuantizePlan& plan, const ActiveJob& job, size_t task, v1::TaskSpec* spec) {
  const TaskDef& def = job.tasks[task];
  const PlannedTensor& pt = plan.tensors[def.unit];
  spec->set_tensor(pt.output.name);
  spec->set_source_type(std::string(TypeName(pt.source->info.type)));
  spec->set_target_type(std::string(TypeName(pt.output.type)));
  spec->set_n_per_row(pt.output.ne[0]);
  spec->set_n_rows(def.n_rows);
  spec->set_source_bytes(static_cast<int64_t>(def.source_bytes));
  spec->set_convert(pt.convert);
  const ModelTensor* src = pt.source;
  // Rows produced in the coordinator's memory have no file to read.
  if (!job.model->part(src->split).anonymous()) spec->set_source_path(job.model->part(src->split).path());
  spec->set_source_file_offset(static_cast<int64_t>(src->file_offset + def.source_offset));
  if (pt.imatrix) {
    const int64_t expert = def.first_row / pt.output.ne[1];
    const float* w0 = pt.imatrix->data() + expert * pt.output.ne[0];
    spec->mutable_imatrix()->Add(w0, w0 + pt.output.ne[0]);
  }
}

SourceSpan RowTaskSource(const QuantizePlan& plan, const ActiveJob& job, size_t task) {
  const TaskDef& def = job.tasks[task];
  const ModelTensor* src = plan.tensors[def.unit].source;
  SourceSpan span;
  span.file = job.model;
  span.split = src->split;
  span.data = src->data + def.source_offset;
  span.bytes = def.source_bytes;
  span.file_offset = src->file_offset + def.source_offset;
  return span;
}

namespace {

class QuantizeJob final : public JobKind {
 public:
  explicit QuantizeJob(const KindEnvironment& env) : env_(env) {}

  absl::Status Prepare(ActiveJob& job) override {
    // A checkpoint folder is converted as it is read: rows the checkpoint
    // holds as they are are served (or read by workers) in place.
    absl::StatusOr<GgufModel> model = OpenModel(job.job.input());
    if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
    job.model = std::make_shared<GgufModel>(std::move(*model));
    QF_RETURN_IF_ERROR(PlanQuantization(*job.model, job.job.options(), *env_.paths, &imatrix_, &plan_));
    job.SetTasks(CutTasks(plan_, env_.task_result_bytes), plan_.tensors.size());
    for (const PlannedTensor& t : plan_.tensors) tensor_layer_.push_back(EntryLayer(t.output.name));
    QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(job.job.output(), job.job.id(), plan_.file_size(), env_.file_ops));
    QF_RETURN_IF_ERROR(job.part->PWrite(plan_.meta.data(), plan_.meta.size(), 0));
    job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
    job.job.set_bytes_total(static_cast<int64_t>(plan_.output_bytes));
    job.job.set_tensors_total(static_cast<int64_t>(plan_.tensors.size()));
    return absl::OkStatus();
  }

  bool TasksCut(const ActiveJob& job) const override {
    (void)job;
    return true;
  }

  absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                 const v1::WorkerInfo& info, SchedulingContext& ctx) override {
    (void)worker_id;
    // After a pipelined calibration: a first pass over the layers this
    // worker held (or whose holder is gone), then any task.
    const bool prefer = job.job.layer_workers_size() > 0;
    const std::vector<bool> preferred = prefer ? PreferredLayers(job, info.name(), ctx) : std::vector<bool>();
    for (int pass = prefer ? 0 : 1; pass < 2; ++pass) {
      for (size_t t = 0; t < job.rt.size(); ++t) {
        if (job.rt[t].state != TaskState::kPending) continue;
        if (pass == 0) {
          const int layer = tensor_layer_[job.tasks[t].unit];
          if (layer < 0 || layer >= static_cast<int>(preferred.size()) || !preferred[layer]) continue;
        }
        return t;
      }
    }
    return std::nullopt;
  }

  void Describe(const ActiveJob& job, size_t task, v1::TaskSpec* spec) const override {
    DescribeRowTask(plan_, job, task, spec);
  }

  std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const override {
    return RowTaskSource(plan_, job, task);
  }

  absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const override {
    (void)which;  // a task's rows lie in one part, which the tensor names
    return RowTaskSource(plan_, job, task);
  }

  std::string TaskLabel(const ActiveJob& job, size_t task) const override {
    return absl::StrFormat("tensor '%s'", plan_.tensors[job.tasks[task].unit].output.name);
  }

  absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) override {
    (void)job;
    QF_RETURN_IF_ERROR(part.Finalize());
    return JobOutcome();
  }

 private:
  // Per layer, whether its tasks go first to the worker named
  // `worker_name`: it held the layer in the pipeline before, or the
  // layer's holder is gone.
  static std::vector<bool> PreferredLayers(const ActiveJob& job, const std::string& worker_name,
                                           const SchedulingContext& ctx) {
    std::set<std::string> live;  // names of the live workers
    for (const auto& [id, info] : ctx.LiveWorkers()) live.insert(info->name());
    std::vector<bool> preferred;
    for (const std::string& holder : job.job.layer_workers()) {
      preferred.push_back(holder == worker_name || live.count(holder) == 0);
    }
    return preferred;
  }

  const KindEnvironment env_;
  std::optional<Imatrix> imatrix_;
  QuantizePlan plan_;
  std::vector<int> tensor_layer_;  // the block of each planned tensor (-1: none)
};

}  // namespace

std::unique_ptr<JobKind> NewQuantizeJob(const KindEnvironment& env) { return std::make_unique<QuantizeJob>(env); }

}  // namespace quantfleet
