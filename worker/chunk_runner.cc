#include "worker/chunk_runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "core/calibration/chunk_run.h"
#include "core/calibration/evaluation.h"
#include "core/calibration/layer_solve.h"
#include "core/calibration/layerwise_selection.h"
#include "core/calibration/type_budget.h"
#include "core/model/forward_pass.h"

namespace quantfleet {

std::optional<std::string> PathInsideRoots(const std::string& path, const std::vector<std::string>& roots) {
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) return std::nullopt;
  const std::string ps = real.string();
  for (const std::string& root : roots) {
    const std::filesystem::path r = std::filesystem::canonical(root, ec);
    if (ec) continue;
    const std::string rs = r.string();
    if (ps.size() > rs.size() && ps.compare(0, rs.size(), rs) == 0 && ps[rs.size()] == '/') return ps;
  }
  return std::nullopt;
}

ChunkRunner::~ChunkRunner() = default;

absl::StatusOr<GpuForward*> ChunkRunner::OnGpu(const Loaded& model, int first, int end) {
  if (gpu_ < 0) return absl::FailedPreconditionError("a GPU calibration job, but this worker has no GPU (--gpu)");
  if (gpu_forward_ == nullptr || gpu_model_ != &model || gpu_range_ != std::make_pair(first, end)) {
    gpu_forward_.reset();  // its device memory first
    absl::StatusOr<std::unique_ptr<GpuForward>> created = GpuForward::Create(*model.model, gpu_, first, end);
    if (!created.ok()) {
      return absl::Status(created.status().code(), absl::StrFormat("GPU %d: %s", gpu_, created.status().message()));
    }
    gpu_forward_ = *std::move(created);
    gpu_model_ = &model;
    gpu_range_ = {first, end};
  }
  return gpu_forward_.get();
}

absl::StatusOr<std::string> ChunkRunner::FetchIntoCache(const quantfleet::v1::ModelCopy& copy, bool base,
                                                        const Fetch& fetch) {
  // One file: CACHE/STEM.ID.gguf. A split model: its parts, under their
  // own names (which the first part's metadata implies), in CACHE/STEM.ID/.
  // The id is the coordinator's (sizes and times in hex): nothing in it may
  // lead out of the cache.
  const std::string& id = copy.id();
  if (id.empty() || id.size() > 256 ||
      !std::all_of(id.begin(), id.end(), [](char ch) { return absl::ascii_isxdigit(ch) || ch == '-'; })) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the coordinator sent a model id '%s' that is not a file name", id.substr(0, 64)));
  }
  const std::string stem =
      absl::StrFormat("%s/%s.%s", cache_dir_, std::filesystem::path(copy.path()).stem().string(), copy.id());
  struct Part {
    std::string path;
    int64_t bytes;
  };
  std::vector<Part> parts;
  if (copy.part_names_size() == 0) {
    parts.push_back({stem + ".gguf", copy.bytes()});
  } else if (copy.part_names_size() != copy.part_bytes_size()) {
    return absl::InvalidArgumentError("the coordinator sent part names and sizes that do not pair up");
  } else {
    for (int i = 0; i < copy.part_names_size(); ++i) {
      const std::string& name = copy.part_names(i);
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a file name for a model part", name));
      }
      parts.push_back({stem + "/" + name, copy.part_bytes(i)});
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    std::error_code ec;
    if (std::filesystem::file_size(parts[i].path, ec) == static_cast<uintmax_t>(parts[i].bytes) && !ec) continue;
    if (absl::Status s = fetch(parts[i].path, static_cast<int>(i), parts[i].bytes, base); !s.ok()) return s;
  }
  return parts[0].path;
}

absl::StatusOr<std::string> ChunkRunner::LocalCopy(const quantfleet::v1::ModelCopy& copy, bool base,
                                                   const Fetch& fetch) {
  if (std::optional<std::string> local = PathInsideRoots(copy.path(), data_roots_)) return *local;
  if (copy.bytes() > 0 && !cache_dir_.empty()) return FetchIntoCache(copy, base, fetch);
  return absl::NotFoundError(absl::StrFormat(
      "%s is not under this worker's --data-root, and it has no --cache-dir to stream it into", copy.path()));
}

