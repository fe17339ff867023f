// The quantization job kind: wire options to the planner's, the plan of a
// job (types, layout, the partial file with its header), its cutting into
// row-range tasks, and what a worker is told about one. See coordinator.h.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "coordinator/coordinator.h"
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
    d.tensor = r.tensor;
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
  return o;
}

absl::Status Coordinator::Prepare(ActiveJob& job, const std::string& input, const std::string& output) {
  if (job.job.has_calibration()) return PrepareCalibration(job, input, output);
  QF_ASSIGN_OR_RETURN(QuantizeOptions options, OptionsFromProto(job.job.options()));
  absl::StatusOr<GgufModel> model = GgufModel::Open(input);
  if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
  job.model = std::make_shared<GgufModel>(std::move(*model));
  if (!options.imatrix_path.empty()) {
    QF_ASSIGN_OR_RETURN(std::string imatrix_path, paths_.ResolveInput(options.imatrix_path));
    absl::StatusOr<Imatrix> im = LoadImatrix(imatrix_path);
    if (!im.ok()) return absl::InvalidArgumentError(im.status().message());
    job.imatrix = std::move(*im);
    FilterImatrix(*job.imatrix, options.include_weights, options.exclude_weights);
  }
  absl::StatusOr<QuantizePlan> plan =
      BuildQuantizePlan(*job.model, options, job.imatrix ? &*job.imatrix : nullptr, /*dry_run=*/false);
  if (!plan.ok()) {
    return plan.status().code() == absl::StatusCode::kUnimplemented
               ? plan.status()
               : absl::Status(absl::StatusCode::kInvalidArgument, plan.status().message());
  }
  job.plan = std::move(*plan);
  job.tasks = CutTasks(job.plan, options_.task_result_bytes);
  job.rt.assign(job.tasks.size(), TaskRuntime());
  job.source_crc.assign(job.tasks.size(), std::nullopt);
  job.tensor_tasks_left.assign(job.plan.tensors.size(), 0);
  for (const TaskDef& t : job.tasks) ++job.tensor_tasks_left[t.tensor];
  for (const PlannedTensor& t : job.plan.tensors) job.tensor_layer.push_back(EntryLayer(t.output.name));
  QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(output, job.job.id(), job.plan.file_size(), options_.file_ops));
  QF_RETURN_IF_ERROR(job.part->PWrite(job.plan.meta.data(), job.plan.meta.size(), 0));
  job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
  job.job.set_bytes_total(static_cast<int64_t>(job.plan.output_bytes));
  job.job.set_tensors_total(static_cast<int64_t>(job.plan.tensors.size()));
  return absl::OkStatus();
}

void Coordinator::DescribeQuantizeTask(const ActiveJob& job, size_t task, v1::TaskSpec* spec) {
  const TaskDef& def = job.tasks[task];
  const PlannedTensor& pt = job.plan.tensors[def.tensor];
  spec->set_tensor(pt.output.name);
  spec->set_source_type(std::string(TypeName(pt.source->info.type)));
  spec->set_target_type(std::string(TypeName(pt.output.type)));
  spec->set_n_per_row(pt.output.ne[0]);
  spec->set_n_rows(def.n_rows);
  spec->set_source_bytes(static_cast<int64_t>(def.source_bytes));
  spec->set_convert(pt.convert);
  const ModelTensor* src = pt.source;
  spec->set_source_path(job.model->part(src->split).path());
  spec->set_source_file_offset(static_cast<int64_t>(src->file_offset + def.source_offset));
  if (pt.imatrix) {
    const int64_t expert = def.first_row / pt.output.ne[1];
    const float* w0 = pt.imatrix->data() + expert * pt.output.ne[0];
    spec->mutable_imatrix()->Add(w0, w0 + pt.output.ne[0]);
  }
}

Coordinator::SourceCrcRequest Coordinator::SourceCrcRequestFor(const ActiveJob& job, size_t task) {
  const TaskDef& def = job.tasks[task];
  const ModelTensor* src = job.plan.tensors[def.tensor].source;
  SourceCrcRequest r;
  r.model = job.model;
  r.job_id = job.job.id();
  r.task = task;
  r.data = src->data + def.source_offset;
  r.bytes = def.source_bytes;
  r.split = src->split;
  r.file_offset = src->file_offset + def.source_offset;
  return r;
}

}  // namespace quantfleet
