// The importance-matrix job kind: the calibration text cut into chunks, the
// plan of stages over the live workers' memory, one task per chunk and
// stage, the running perplexity, and the statistics summed in chunk order
// into the imatrix. See coordinator.h.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/coordinator.h"
#include "core/calibration/imatrix_run.h"
#include "core/io/mapped_file.h"
#include "core/model/tokenizer.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// Calibration text is read whole into the coordinator's memory to cut it
// into chunks; llama.cpp's own calibration files are a few megabytes.
constexpr size_t kMaxCalibrationTextBytes = size_t{256} << 20;

}  // namespace

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
    cal.model_id += absl::StrFormat(
        "%s%x-%x", p == 0 ? "" : "-", static_cast<uint64_t>(st.st_size),
        static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec));
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
  ++work_version_;  // every chunk's first stage may start
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
      job.job.set_waiting(absl::StrFormat("stage %d (layers %d-%d, %d MiB) waits for a worker that can hold it", s + 1,
                                          cal.first_layer(s), cal.stage_end[s] - 1, bytes >> 20));
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
  const std::vector<uint8_t> imatrix =
      total.imatrix.SerializeGguf({o.text()}, static_cast<int>(cal.chunks.size()), o.ctx() > 0 ? o.ctx() : 512);
  return part.FinalizeWith(imatrix);
}

void Coordinator::DescribeCalibrationTask(const ActiveJob& job, size_t task, size_t stage, v1::TaskSpec* spec) {
  const ActiveJob::Calibration& cal = *job.calibration;
  const size_t c = job.tasks[task].tensor, s = stage;
  spec->set_tensor(cal.stages() == 1
                       ? absl::StrFormat("chunk %d", c + 1)
                       : absl::StrFormat("chunk %d, layers %d-%d", c + 1, cal.first_layer(s), cal.stage_end[s] - 1));
  spec->set_source_path(job.model->part(0).path());
  v1::CalibrationChunk* chunk = spec->mutable_calibration();
  chunk->set_chunk(static_cast<int32_t>(c));
  chunk->mutable_tokens()->Add(cal.chunks[c].begin(), cal.chunks[c].end());
  chunk->set_process_output(job.job.calibration().process_output());
  chunk->set_gpu(job.job.calibration().gpu());
  for (const ImatrixEntryShape& e : cal.stage_layouts[s]) chunk->add_entries(e.name);
  int64_t model_bytes = 0;
  for (int p = 0; p < job.model->n_parts(); ++p) {
    const int64_t bytes = static_cast<int64_t>(job.model->part(p).size());
    model_bytes += bytes;
    if (job.model->n_parts() > 1) {
      chunk->add_part_names(std::filesystem::path(job.model->part(p).path()).filename().string());
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
}

void Coordinator::AddChunkPerplexityLocked(ActiveJob& job, size_t task) {
  // Progress only: a result whose sums cannot be read shows no perplexity
  // yet; the final value is summed from the decoded chunks.
  const TaskDef& def = job.tasks[task];
  std::string tail(kChunkPerplexityBytes, '\0');
  if (!job.part->PRead(tail.data(), tail.size(), def.result_offset + def.result_bytes - tail.size()).ok()) return;
  absl::StatusOr<ChunkPerplexity> sums = DecodeChunkPerplexity(tail);
  if (!sums.ok()) return;
  ActiveJob::Calibration& cal = *job.calibration;
  cal.running_nll += sums->nll;
  cal.running_predictions += sums->predictions;
  if (cal.running_predictions > 0) {
    job.job.set_perplexity(std::exp(cal.running_nll / static_cast<double>(cal.running_predictions)));
  }
}

}  // namespace quantfleet