absl::StatusOr<ChunkRunner::Loaded*> ChunkRunner::Load(const std::string& local) {
  struct stat st;
  if (::stat(local.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrFormat("%s: %s", local, std::strerror(errno)));
  }
  const std::string identity =
      absl::StrFormat("%x:%x:%x:%x.%x", static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
  for (size_t i = 0; i < loaded_.size(); ++i) {
    if (loaded_[i]->path != local) continue;
    if (loaded_[i]->identity != identity) {  // rewritten since: not this model any more
      Evict(i);
      break;
    }
    std::rotate(loaded_.begin() + static_cast<std::ptrdiff_t>(i), loaded_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                loaded_.end());
    return loaded_.back().get();
  }
  if (loaded_.size() >= 2) Evict(0);  // the least recently used
  auto entry = std::make_unique<Loaded>();
  entry->path = local;
  entry->identity = identity;
  absl::StatusOr<GgufModel> file = GgufModel::Open(local);
  if (!file.ok()) return file.status();
  entry->file = std::make_unique<GgufModel>(*std::move(file));
  absl::StatusOr<LlamaModel> model = LlamaModel::Load(*entry->file, local);
  if (!model.ok()) return model.status();
  entry->model = std::make_unique<LlamaModel>(*std::move(model));
  loaded_.push_back(std::move(entry));
  return loaded_.back().get();
}

void ChunkRunner::Evict(size_t i) {
  if (gpu_model_ == loaded_[i].get()) {  // its GPU copy goes with it
    gpu_forward_.reset();
    gpu_model_ = nullptr;
  }
  loaded_.erase(loaded_.begin() + static_cast<std::ptrdiff_t>(i));
}

absl::StatusOr<std::string> ChunkRunner::Run(const std::string& model_path,
                                             const quantfleet::v1::CalibrationChunk& chunk,
                                             std::string_view activations, const Fetch& fetch) {
  quantfleet::v1::ModelCopy copy;
  copy.set_path(model_path);
  copy.set_bytes(chunk.model_bytes());
  copy.set_id(chunk.model_id());
  *copy.mutable_part_names() = chunk.part_names();
  *copy.mutable_part_bytes() = chunk.part_bytes();
  absl::StatusOr<std::string> local = LocalCopy(copy, /*base=*/false, fetch);
  if (!local.ok()) return local.status();
  absl::StatusOr<Loaded*> loaded = Load(*local);
  if (!loaded.ok()) return loaded.status();
  const Loaded& m = **loaded;
  // A pipeline stage runs its layers only; end_layer 0 means the whole model.
  const int n_layer = m.model->hparams().n_layer;
  const int first = chunk.end_layer() > 0 ? chunk.first_layer() : 0;
  const int end = chunk.end_layer() > 0 ? chunk.end_layer() : n_layer;
  const ImatrixLayout layout = StageLayout(ImatrixLayoutOf(*m.file, chunk.process_output()), first, end, n_layer);
  bool same = static_cast<int>(layout.size()) == chunk.entries_size();
  for (size_t i = 0; same && i < layout.size(); ++i) same = layout[i].name == chunk.entries(static_cast<int>(i));
  if (!same) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s here has other weight matrices than the coordinator's copy; is it the same file?", *local));
  }
  std::vector<TokenId> tokens(chunk.tokens().begin(), chunk.tokens().end());
  std::vector<float> hidden;
  if (first > 0) {  // their count is checked with the layers' input (PrepareStageInput)
    if (activations.size() % sizeof(float) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chunk %d: %d bytes of activations are not whole float32 values", chunk.chunk() + 1, activations.size()));
    }
    hidden.resize(activations.size() / sizeof(float));
    std::memcpy(hidden.data(), activations.data(), activations.size());
  }
  absl::StatusOr<ChunkStatistics> stats;
  if (chunk.gpu()) {
    absl::StatusOr<GpuForward*> gpu = OnGpu(m, first, end);
    if (!gpu.ok()) return gpu.status();
    stats = (*gpu)->RunChunk(tokens, &hidden, chunk.process_output(), /*perplexity=*/true);
  } else {
    stats = RunChunkLayers(*m.model, tokens, first, end, &hidden, chunk.process_output(), /*perplexity=*/true);
  }
  if (!stats.ok()) return stats.status();
  absl::StatusOr<std::string> encoded = EncodeChunk(*stats, layout);
  if (!encoded.ok() || end == n_layer) return encoded;
  // Not the last stage: the activations for the next one come first.
  std::string out(reinterpret_cast<const char*>(hidden.data()), hidden.size() * sizeof(float));
  out += *encoded;
  return out;
}

