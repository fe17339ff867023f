#include "coordinator/coordinator.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/request_limits.h"
#include "core/io/mapped_file.h"
#include "core/quant/file_type.h"
#include "core/util/crc32c.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"
#include "core/calibration/imatrix_run.h"
#include "core/model/tokenizer.h"

namespace quantfleet {

namespace {

constexpr int64_t kEpochBlock = 1024;
constexpr int64_t kMaxChunk = 1 << 20;
// Calibration text is read whole into the coordinator's memory to cut it
// into chunks; llama.cpp's own calibration files are a few megabytes.
constexpr size_t kMaxCalibrationTextBytes = size_t{256} << 20;

bool Terminal(v1::JobState s) {
  return s == v1::JOB_SUCCEEDED || s == v1::JOB_FAILED || s == v1::JOB_CANCELLED;
}

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

std::vector<TaskDef> CutTasks(const QuantizePlan& plan, uint64_t target_result_bytes) {
  std::vector<TaskDef> tasks;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    const int64_t rows = t.output.n_rows();
    if (rows == 0 || t.output.nbytes == 0) continue;
    const uint64_t out_row = t.output.nbytes / static_cast<uint64_t>(rows);
    const uint64_t src_row = t.source->info.nbytes / static_cast<uint64_t>(rows);
    // Bound the source side too, so a worker's buffers stay small.
    const uint64_t by_out = std::max<uint64_t>(1, target_result_bytes / out_row);
    const uint64_t by_src = std::max<uint64_t>(1, 4 * target_result_bytes / src_row);
    const int64_t step = static_cast<int64_t>(std::min(by_out, by_src));
    const int64_t per_expert = t.output.ne[1];
    for (int64_t r = 0; r < rows;) {
      const int64_t expert_end = (r / per_expert + 1) * per_expert;
      const int64_t n = std::min({step, rows - r, expert_end - r});
      TaskDef d;
      d.tensor = i;
      d.first_row = r;
      d.n_rows = n;
      d.source_offset = static_cast<uint64_t>(r) * src_row;
      d.source_bytes = static_cast<uint64_t>(n) * src_row;
      d.result_offset = plan.meta.size() + t.output.offset + static_cast<uint64_t>(r) * out_row;
      d.result_bytes = static_cast<uint64_t>(n) * out_row;
      tasks.push_back(d);
      r += n;
    }
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

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(CoordinatorOptions options, const Clock* clock) {
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  QF_ASSIGN_OR_RETURN(std::unique_ptr<StateDirLock> lock, StateDirLock::Acquire(options.state_dir));
  QF_ASSIGN_OR_RETURN(PathPolicy paths, PathPolicy::Create(options.allowed_roots));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(options.state_dir + "/jobs.sqlite"));
  std::unique_ptr<Coordinator> c(
      new Coordinator(std::move(options), clock, std::move(paths), std::move(lock), std::move(store)));
  std::vector<std::string> to_finish;
  {
    absl::MutexLock l(&c->mu_);
    QF_RETURN_IF_ERROR(c->Restore());
    for (const std::string& id : c->order_) {
      if (c->jobs_[id]->finalizing) to_finish.push_back(id);
    }
  }
  // Jobs whose every task was done before the restart, but not finished;
  // calibrated jobs whose quantization had not started.
  for (const std::string& id : to_finish) c->FinishJob(id);
  c->StartFollowUps();
  return c;
}

Coordinator::Coordinator(CoordinatorOptions options, const Clock* clock, PathPolicy paths,
                         std::unique_ptr<StateDirLock> lock, std::unique_ptr<JobStore> store)
    : options_(std::move(options)), clock_(clock), paths_(std::move(paths)), lock_(std::move(lock)),
      store_(std::move(store)) {}

Coordinator::~Coordinator() { FlushCompletedTasks(); }

std::string Coordinator::NewJobId() {
  static thread_local std::mt19937_64 gen(std::random_device{}());
  return absl::StrFormat("job-%012x", gen() & 0xffffffffffffull);
}

absl::StatusOr<int64_t> Coordinator::NextEpoch() {
  if (next_epoch_ >= epoch_limit_) {
    QF_ASSIGN_OR_RETURN(next_epoch_, store_->ReserveEpochs(kEpochBlock));
    epoch_limit_ = next_epoch_ + kEpochBlock;
  }
  return next_epoch_++;
}

void Coordinator::Persist(const v1::Job& job) {
  if (absl::Status s = store_->UpdateJob(job); !s.ok()) {
    // The in-memory state stays authoritative for this run; the failure
    // is visible in the log of the process serving it.
    absl::FPrintF(stderr, "coordinator: cannot record job %s: %s\n", job.id(), s.message());
  }
}

absl::Status Coordinator::PrepareCalibration(ActiveJob& job, const std::string& input, const std::string& output) {
  (void)output;  // the partial file is opened once the job is planned
  const v1::CalibrationOptions& o = job.job.calibration();
  const int ctx = o.ctx() > 0 ? o.ctx() : 512;
  QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
  QF_ASSIGN_OR_RETURN(std::string text_path, paths_.ResolveInput(o.text()));
  absl::StatusOr<std::string> text = ReadRegularFile(text_path, kMaxCalibrationTextBytes);
  if (!text.ok()) return absl::InvalidArgumentError(text.status().message());
  absl::StatusOr<GgufModel> model = GgufModel::Open(input);
  if (!model.ok()) return absl::InvalidArgumentError(model.status().message());
  job.model = std::make_shared<GgufModel>(std::move(*model));
  // Loading checks the architecture and shapes (weights stay mapped).
  absl::StatusOr<LlamaModel> llama = LlamaModel::Load(*job.model, input);
  if (!llama.ok()) return llama.status();
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(job.model->kv(), input);
  if (!vocab.ok()) return vocab.status();
  auto shared_vocab = std::make_shared<const Vocab>(*std::move(vocab));
  QF_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(shared_vocab));
  const std::vector<TokenId> tokens = tokenizer.Tokenize(*text, /*add_special=*/true, o.parse_special());
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(*shared_vocab, tokens, ctx, o.max_chunks());
  if (!chunks.ok()) return absl::InvalidArgumentError(absl::StrFormat("%s: %s", text_path, chunks.status().message()));
  ActiveJob::Calibration cal;
  // Size and modification time of every part: a worker finds its cached
  // copy by it, and a changed model gets a new one.
  for (int p = 0; p < job.model->n_parts(); ++p) {
    struct stat st;
    if (::stat(job.model->part(p).path().c_str(), &st) != 0) continue;
    cal.model_id += absl::StrFormat("%s%x-%x", p == 0 ? "" : "-", static_cast<uint64_t>(st.st_size),
                                    static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                                        static_cast<uint64_t>(st.st_mtim.tv_nsec));
  }
  cal.layout = ImatrixLayoutOf(*job.model, o.process_output());
  cal.chunks = *std::move(chunks);
  cal.n_layer = llama->hparams().n_layer;
  cal.n_embd = llama->hparams().n_embd;
  cal.footprint = FootprintOf(*job.model, cal.n_layer);
  job.job.set_tensors_total(static_cast<int64_t>(cal.chunks.size()));
  job.calibration = std::move(cal);
  if (job.job.has_plan()) return BuildCalibrationTasks(job);  // resumed after a restart
  return absl::OkStatus();
}

absl::Status Coordinator::BuildCalibrationTasks(ActiveJob& job) {
  ActiveJob::Calibration& cal = *job.calibration;
  cal.stage_end.assign(job.job.plan().stage_end_layers().begin(), job.job.plan().stage_end_layers().end());
  for (size_t s = 0; s < cal.stages(); ++s) {
    if (cal.stage_end[s] <= cal.first_layer(s) || (s + 1 == cal.stages()) != (cal.stage_end[s] == cal.n_layer)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the job's stages end at layers [%s], which do not cut the model's %d layers",
                          absl::StrJoin(cal.stage_end, ", "), cal.n_layer));
    }
  }
  if (cal.stage_end.empty()) return absl::InvalidArgumentError("the job's plan has no stage");
  const size_t stages = cal.stages();
  cal.stage_layouts.clear();
  for (size_t s = 0; s < stages; ++s) {
    cal.stage_layouts.push_back(StageLayout(cal.layout, cal.first_layer(s), cal.stage_end[s], cal.n_layer));
  }
  cal.stage_owner.assign(stages, "");
  job.tasks.clear();
  uint64_t offset = 0;
  for (size_t c = 0; c < cal.chunks.size(); ++c) {
    for (size_t s = 0; s < stages; ++s) {
      TaskDef d;
      d.tensor = c;
      d.first_row = static_cast<int64_t>(s);
      d.n_rows = 1;
      d.result_offset = offset;
      d.result_bytes = (s + 1 < stages ? cal.activation_bytes(c) : 0) + EncodedChunkBytes(cal.stage_layouts[s]);
      offset += d.result_bytes;
      job.tasks.push_back(d);
    }
  }
  job.rt.assign(job.tasks.size(), TaskRuntime());
  job.source_crc.assign(job.tasks.size(), std::nullopt);
  job.tensor_tasks_left.assign(cal.chunks.size(), static_cast<int64_t>(stages));
  QF_ASSIGN_OR_RETURN(job.part, PartFile::Open(job.job.output(), job.job.id(), offset, options_.file_ops));
  job.job.set_tasks_total(static_cast<int64_t>(job.tasks.size()));
  job.job.set_bytes_total(static_cast<int64_t>(offset));
  return absl::OkStatus();
}

