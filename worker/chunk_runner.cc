#include "worker/chunk_runner.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"

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

absl::StatusOr<std::string> ChunkRunner::Run(const std::string& model_path,
                                             const quantfleet::v1::CalibrationChunk& chunk,
                                             std::string_view activations, const Fetch& fetch) {
  std::optional<std::string> local = PathInsideRoots(model_path, data_roots_);
  if (!local && chunk.model_bytes() > 0 && !cache_dir_.empty()) {
    const std::string cached = absl::StrFormat("%s/%s.%s.gguf", cache_dir_,
                                               std::filesystem::path(model_path).stem().string(), chunk.model_id());
    std::error_code ec;
    if (std::filesystem::file_size(cached, ec) != static_cast<uintmax_t>(chunk.model_bytes()) || ec) {
      if (absl::Status s = fetch(cached); !s.ok()) return s;
    }
    local = cached;
  }
  if (!local) {
    return absl::NotFoundError(absl::StrFormat(
        "%s is not under this worker's --data-root and cannot be streamed (a split model, or no --cache-dir)",
        model_path));
  }
  if (*local != loaded_path_) {
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
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s here has other weight matrices than the coordinator's copy; is it the same file?", *local));
  }
  std::vector<TokenId> tokens(chunk.tokens().begin(), chunk.tokens().end());
  std::vector<float> hidden;
  if (first > 0) {
    if (activations.size() != tokens.size() * static_cast<size_t>(model_->hparams().n_embd) * sizeof(float)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chunk %d: %d bytes of activations enter layer %d; %d tokens of %d need %d", chunk.chunk() + 1,
          activations.size(), first, tokens.size(), model_->hparams().n_embd,
          tokens.size() * model_->hparams().n_embd * sizeof(float)));
    }
    hidden.resize(activations.size() / sizeof(float));
    std::memcpy(hidden.data(), activations.data(), activations.size());
  }
  absl::StatusOr<ChunkStatistics> stats =
      RunChunkLayers(*model_, tokens, first, end, &hidden, chunk.process_output(), /*perplexity=*/true);
  if (!stats.ok()) return stats.status();
  absl::StatusOr<std::string> encoded = EncodeChunk(*stats, layout);
  if (!encoded.ok() || end == n_layer) return encoded;
  // Not the last stage: the activations for the next one come first.
  std::string out(reinterpret_cast<const char*>(hidden.data()), hidden.size() * sizeof(float));
  out += *encoded;
  return out;
}

}  // namespace quantfleet
