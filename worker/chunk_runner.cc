#include "worker/chunk_runner.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "core/calibration/chunk_run.h"

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

absl::StatusOr<GpuForward*> ChunkRunner::OnGpu(int first, int end) {
  if (gpu_ < 0) return absl::FailedPreconditionError("a GPU calibration job, but this worker has no GPU (--gpu)");
  if (gpu_forward_ == nullptr || gpu_range_ != std::make_pair(first, end)) {
    gpu_forward_.reset();  // its device memory first
    absl::StatusOr<std::unique_ptr<GpuForward>> created = GpuForward::Create(*model_, gpu_, first, end);
    if (!created.ok()) {
      return absl::Status(created.status().code(), absl::StrFormat("GPU %d: %s", gpu_, created.status().message()));
    }
    gpu_forward_ = *std::move(created);
    gpu_range_ = {first, end};
  }
  return gpu_forward_.get();
}

absl::StatusOr<std::string> ChunkRunner::FetchIntoCache(const std::string& model_path,
                                                        const quantfleet::v1::CalibrationChunk& chunk,
                                                        const Fetch& fetch) {
  // One file: CACHE/STEM.ID.gguf. A split model: its parts, under their
  // own names (which the first part's metadata implies), in CACHE/STEM.ID/.
  // The id is the coordinator's (sizes and times in hex): nothing in it may
  // lead out of the cache.
  const std::string& id = chunk.model_id();
  if (id.empty() || id.size() > 256 ||
      !std::all_of(id.begin(), id.end(), [](char ch) { return absl::ascii_isxdigit(ch) || ch == '-'; })) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the coordinator sent a model id '%s' that is not a file name", id.substr(0, 64)));
  }
  const std::string base =
      absl::StrFormat("%s/%s.%s", cache_dir_, std::filesystem::path(model_path).stem().string(), chunk.model_id());
  struct Part {
    std::string path;
    int64_t bytes;
  };
  std::vector<Part> parts;
  if (chunk.part_names_size() == 0) {
    parts.push_back({base + ".gguf", chunk.model_bytes()});
  } else if (chunk.part_names_size() != chunk.part_bytes_size()) {
    return absl::InvalidArgumentError("the coordinator sent part names and sizes that do not pair up");
  } else {
    for (int i = 0; i < chunk.part_names_size(); ++i) {
      const std::string& name = chunk.part_names(i);
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a file name for a model part", name));
      }
      parts.push_back({base + "/" + name, chunk.part_bytes(i)});
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    std::error_code ec;
    if (std::filesystem::file_size(parts[i].path, ec) == static_cast<uintmax_t>(parts[i].bytes) && !ec) continue;
    if (absl::Status s = fetch(parts[i].path, static_cast<int>(i), parts[i].bytes); !s.ok()) return s;
  }
  return parts[0].path;
}

absl::StatusOr<std::string> ChunkRunner::Run(const std::string& model_path,
                                             const quantfleet::v1::CalibrationChunk& chunk,
                                             std::string_view activations, const Fetch& fetch) {
  std::optional<std::string> local = PathInsideRoots(model_path, data_roots_);
  if (!local && chunk.model_bytes() > 0 && !cache_dir_.empty()) {
    absl::StatusOr<std::string> cached = FetchIntoCache(model_path, chunk, fetch);
    if (!cached.ok()) return cached.status();
    local = *cached;
  }
  if (!local) {
    return absl::NotFoundError(absl::StrFormat(
        "%s is not under this worker's --data-root, and it has no --cache-dir to stream it into", model_path));
  }
  if (*local != loaded_path_) {
    gpu_forward_.reset();
    gpu_range_ = {-1, -1};
    model_.reset();
    file_.reset();
    absl::StatusOr<GgufModel> file = GgufModel::Open(*local);
    if (!file.ok()) return file.status();
    file_ = std::make_unique<GgufModel>(*std::move(file));
    absl::StatusOr<LlamaModel> model = LlamaModel::Load(*file_, *local);
    if (!model.ok()) return model.status();
    model_ = std::make_unique<LlamaModel>(*std::move(model));
    loaded_path_ = *local;
  }
  // A pipeline stage runs its layers only; end_layer 0 means the whole model.
  const int n_layer = model_->hparams().n_layer;
  const int first = chunk.end_layer() > 0 ? chunk.first_layer() : 0;
  const int end = chunk.end_layer() > 0 ? chunk.end_layer() : n_layer;
  const ImatrixLayout layout = StageLayout(ImatrixLayoutOf(*file_, chunk.process_output()), first, end, n_layer);
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
    absl::StatusOr<GpuForward*> gpu = OnGpu(first, end);
    if (!gpu.ok()) return gpu.status();
    stats = (*gpu)->RunChunk(tokens, &hidden, chunk.process_output(), /*perplexity=*/true);
  } else {
    stats = RunChunkLayers(*model_, tokens, first, end, &hidden, chunk.process_output(), /*perplexity=*/true);
  }
  if (!stats.ok()) return stats.status();
  absl::StatusOr<std::string> encoded = EncodeChunk(*stats, layout);
  if (!encoded.ok() || end == n_layer) return encoded;
  // Not the last stage: the activations for the next one come first.
  std::string out(reinterpret_cast<const char*>(hidden.data()), hidden.size() * sizeof(float));
  out += *encoded;
  return out;
}

}  // namespace quantfleet