bool Coordinator::LiveLocked(const std::string& worker_id, absl::Time now) const {
  auto w = workers_.find(worker_id);
  return w != workers_.end() && !w->second.retired &&
         now - w->second.last_seen < 3 * options_.heartbeat + options_.lease;
}

std::vector<bool> Coordinator::PreferredLayersLocked(const ActiveJob& job, const std::string& worker_name,
                                                     absl::Time now) const {
  std::set<std::string> live;  // names of the live workers
  for (const auto& [id, w] : workers_) {
    if (LiveLocked(id, now)) live.insert(w.info.name());
  }
  std::vector<bool> preferred;
  for (const std::string& holder : job.job.layer_workers()) {
    preferred.push_back(holder == worker_name || live.count(holder) == 0);
  }
  return preferred;
}

// The model bytes a worker may hold for a calibration job: for GPU jobs its
// --gpu-memory, else 90% of its first GPU (nullopt without a GPU); for CPU
// jobs its --memory.
static std::optional<uint64_t> CalibrationBudget(const v1::WorkerInfo& info, bool gpu) {
  if (!gpu) return static_cast<uint64_t>(info.memory_bytes());
  if (info.gpus_size() == 0) return std::nullopt;
  if (info.gpu_memory_bytes() > 0) return static_cast<uint64_t>(info.gpu_memory_bytes());
  return static_cast<uint64_t>(info.gpus(0).memory_bytes()) / 10 * 9;
}

absl::Status Coordinator::PlanCalibrationLocked(ActiveJob& job, absl::Time now) {
  const ActiveJob::Calibration& cal = *job.calibration;
  const bool gpu = job.job.calibration().gpu();
  std::vector<uint64_t> budgets;
  for (const auto& [id, w] : workers_) {
    const std::optional<uint64_t> budget = CalibrationBudget(w.info, gpu);
    if (LiveLocked(id, now) && budget) budgets.push_back(*budget);
  }
  std::optional<std::vector<int>> ends = PlanStages(cal.footprint, budgets);
  if (!ends) {
    uint64_t held = 0;
    for (uint64_t b : budgets) held += b;
    job.job.set_waiting(absl::StrFormat(
        "waiting for workers that can hold the model: it needs %d MiB, the %d live %s add up to %d MiB",
        cal.footprint.Total() >> 20, budgets.size(), gpu ? "GPU workers' memory" : "workers' --memory", held >> 20));
    return absl::OkStatus();
  }
  job.job.clear_waiting();
  job.job.mutable_plan()->mutable_stage_end_layers()->Assign(ends->begin(), ends->end());
  QF_RETURN_IF_ERROR(BuildCalibrationTasks(job));
  RefreshCounters(job);
  // The plan fixes where every result lies in the partial file: it is
  // recorded before any task of it is leased.
  return store_->UpdateJob(job.job);
}