absl::StatusOr<std::string> ChunkRunner::Score(const quantfleet::v1::EvaluationChunk& chunk,
                                               std::string_view activations, const Fetch& fetch) {
  absl::StatusOr<std::string> model_path = LocalCopy(chunk.model(), /*base=*/false, fetch);
  if (!model_path.ok()) return model_path.status();
  absl::StatusOr<std::string> base_path = LocalCopy(chunk.base(), /*base=*/true, fetch);
  if (!base_path.ok()) return base_path.status();
  absl::StatusOr<Loaded*> model = Load(*model_path);
  if (!model.ok()) return model.status();
  absl::StatusOr<Loaded*> base = Load(*base_path);  // both stay loaded: at most two are kept
  if (!base.ok()) return base.status();
  const LlamaModel& m = *(*model)->model;
  const LlamaModel& b = *(*base)->model;
  const std::vector<TokenId> tokens(chunk.tokens().begin(), chunk.tokens().end());
  const int n_layer = m.hparams().n_layer;
  if (chunk.end_layer() <= 0) {  // the whole models
    absl::StatusOr<std::vector<EvalPosition>> positions = ScoreChunk(b, m, tokens);
    if (!positions.ok()) return positions.status();
    return EncodeEvalPositions(*positions);
  }
  // A pipeline stage: both streams through its layers; the last one scores.
  const int first = chunk.first_layer(), end = chunk.end_layer();
  if (b.hparams().n_layer != n_layer || b.hparams().n_embd != m.hparams().n_embd ||
      b.hparams().n_vocab != m.hparams().n_vocab) {
    return absl::InvalidArgumentError("the model and its base differ in layers, width or vocabulary");
  }
  std::vector<float> hidden_m, hidden_b;
  if (first > 0) {
    const size_t values = tokens.size() * static_cast<size_t>(m.hparams().n_embd);
    if (activations.size() != 2 * values * sizeof(float)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("evaluation chunk %d: %d bytes of activations where both models' streams take %d",
                          chunk.chunk() + 1, activations.size(), 2 * values * sizeof(float)));
    }
    hidden_m.resize(values);
    hidden_b.resize(values);
    std::memcpy(hidden_m.data(), activations.data(), values * sizeof(float));
    std::memcpy(hidden_b.data(), activations.data() + values * sizeof(float), values * sizeof(float));
  }
  const bool last = end == n_layer;
  std::vector<float> logits_m, logits_b;
  if (absl::Status s = RunForwardLayers(m, tokens, first, end, &hidden_m, nullptr, last ? &logits_m : nullptr);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = RunForwardLayers(b, tokens, first, end, &hidden_b, nullptr, last ? &logits_b : nullptr);
      !s.ok()) {
    return s;
  }
  if (last) return EncodeEvalPositions(ScoreLogits(logits_b, logits_m, m.hparams().n_vocab, tokens));
  std::string out(reinterpret_cast<const char*>(hidden_m.data()), hidden_m.size() * sizeof(float));
  out.append(reinterpret_cast<const char*>(hidden_b.data()), hidden_b.size() * sizeof(float));
  return out;
}