void Coordinator::UpdateStageWaitingLocked(ActiveJob& job, absl::Time now) {
  const ActiveJob::Calibration& cal = *job.calibration;
  const bool gpu = job.job.calibration().gpu();
  for (size_t s = 0; s < cal.stages(); ++s) {
    if (LiveLocked(cal.stage_owner[s], now)) continue;
    bool work_left = false;
    for (size_t t = s; t < job.rt.size() && !work_left; t += cal.stages()) {
      work_left = job.rt[t].state == TaskState::kPending || job.rt[t].state == TaskState::kLeased;
    }
    if (!work_left) continue;
    const uint64_t bytes = cal.footprint.StageBytes(cal.first_layer(s), cal.stage_end[s]);
    bool taker = false;
    for (const auto& [id, w] : workers_) {
      const std::optional<uint64_t> budget = CalibrationBudget(w.info, gpu);
      const bool owns = std::find(cal.stage_owner.begin(), cal.stage_owner.end(), id) != cal.stage_owner.end();
      taker = taker || (LiveLocked(id, now) && !owns && budget && (*budget == 0 || bytes <= *budget));
    }
    if (!taker) {
      job.job.set_waiting(absl::StrFormat("stage %d (layers %d-%d, %d MiB) waits for a worker that can hold it",
                                          s + 1, cal.first_layer(s), cal.stage_end[s] - 1, bytes >> 20));
      return;
    }
  }
  job.job.clear_waiting();
}

std::optional<size_t> Coordinator::StageFor(ActiveJob& job, const std::string& worker_id, absl::Time now) {
  ActiveJob::Calibration& cal = *job.calibration;
  const std::optional<uint64_t> can_hold = CalibrationBudget(workers_[worker_id].info, job.job.calibration().gpu());
  if (!can_hold) return std::nullopt;  // a GPU job, and no GPU here
  const uint64_t budget = *can_hold;
  auto fits = [&](size_t s) {
    return budget == 0 || cal.footprint.StageBytes(cal.first_layer(s), cal.stage_end[s]) <= budget;
  };
  if (cal.stages() == 1) return fits(0) ? std::optional<size_t>(0) : std::nullopt;
  for (size_t s = 0; s < cal.stages(); ++s) {
    if (cal.stage_owner[s] == worker_id) return s;
  }
  // A stage nobody holds (yet, or any more): the first that fits.
  for (size_t s = 0; s < cal.stages(); ++s) {
    if (!LiveLocked(cal.stage_owner[s], now) && fits(s)) {
      cal.stage_owner[s] = worker_id;
      return s;
    }
  }
  return std::nullopt;
}

absl::Status Coordinator::FinishCalibration(const ActiveJob& job, PartFile& part, double* perplexity) {
  const ActiveJob::Calibration& cal = *job.calibration;
  const v1::CalibrationOptions& o = job.job.calibration();
  ChunkStatistics total(o.process_output());
  std::string bytes;
  for (size_t c = 0; c < cal.chunks.size(); ++c) {
    // A chunk's statistics are the union of its stages' entries.
    ChunkStatistics chunk(o.process_output());
    for (size_t s = 0; s < cal.stages(); ++s) {
      const TaskDef& def = job.tasks[c * cal.stages() + s];
      const size_t skip = s + 1 < cal.stages() ? cal.activation_bytes(c) : 0;
      bytes.resize(def.result_bytes - skip);
      QF_RETURN_IF_ERROR(part.PRead(bytes.data(), bytes.size(), def.result_offset + skip));
      QF_ASSIGN_OR_RETURN(ChunkStatistics stage, DecodeChunk(bytes, cal.stage_layouts[s], o.process_output()));
      chunk.Add(stage);
    }
    total.Add(chunk);  // in chunk order, as `quantfleet imatrix` does
  }
  double error = 0;
  Perplexity(total, perplexity, &error);
  // The partial file becomes the imatrix: its content is replaced and it
  // is renamed into place like any artifact.
  const std::vector<uint8_t> imatrix = total.imatrix.SerializeGguf({o.text()}, static_cast<int>(cal.chunks.size()),
                                                                   o.ctx() > 0 ? o.ctx() : 512);
  return part.FinalizeWith(imatrix);
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

absl::Status Coordinator::Restore() {
  QF_ASSIGN_OR_RETURN(std::vector<StoredJob> stored, store_->LoadAll());
  for (StoredJob& s : stored) {
    auto job = std::make_unique<ActiveJob>();
    job->job = s.job;
    job->job.set_error(ClipReason(job->job.error()));  // bounded since; older stores may hold more
    const std::string id = s.job.id();
    if (!Terminal(job->job.state())) {
      const bool part_exists = std::filesystem::exists(PartFile::PathFor(job->job.output(), id));
      absl::Status st = Prepare(*job, job->job.input(), job->job.output());
      if (!st.ok()) {
        job->job.set_state(v1::JOB_FAILED);
        job->job.set_error(absl::StrFormat("cannot resume after a restart: %s", st.message()));
        if (job->part) job->part->Remove();
        job->part.reset();
        Persist(job->job);
      } else if (part_exists) {
        // Tasks recorded done have their bytes fsynced in the partial file.
        for (int64_t t : s.done_tasks) {
          if (t >= 0 && t < static_cast<int64_t>(job->rt.size()) && job->rt[t].state != TaskState::kDone) {
            job->rt[t].state = TaskState::kDone;
            --job->tensor_tasks_left[job->tasks[t].tensor];
          }
        }
      }
      RefreshCounters(*job);
    }
    order_.push_back(id);
    jobs_[id] = std::move(job);
  }
  for (const std::string& id : order_) {
    ActiveJob& j = *jobs_[id];
    if (!Terminal(j.job.state()) && j.job.tasks_done() == j.job.tasks_total() && j.part) j.finalizing = true;
  }
  return absl::OkStatus();
}

void Coordinator::RefreshCounters(ActiveJob& job) {
  int64_t done = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < job.rt.size(); ++i) {
    if (job.rt[i].state == TaskState::kDone) {
      ++done;
      bytes += job.tasks[i].result_bytes;
    }
  }
  int64_t tensors_done = 0;
  for (int64_t left : job.tensor_tasks_left) tensors_done += left == 0 ? 1 : 0;
  job.job.clear_stage_chunks_done();
  if (job.calibration && job.calibration->stages() > 1) {
    std::vector<int64_t> per_stage(job.calibration->stages(), 0);
    for (size_t i = 0; i < job.rt.size(); ++i) {
      if (job.rt[i].state == TaskState::kDone) ++per_stage[i % per_stage.size()];
    }
    job.job.mutable_stage_chunks_done()->Assign(per_stage.begin(), per_stage.end());
  }
  job.job.set_tasks_done(done);
  job.job.set_bytes_done(static_cast<int64_t>(bytes));
  job.job.set_tensors_done(tensors_done);
}

absl::StatusOr<std::optional<v1::Job>> Coordinator::AdmitLocked(const v1::SubmitJobRequest& request) {
  if (!request.request_id().empty()) {
    QF_ASSIGN_OR_RETURN(std::optional<std::string> existing, store_->FindByRequestId(request.request_id()));
    if (existing && jobs_.count(*existing)) return jobs_[*existing]->job;
  }
  size_t active = 0;
  for (const auto& [id, j] : jobs_) active += Terminal(j->job.state()) ? 0 : 1;
  if (active >= options_.max_active_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the coordinator already has %d active jobs (the limit); wait for one to finish", active));
  }
  return std::nullopt;
}

absl::StatusOr<v1::Job> Coordinator::Submit(const v1::SubmitJobRequest& given) {
  // A calibrated job is an importance-matrix job with the quantization to
  // run after it: check the quantization options now, submit them later.
  v1::SubmitJobRequest request = given;
  std::optional<v1::SubmitJobRequest> then;
  if (request.has_calibration() && !request.options().file_type().empty()) {
    if (!request.options().imatrix().empty()) {
      return absl::InvalidArgumentError("a calibrated job computes its imatrix; give no --imatrix");
    }
    QF_RETURN_IF_ERROR(OptionsFromProto(request.options()).status());
    QF_RETURN_IF_ERROR(paths_.ResolveOutput(request.output(), request.force()).status());  // fail early
    then.emplace();
    then->set_input(request.input());
    then->set_output(request.output());
    then->set_force(request.force());
    *then->mutable_options() = request.options();
    request.set_output(request.output() + ".imatrix.gguf");
    then->mutable_options()->set_imatrix(request.output());
    request.clear_options();
  }
  // Cheap checks first, under the lock; then the input is opened, read and
  // planned without it (a slow disk or a FIFO must not stall every other
  // call); then the lock again to check what may have changed meanwhile.
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(std::optional<v1::Job> earlier, AdmitLocked(request));
    if (earlier) return *earlier;
  }
  QF_ASSIGN_OR_RETURN(std::string input, paths_.ResolveInput(request.input()));
  QF_ASSIGN_OR_RETURN(std::string output, paths_.ResolveOutput(request.output(), request.force()));
  if (input == output) return absl::InvalidArgumentError(absl::StrFormat("input and output are the same file: %s", output));
  auto job = std::make_unique<ActiveJob>();
  job->job.set_id(NewJobId());
  job->job.set_state(v1::JOB_RUNNING);
  job->job.set_input(input);
  job->job.set_output(output);
  *job->job.mutable_options() = request.options();
  if (request.has_calibration()) *job->job.mutable_calibration() = request.calibration();
  *job->job.mutable_layer_workers() = request.layer_workers();
  if (then) {
    *job->job.mutable_then() = *then;
    // Idempotent: a restart that resubmits it gets the same job.
    job->job.mutable_then()->set_request_id(job->job.id() + "-quantize");
  }
  job->job.set_created_unix_ms(UnixMs(clock_->Now()));
  if (absl::Status s = Prepare(*job, input, output); !s.ok()) {
    if (job->part) job->part->Remove();
    return s;
  }
  std::vector<std::string> to_finish;
  v1::Job result;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::optional<v1::Job>> again = AdmitLocked(request);
    absl::Status s = again.ok() ? absl::OkStatus() : again.status();
    for (const auto& [id, j] : jobs_) {
      if (s.ok() && !Terminal(j->job.state()) && j->job.output() == output) {
        s = absl::FailedPreconditionError(absl::StrFormat("%s is already the output of running job %s", output, id));
      }
    }
    if (s.ok()) {
      RefreshCounters(*job);
      s = store_->InsertJob(job->job, request.request_id());
    }
    if (!s.ok() || (again.ok() && *again)) {  // refused, or a retry of this request got in first
      if (job->part) job->part->Remove();
      if (!s.ok()) return s;
      return **again;
    }
    result = job->job;
    order_.push_back(job->job.id());
    if (job->tasks.empty() && !job->calibration) {  // calibration tasks come with the plan
      job->finalizing = true;
      to_finish.push_back(job->job.id());
    }
    jobs_[job->job.id()] = std::move(job);
  }
  for (const std::string& id : to_finish) FinishJob(id);
  if (!to_finish.empty()) StartFollowUps();
  return result;
}

absl::StatusOr<v1::Job> Coordinator::GetJob(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  return it->second->job;
}

std::vector<v1::Job> Coordinator::ListJobs() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Job> out;
  for (const std::string& id : order_) out.push_back(jobs_[id]->job);
  return out;
}

absl::StatusOr<v1::JobEvent> Coordinator::Snapshot(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  return SnapshotLocked(*it->second, clock_->Now());
}

v1::JobEvent Coordinator::SnapshotLocked(const ActiveJob& job, absl::Time now) {
  v1::JobEvent event;
  *event.mutable_job() = job.job;
  for (const auto& [worker_id, stats] : job.per_worker) {
    v1::WorkerProgress* p = event.add_workers();
    p->set_worker_id(worker_id);
    auto w = workers_.find(worker_id);
    p->set_name(w != workers_.end() ? w->second.info.name() : worker_id);
    p->set_bytes_done(static_cast<int64_t>(stats.bytes));
    const double secs = absl::ToDoubleSeconds(std::max(now, stats.last) - stats.first);
    p->set_bytes_per_second(secs > 0 ? static_cast<double>(stats.bytes) / secs : 0.0);
  }
  return event;
}

absl::StatusOr<v1::Job> Coordinator::Cancel(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  ActiveJob& j = *it->second;
  if (Terminal(j.job.state())) return j.job;
  if (j.finalizing) return absl::FailedPreconditionError(absl::StrFormat("job %s is finishing; too late to cancel", job_id));
  j.job.set_state(v1::JOB_CANCELLED);
  j.job.set_finished_unix_ms(UnixMs(clock_->Now()));
  if (j.part) j.part->Remove();
  j.part.reset();
  j.model.reset();
  Persist(j.job);
  return j.job;
}

std::vector<v1::WorkerStatus> Coordinator::ListWorkers() {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<v1::WorkerStatus> out;
  for (const auto& [id, w] : workers_) out.push_back(WorkerStatusLocked(id, w, now));
  return out;
}