absl::StatusOr<std::string> ChunkRunner::MeasureTypes(const quantfleet::v1::TypeCostTask& task, const Fetch& fetch) {
  absl::StatusOr<std::string> local = LocalCopy(task.model(), /*base=*/false, fetch);
  if (!local.ok()) return local.status();
  absl::StatusOr<Loaded*> loaded = Load(*local);
  if (!loaded.ok()) return loaded.status();
  const size_t ctx = static_cast<size_t>(task.ctx());
  if (ctx < 2 || task.tokens().empty() || task.tokens_size() % ctx != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d tokens are not whole chunks of %d", task.tokens_size(), task.ctx()));
  }
  std::vector<std::vector<TokenId>> chunks;
  for (size_t at = 0; at < static_cast<size_t>(task.tokens_size()); at += ctx) {
    chunks.emplace_back(task.tokens().begin() + static_cast<int>(at),
                        task.tokens().begin() + static_cast<int>(at + ctx));
  }
  std::map<std::string, std::vector<float>> weights;
  for (const quantfleet::v1::ImportanceWeights& w : task.weights()) {
    weights[w.name()].assign(w.values().begin(), w.values().end());
  }
  const std::vector<std::string> names(task.names().begin(), task.names().end());
  const int threads = threads_ > 0 ? threads_ : static_cast<int>(std::thread::hardware_concurrency());
  absl::StatusOr<std::vector<TensorCosts>> costs =
      MeasureTypeCosts(*(*loaded)->model, chunks, names, weights, threads, nullptr);
  SetBlasThreads(threads_);  // the measurement ran BLAS on one thread per matrix
  if (!costs.ok()) return costs.status();
  return EncodeTypeCosts(*costs);
}