v1::WorkerStatus Coordinator::WorkerStatusLocked(const std::string& id, const WorkerEntry& w, absl::Time now) {
  v1::WorkerStatus s;
  s.set_worker_id(id);
  *s.mutable_info() = w.info;
  s.set_alive(LiveLocked(id, now));
  s.set_last_seen_unix_ms(UnixMs(w.last_seen));
  s.set_tasks_done(w.tasks_done);
  s.set_bytes_done(static_cast<int64_t>(w.bytes_done));
  const double secs = absl::ToDoubleSeconds(w.last_done - w.first_lease);
  s.set_bytes_per_second(w.bytes_done > 0 && secs > 0 ? static_cast<double>(w.bytes_done) / secs : 0.0);
  int64_t held = 0;
  for (const auto& [jid, j] : jobs_) {
    for (const TaskRuntime& rt : j->rt) held += (rt.state == TaskState::kLeased && rt.worker == id) ? 1 : 0;
  }
  s.set_tasks_held(held);
  return s;
}

CoordinatorCounters Coordinator::counters() const {
  absl::MutexLock l(&mu_);
  return counters_;
}

v1::ClusterStatus Coordinator::Status(size_t max_jobs) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  v1::ClusterStatus status;
  status.set_now_unix_ms(UnixMs(now));
  for (auto id = order_.rbegin(); id != order_.rend() && static_cast<size_t>(status.jobs_size()) < max_jobs; ++id) {
    *status.add_jobs() = SnapshotLocked(*jobs_[*id], now);
  }
  for (const auto& [id, w] : workers_) {
    if (!w.retired) *status.add_workers() = WorkerStatusLocked(id, w, now);
  }
  for (const v1::FailureEvent& f : failures_) *status.add_recent_failures() = f;
  return status;
}

void Coordinator::RecordFailure(const std::string& job_id, int64_t task_id, const std::string& worker_id,
                                const std::string& reason) {
  constexpr size_t kKept = 50;
  v1::FailureEvent f;
  f.set_unix_ms(UnixMs(clock_->Now()));
  f.set_job_id(job_id);
  f.set_task_id(task_id);
  f.set_worker_id(worker_id);
  f.set_reason(reason);
  failures_.push_front(std::move(f));
  if (failures_.size() > kKept) failures_.pop_back();
}

v1::RegisterResponse Coordinator::Register(const v1::WorkerInfo& info) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  // A new incarnation of a known worker name: the old process is gone, so
  // its leases go back to the queue now rather than at their deadline.
  for (auto& [id, w] : workers_) {
    if (w.info.name() == info.name() && w.info.incarnation() != info.incarnation() && !w.retired) {
      w.retired = true;
      for (auto& [jid, j] : jobs_) {
        for (TaskRuntime& rt : j->rt) {
          if (rt.state == TaskState::kLeased && rt.worker == id) {
            rt.state = TaskState::kPending;
            rt.committed = 0;
            rt.crc = 0;
          }
        }
      }
    }
  }
  const std::string id = absl::StrFormat("%s#%d", info.name(), ++worker_seq_);
  WorkerEntry& w = workers_[id];
  w.info = info;
  w.last_seen = now;
  v1::RegisterResponse r;
  r.set_worker_id(id);
  r.set_heartbeat_ms(absl::ToInt64Milliseconds(options_.heartbeat));
  return r;
}

void Coordinator::ExpireLeases() {
  absl::MutexLock l(&mu_);
  ExpireLocked();
}

void Coordinator::ExpireLocked() {
  const absl::Time now = clock_->Now();
  for (auto& [id, j] : jobs_) {
    for (TaskRuntime& rt : j->rt) {
      if (rt.state == TaskState::kLeased && rt.deadline <= now) {
        rt.state = TaskState::kPending;
        rt.committed = 0;
        rt.crc = 0;
        ++counters_.lease_expiries;
        RecordFailure(id, &rt - j->rt.data(), rt.worker, "lease expired: no heartbeat from the worker");
      }
    }
  }
}

absl::StatusOr<v1::AcquireTaskResponse> Coordinator::Acquire(const std::string& worker_id) {
  absl::MutexLock l(&mu_);
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || w->second.retired) {
    return absl::NotFoundError(absl::StrFormat("unknown worker %s; register again", worker_id));
  }
  const absl::Time now = clock_->Now();
  w->second.last_seen = now;
  ExpireLocked();
  v1::AcquireTaskResponse response;
  for (const std::string& id : order_) {
    ActiveJob& j = *jobs_[id];
    if (j.job.state() != v1::JOB_RUNNING || j.finalizing) continue;
    std::optional<size_t> stage;  // calibration: the stage this worker works on
    if (j.calibration) {
      if (!j.job.has_plan()) {
        if (absl::Status s = PlanCalibrationLocked(j, now); !s.ok()) {
          FailJobLocked(j, absl::StrFormat("planning the calibration failed: %s", s.message()));
          continue;
        }
        if (!j.job.has_plan()) continue;
      }
      stage = StageFor(j, worker_id, now);
      if (j.calibration->stages() > 1) UpdateStageWaitingLocked(j, now);
      if (!stage) continue;
    }
    // After a pipelined calibration: a first pass over the layers this
    // worker held (or whose holder is gone), then any task.
    const bool prefer = !j.calibration && j.job.layer_workers_size() > 0;
    const std::vector<bool> preferred = prefer ? PreferredLayersLocked(j, w->second.info.name(), now)
                                               : std::vector<bool>();
    for (int pass = prefer ? 0 : 1; pass < 2; ++pass) {
      for (size_t t = 0; t < j.rt.size(); ++t) {
        TaskRuntime& rt = j.rt[t];
        if (rt.state != TaskState::kPending) continue;
        if (pass == 0) {
          const int layer = j.tensor_layer[j.tasks[t].tensor];
          if (layer < 0 || layer >= static_cast<int>(preferred.size()) || !preferred[layer]) continue;
        }
        if (stage) {
          // Its own stage only, once the previous stage of the chunk is done.
          const size_t stages = j.calibration->stages();
          if (t % stages != *stage) continue;
          if (t % stages > 0 && j.rt[t - 1].state != TaskState::kCompleted && j.rt[t - 1].state != TaskState::kDone) {
            continue;
          }
        }
        QF_ASSIGN_OR_RETURN(int64_t epoch, NextEpoch());
        if (rt.attempt > 0) ++counters_.task_retries;
        if (w->second.first_lease == absl::InfinitePast()) w->second.first_lease = now;
        rt.state = TaskState::kLeased;
        rt.attempt += 1;
        rt.epoch = epoch;
        rt.worker = worker_id;
        rt.deadline = now + options_.lease;
        rt.committed = 0;
        rt.crc = 0;
        const TaskDef& def = j.tasks[t];
        response.set_assigned(true);
        v1::TaskSpec* spec = response.mutable_task();
        v1::Lease* lease = spec->mutable_lease();
        if (j.calibration) {
          const ActiveJob::Calibration& cal = *j.calibration;
          const size_t c = def.tensor, s = *stage;
          lease->set_job_id(id);
          lease->set_task_id(static_cast<int64_t>(t));
          lease->set_attempt(rt.attempt);
          lease->set_epoch(epoch);
          spec->set_tensor(cal.stages() == 1 ? absl::StrFormat("chunk %d", c + 1)
                                             : absl::StrFormat("chunk %d, layers %d-%d", c + 1, cal.first_layer(s),
                                                               cal.stage_end[s] - 1));
          spec->set_result_bytes(static_cast<int64_t>(def.result_bytes));
          spec->set_lease_ms(absl::ToInt64Milliseconds(options_.lease));
          spec->set_source_path(j.model->part(0).path());
          v1::CalibrationChunk* chunk = spec->mutable_calibration();
          chunk->set_chunk(static_cast<int32_t>(c));
          chunk->mutable_tokens()->Add(cal.chunks[c].begin(), cal.chunks[c].end());
          chunk->set_process_output(j.job.calibration().process_output());
        chunk->set_gpu(j.job.calibration().gpu());
          for (const ImatrixEntryShape& e : cal.stage_layouts[s]) chunk->add_entries(e.name);
          int64_t model_bytes = 0;
          for (int p = 0; p < j.model->n_parts(); ++p) {
            const int64_t bytes = static_cast<int64_t>(j.model->part(p).size());
            model_bytes += bytes;
            if (j.model->n_parts() > 1) {
              chunk->add_part_names(std::filesystem::path(j.model->part(p).path()).filename().string());
              chunk->add_part_bytes(bytes);
            }
          }
          chunk->set_model_bytes(model_bytes);
          chunk->set_model_id(cal.model_id);
          if (cal.stages() > 1) {
            chunk->set_first_layer(cal.first_layer(s));
            chunk->set_end_layer(cal.stage_end[s]);
            if (s > 0) chunk->set_activation_bytes(static_cast<int64_t>(cal.activation_bytes(c)));
          }
          return response;
        }
        const PlannedTensor& pt = j.plan.tensors[def.tensor];
        lease->set_job_id(id);
        lease->set_task_id(static_cast<int64_t>(t));
        lease->set_attempt(rt.attempt);
        lease->set_epoch(epoch);
        spec->set_tensor(pt.output.name);
        spec->set_source_type(std::string(TypeName(pt.source->info.type)));
        spec->set_target_type(std::string(TypeName(pt.output.type)));
        spec->set_n_per_row(pt.output.ne[0]);
        spec->set_n_rows(def.n_rows);
        spec->set_source_bytes(static_cast<int64_t>(def.source_bytes));
        spec->set_result_bytes(static_cast<int64_t>(def.result_bytes));
        spec->set_convert(pt.convert);
        spec->set_lease_ms(absl::ToInt64Milliseconds(options_.lease));
        const ModelTensor* src = pt.source;
        spec->set_source_path(j.model->part(src->split).path());
        spec->set_source_file_offset(static_cast<int64_t>(src->file_offset + def.source_offset));
        // Only for workers that may read a local copy: computed once per task
        // and kept; the worker trusts its copy only if this matches.
        if (w->second.info.data_roots_size() > 0 && !j.source_crc[t].has_value()) {
          j.source_crc[t] = Crc32c(src->data + def.source_offset, def.source_bytes);
          j.model->part(src->split).DropRange(src->file_offset + def.source_offset, def.source_bytes);
        }
        if (j.source_crc[t].has_value()) spec->set_source_crc32c(*j.source_crc[t]);
        if (pt.imatrix) {
          const int64_t expert = def.first_row / pt.output.ne[1];
          const float* w0 = pt.imatrix->data() + expert * pt.output.ne[0];
          spec->mutable_imatrix()->Add(w0, w0 + pt.output.ne[0]);
        }
        return response;
      }
    }
  }
  response.set_assigned(false);
  response.set_retry_after_ms(500);
  return response;
}

absl::StatusOr<std::pair<Coordinator::ActiveJob*, size_t>> Coordinator::CheckLease(const v1::Lease& lease) {
  auto it = jobs_.find(lease.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", lease.job_id()));
  ActiveJob& j = *it->second;
  if (j.job.state() != v1::JOB_RUNNING) {
    return absl::FailedPreconditionError(absl::StrFormat("job %s is no longer running; drop its task", lease.job_id()));
  }
  if (lease.task_id() < 0 || lease.task_id() >= static_cast<int64_t>(j.rt.size())) {
    return absl::NotFoundError(absl::StrFormat("job %s has no task %d", lease.job_id(), lease.task_id()));
  }
  TaskRuntime& rt = j.rt[lease.task_id()];
  if (rt.state != TaskState::kLeased || rt.epoch != lease.epoch() || rt.attempt != lease.attempt()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("stale lease for job %s task %d (attempt %d, epoch %d): it was reassigned; drop it",
                        lease.job_id(), lease.task_id(), lease.attempt(), lease.epoch()));
  }
  if (rt.deadline <= clock_->Now()) {
    rt.state = TaskState::kPending;
    rt.committed = 0;
    rt.crc = 0;
    ++counters_.lease_expiries;
    RecordFailure(lease.job_id(), lease.task_id(), rt.worker, "lease expired: no heartbeat from the worker");
    return absl::FailedPreconditionError(absl::StrFormat(
        "lease for job %s task %d expired; drop it", lease.job_id(), lease.task_id()));
  }
  return std::make_pair(&j, static_cast<size_t>(lease.task_id()));
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  absl::MutexLock l(&mu_);
  auto w = workers_.find(request.worker_id());
  if (w == workers_.end() || w->second.retired) {
    return absl::NotFoundError(absl::StrFormat("unknown worker %s; register again", request.worker_id()));
  }
  const absl::Time now = clock_->Now();
  w->second.last_seen = now;
  v1::HeartbeatResponse response;
  for (const v1::Lease& lease : request.leases()) {
    absl::StatusOr<std::pair<ActiveJob*, size_t>> held = CheckLease(lease);
    if (!held.ok() || held->first->rt[held->second].worker != request.worker_id()) {
      *response.add_drop() = lease;
      continue;
    }
    held->first->rt[held->second].deadline = now + options_.lease;
  }
  return response;
}