absl::StatusOr<std::string> ChunkRunner::SolveLayer(const quantfleet::v1::LayerSolveTask& task,
                                                    std::string_view activations, const Fetch& fetch,
                                                    std::function<void(const std::string&)> progress) {
  absl::StatusOr<std::string> local = LocalCopy(task.model(), /*base=*/false, fetch);
  if (!local.ok()) return local.status();
  absl::StatusOr<Loaded*> loaded = Load(*local);
  if (!loaded.ok()) return loaded.status();
  const GgufModel& file = *(*loaded)->file;
  LlamaModel& model = *(*loaded)->model;
  const int n_layer = model.hparams().n_layer, layer = task.layer();
  const size_t ctx = static_cast<size_t>(task.ctx());
  if (layer < 0 || layer >= n_layer) {
    return absl::InvalidArgumentError(absl::StrFormat("layer %d: the model has %d", layer, n_layer));
  }
  if (ctx < 2 || task.tokens().empty() || task.tokens_size() % ctx != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d tokens are not whole chunks of %d", task.tokens_size(), task.ctx()));
  }
  const size_t n_embd = static_cast<size_t>(model.hparams().n_embd);
  const size_t expected = layer > 0 ? task.tokens().size() * n_embd * sizeof(float) : 0;
  if (activations.size() != expected) {
    return absl::InvalidArgumentError(absl::StrFormat("layer %d: %d bytes of activations where its input takes %d",
                                                      layer, activations.size(), expected));
  }
  std::vector<std::vector<TokenId>> chunks;
  std::vector<std::vector<float>> hidden;
  for (size_t at = 0; at < static_cast<size_t>(task.tokens_size()); at += ctx) {
    chunks.emplace_back(task.tokens().begin() + static_cast<int>(at),
                        task.tokens().begin() + static_cast<int>(at + ctx));
    std::vector<float>& h = hidden.emplace_back();
    if (layer == 0) continue;
    h.resize(ctx * n_embd);
    std::memcpy(h.data(), activations.data() + at * n_embd * sizeof(float), h.size() * sizeof(float));
  }
  // The tensors as the coordinator planned them, from this copy's sources:
  // the layer's matrices (and, folding, both norms, with every matrix),
  // each once.
  const LlamaLayer& current = model.layers()[static_cast<size_t>(layer)];
  std::set<std::string> allowed, named;
  for (const Linear* m : LayerMatrices(current)) allowed.insert(m->name);
  if (task.fold()) {
    allowed.insert(LayerNormName(layer, "attn_norm"));
    allowed.insert(LayerNormName(layer, "ffn_norm"));
  }
  for (const quantfleet::v1::LayerTensor& t : task.tensors()) {
    if (!allowed.contains(t.name()) || !named.insert(t.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("'%s' is not a tensor layer %d's solve may write (or it is named twice)", t.name(), layer));
    }
  }
  if (task.fold() && named != allowed) {
    return absl::InvalidArgumentError(
        absl::StrFormat("folding AWQ scales into layer %d needs all its matrices and both norms", layer));
  }
  std::vector<PlannedTensor> planned(static_cast<size_t>(task.tensors_size()));
  std::vector<std::vector<float>> imatrices(planned.size());
  LayerTensors tensors;
  for (size_t i = 0; i < planned.size(); ++i) {
    const quantfleet::v1::LayerTensor& t = task.tensors(static_cast<int>(i));
    const ModelTensor* source = nullptr;
    for (const ModelTensor& m : file.tensors()) {
      if (m.info.name == t.name()) source = &m;
    }
    const std::optional<GgmlType> type = ParseGgmlTypeName(t.type());
    if (source == nullptr || EntryLayer(t.name()) != layer) {
      return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a tensor of layer %d here", t.name(), layer));
    }
    if (!type || !IsSupportedTargetType(*type) || source->info.ne[0] % BlockSize(*type) != 0) {
      return absl::InvalidArgumentError(absl::StrFormat("'%s' cannot be written as %s", t.name(), t.type()));
    }
    PlannedTensor& p = planned[i];
    p.source = source;
    p.convert = true;
    p.output = source->info;
    p.output.type = *type;
    p.output.offset = 0;
    p.output.nbytes = TensorBytes(*type, source->info.ne);
    if (t.imatrix_size() > 0) {
      if (t.imatrix_size() != source->info.ne[0] * source->info.ne[2]) {
        return absl::InvalidArgumentError(absl::StrFormat("'%s': %d importance weights for %d columns x %d matrices",
                                                          t.name(), t.imatrix_size(), source->info.ne[0],
                                                          source->info.ne[2]));
      }
      imatrices[i].assign(t.imatrix().begin(), t.imatrix().end());
      p.imatrix = &imatrices[i];
    }
    tensors[t.name()] = &p;
  }
  LayerwiseOptions options;
  options.awq = task.fold();
  options.gptq = task.gptq();
  if (task.damp() > 0) options.gptq_options.damp = task.damp();
  options.gptq_options.act_order = task.act_order();
  options.progress = std::move(progress);
  if (memory_bytes_ > 0) {  // what the layer needs first; the rest for chunks' statistics at once
    const uint64_t needed =
        LayerSolveBytes(model.layers()[static_cast<size_t>(layer)], task.tokens().size() * n_embd * sizeof(float));
    options.parallel_statistics_bytes = memory_bytes_ > needed ? memory_bytes_ - needed : 0;
  }
  const int threads = threads_ > 0 ? threads_ : static_cast<int>(std::thread::hardware_concurrency());
  std::map<std::string, std::vector<uint8_t>> solved;
  absl::StatusOr<LayerReport> report =
      quantfleet::SolveLayer(model, layer, tensors, task.fold(), chunks, &hidden, options, threads, &solved);
  SetBlasThreads(threads_);  // the solve ran BLAS on one thread per matrix
  if (!report.ok()) return report.status();
  std::string out;
  if (layer + 1 < n_layer) {
    for (const std::vector<float>& h : hidden)
      out.append(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(float));
  }
  for (const quantfleet::v1::LayerTensor& t : task.tensors()) {
    const std::vector<uint8_t>& bytes = solved[t.name()];
    out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return out;
}

}  // namespace quantfleet