absl::StatusOr<std::string> Coordinator::ReadSource(const v1::Lease& lease, int64_t offset, int64_t length,
                                                    bool activations, int part) {
  std::shared_ptr<GgufModel> model;  // keeps the mapping alive if the job ends meanwhile
  const ModelTensor* src = nullptr;  // null: the whole model file (a calibration chunk streams it)
  uint64_t at = 0, n = 0;
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
    ActiveJob& job = *held.first;
    const TaskDef& def = job.tasks[held.second];
    if (activations) {
      // The previous stage's result of the same chunk starts with them; it
      // is complete (the task was leased only then) and no longer written.
      if (!job.calibration || def.first_row == 0) {
        return absl::InvalidArgumentError(absl::StrFormat("task %d of job %s reads no activations", lease.task_id(),
                                                          lease.job_id()));
      }
      const uint64_t size = job.calibration->activation_bytes(def.tensor);
      if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= size) {
        return absl::OutOfRangeError(absl::StrFormat("activation range [%d, +%d) is outside the task's %d bytes",
                                                     offset, length, size));
      }
      std::string out(std::min<uint64_t>({static_cast<uint64_t>(length), size - offset, kMaxChunk}), '\0');
      const uint64_t from = job.tasks[held.second - 1].result_offset + static_cast<uint64_t>(offset);
      QF_RETURN_IF_ERROR(job.part->PRead(out.data(), out.size(), from));
      counters_.source_bytes_served += static_cast<int64_t>(out.size());
      return out;
    }
    if (job.calibration && (part < 0 || part >= job.model->n_parts())) {
      return absl::OutOfRangeError(absl::StrFormat("the model has no part %d (it has %d)", part,
                                                   job.model->n_parts()));
    }
    const uint64_t size = job.calibration ? job.model->part(part).size() : def.source_bytes;
    if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= size) {
      return absl::OutOfRangeError(absl::StrFormat("source range [%d, +%d) is outside the task's %d bytes", offset,
                                                   length, size));
    }
    n = std::min<uint64_t>({static_cast<uint64_t>(length), size - offset, kMaxChunk});
    at = static_cast<uint64_t>(offset);
    if (!job.calibration) {
      src = job.plan.tensors[def.tensor].source;
      at += def.source_offset;
    }
    model = job.model;
    counters_.source_bytes_served += static_cast<int64_t>(n);
  }
  // The copy happens outside the lock: it may wait on the disk.
  const MappedFile& file = model->part(src != nullptr ? src->split : part);
  const uint8_t* data = src != nullptr ? src->data + at : file.data() + at;
  std::string out(reinterpret_cast<const char*>(data), n);
  file.DropRange(src != nullptr ? src->file_offset + at : at, n);
  return out;
}

absl::StatusOr<int64_t> Coordinator::Upload(const v1::Lease& lease, int64_t offset, const std::string& data,
                                            uint32_t crc32c) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  TaskRuntime& rt = held.first->rt[held.second];
  const TaskDef& def = held.first->tasks[held.second];
  if (Crc32c(data.data(), data.size()) != crc32c) {
    ++counters_.checksum_rejections;
    RecordFailure(lease.job_id(), lease.task_id(), rt.worker,
                  absl::StrFormat("chunk at offset %d failed its CRC32C (sent again)", offset));
    return absl::DataLossError(absl::StrFormat("chunk at offset %d of job %s task %d failed its CRC32C; send it again",
                                               offset, lease.job_id(), lease.task_id()));
  }
  if (offset != static_cast<int64_t>(rt.committed)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("upload offset %d but %d bytes are committed; resume from %d", offset, rt.committed,
                        rt.committed));
  }
  if (rt.committed + data.size() > def.result_bytes) {
    return absl::OutOfRangeError(absl::StrFormat("upload runs past the task's %d result bytes", def.result_bytes));
  }
  if (absl::Status w = held.first->part->PWrite(data.data(), data.size(), def.result_offset + rt.committed); !w.ok()) {
    // A disk that refuses the artifact fails the job; retrying elsewhere
    // would not help.
    FailJobLocked(*held.first, absl::StrFormat("writing the artifact failed: %s", w.message()));
    return w;
  }
  rt.committed += data.size();
  counters_.result_bytes_received += static_cast<int64_t>(data.size());
  rt.crc = Crc32cExtend(rt.crc, data.data(), data.size());
  return static_cast<int64_t>(rt.committed);
}

absl::StatusOr<int64_t> Coordinator::UploadOffset(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  return static_cast<int64_t>(held.first->rt[held.second].committed);
}

absl::Status Coordinator::Complete(const v1::Lease& lease, int64_t size, uint32_t crc32c) {
  bool flush_now = false;
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
    ActiveJob& j = *held.first;
    TaskRuntime& rt = j.rt[held.second];
    const TaskDef& def = j.tasks[held.second];
    if (size != static_cast<int64_t>(def.result_bytes) || rt.committed != def.result_bytes) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "task %d of job %s: result is %d bytes, %d committed, %d expected", lease.task_id(), lease.job_id(), size,
          rt.committed, def.result_bytes));
    }
    // Every chunk was checked on arrival; the whole must match too.
    if (rt.crc != crc32c) {
      rt.committed = 0;
      rt.crc = 0;
      ++counters_.checksum_rejections;
      RecordFailure(lease.job_id(), lease.task_id(), rt.worker, "the whole result failed its CRC32C (sent again)");
      return absl::DataLossError(absl::StrFormat(
          "task %d of job %s: the result does not match its CRC32C; upload it again", lease.task_id(),
          lease.job_id()));
    }
    rt.state = TaskState::kCompleted;
    ++counters_.tasks_completed;
    if (j.calibration) {
      // The chunk's perplexity sums close its result: nll, nll2, predictions.
      char tail[2 * sizeof(double) + sizeof(int64_t)];
      if (j.part->PRead(tail, sizeof(tail), def.result_offset + def.result_bytes - sizeof(tail)).ok()) {
        double nll;
        int64_t predictions;
        std::memcpy(&nll, tail, sizeof(double));
        std::memcpy(&predictions, tail + 2 * sizeof(double), sizeof(int64_t));
        j.calibration->running_nll += nll;
        j.calibration->running_predictions += predictions;
        if (j.calibration->running_predictions > 0) {
          j.job.set_perplexity(std::exp(j.calibration->running_nll /
                                        static_cast<double>(j.calibration->running_predictions)));
        }
      }
    }
    j.unsynced.emplace_back(lease.task_id(), crc32c);
    const absl::Time now = clock_->Now();
    WorkerStats& ws = j.per_worker[rt.worker];
    if (ws.bytes == 0) ws.first = now;
    ws.bytes += def.result_bytes;
    ws.last = now;
    if (auto w = workers_.find(rt.worker); w != workers_.end()) {
      w->second.tasks_done += 1;
      w->second.bytes_done += def.result_bytes;
      w->second.last_done = now;
    }
    flush_now = std::all_of(j.rt.begin(), j.rt.end(), [](const TaskRuntime& r) {
      return r.state == TaskState::kCompleted || r.state == TaskState::kDone;
    });
  }
  if (flush_now) FlushCompletedTasks();
  return absl::OkStatus();
}

void Coordinator::FlushCompletedTasks() {
  std::vector<std::string> finish;
  {
    absl::MutexLock l(&mu_);
    for (const std::string& id : order_) {
      ActiveJob& j = *jobs_[id];
      if (j.unsynced.empty() || j.job.state() != v1::JOB_RUNNING || !j.part) {
        j.unsynced.clear();
        continue;
      }
      absl::Status s = j.part->Sync();
      if (s.ok()) s = store_->MarkTasksDone(id, j.unsynced);
      if (!s.ok()) {
        FailJobLocked(j, absl::StrFormat("cannot make results durable: %s", s.message()));
        continue;
      }
      for (const auto& [task, crc] : j.unsynced) {
        j.rt[task].state = TaskState::kDone;
        --j.tensor_tasks_left[j.tasks[task].tensor];
        // A pipeline stage that is durable no longer needs the activations
        // its previous stage left: their disk space goes back.
        if (j.calibration && j.tasks[task].first_row > 0) {
          const TaskDef& previous = j.tasks[task - 1];
          j.part->Release(previous.result_offset, j.calibration->activation_bytes(previous.tensor));
        }
      }
      j.unsynced.clear();
      RefreshCounters(j);
      if (j.job.tasks_done() == j.job.tasks_total() && !j.finalizing) {
        j.finalizing = true;
        finish.push_back(id);
      }
    }
  }
  for (const std::string& id : finish) FinishJob(id);
  if (!finish.empty()) StartFollowUps();
}

absl::Status Coordinator::Fail(const v1::Lease& lease, const std::string& reason, bool permanent) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  ActiveJob& j = *held.first;
  TaskRuntime& rt = j.rt[held.second];
  const std::string tensor = j.calibration ? absl::StrFormat("chunk %d", j.tasks[held.second].tensor + 1)
                                           : j.plan.tensors[j.tasks[held.second].tensor].output.name;
  ++counters_.task_failures;
  RecordFailure(lease.job_id(), lease.task_id(), rt.worker, absl::StrFormat("tensor '%s': %s", tensor, reason));
  rt.state = TaskState::kPending;
  rt.committed = 0;
  rt.crc = 0;
  rt.failures += 1;
  if (permanent) {
    FailJobLocked(j, absl::StrFormat("tensor '%s': %s", tensor, reason));
  } else if (rt.failures >= options_.max_attempts) {
    FailJobLocked(j, absl::StrFormat("task %d (tensor '%s') failed %d times; last error: %s", lease.task_id(), tensor,
                                     rt.failures, reason));
  }
  return absl::OkStatus();
}

void Coordinator::FailJobLocked(ActiveJob& job, const std::string& reason) {
  RecordFailure(job.job.id(), -1, "", "job failed: " + reason);
  job.job.set_state(v1::JOB_FAILED);
  job.job.set_error(ClipReason(reason));
  job.job.set_finished_unix_ms(UnixMs(clock_->Now()));
  if (job.part) job.part->Remove();
  job.part.reset();
  job.model.reset();
  Persist(job.job);
}

void Coordinator::FinishJob(const std::string& job_id) {
  PartFile* part;
  const ActiveJob* job;
  {
    absl::MutexLock l(&mu_);
    ActiveJob& j = *jobs_[job_id];
    part = j.part.get();
    job = &j;
  }
  // The part file is not touched by anyone else while finalizing is set;
  // a calibration job's chunks and options do not change after Prepare.
  double perplexity = 0;
  const absl::Status s = job->calibration ? FinishCalibration(*job, *part, &perplexity) : part->Finalize();
  absl::StatusOr<std::string> digest = s.ok() ? part->Sha256() : absl::StatusOr<std::string>(s);
  absl::MutexLock l(&mu_);
  ActiveJob& j = *jobs_[job_id];
  j.finalizing = false;
  j.job.set_perplexity(perplexity);
  if (!digest.ok()) {
    FailJobLocked(j, absl::StrFormat("finishing the artifact failed: %s", digest.status().message()));
    return;
  }
  j.job.set_state(v1::JOB_SUCCEEDED);
  j.job.set_sha256(*digest);
  j.job.set_finished_unix_ms(UnixMs(clock_->Now()));
  j.part.reset();
  j.model.reset();
  Persist(j.job);
}

void Coordinator::StartFollowUps() {
  std::vector<std::pair<std::string, v1::SubmitJobRequest>> due;
  {
    absl::MutexLock l(&mu_);
    for (const std::string& id : order_) {
      const v1::Job& job = jobs_[id]->job;
      if (job.state() == v1::JOB_SUCCEEDED && job.has_then() && job.next_job_id().empty() && job.error().empty()) {
        due.emplace_back(id, job.then());
        // After a pipeline, each layer's quantization goes first to the
        // worker that held it.
        const ActiveJob& j = *jobs_[id];
        if (j.calibration && j.calibration->stages() > 1) {
          const ActiveJob::Calibration& cal = *j.calibration;
          for (size_t s = 0; s < cal.stages(); ++s) {
            auto w = workers_.find(cal.stage_owner[s]);
            const std::string name = w != workers_.end() ? w->second.info.name() : "";
            for (int l = cal.first_layer(s); l < cal.stage_end[s]; ++l) due.back().second.add_layer_workers(name);
          }
        }
      }
    }
  }
  for (const auto& [id, request] : due) {
    absl::StatusOr<v1::Job> next = Submit(request);
    absl::MutexLock l(&mu_);
    v1::Job& job = jobs_[id]->job;
    if (next.ok()) {
      job.set_next_job_id(next->id());
    } else {
      job.set_error(absl::StrFormat("the quantization with the new imatrix could not start: %s",
                                    next.status().message()));
    }
    Persist(job);
  }
}

}  // namespace quantfleet
