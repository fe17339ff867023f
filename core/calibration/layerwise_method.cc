// Quantization layer after layer over a calibration text (GPTQ, AWQ, or
// both). See layerwise_method.h.
#include "core/calibration/layerwise_method.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/calibration/chunk_statistics.h"
#include "core/model/forward_pass.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::StatusOr<HessianCollector> CollectHessians(const LlamaModel& model,
                                                 const std::vector<std::vector<TokenId>>& chunks) {
  HessianCollector total(false);
  for (const std::vector<TokenId>& chunk : chunks) {
    HessianCollector one(false);
    QF_RETURN_IF_ERROR(RunForward(model, chunk, &one, nullptr));
    total.Merge(one);
  }
  return total;
}

absl::StatusOr<std::unique_ptr<LayerwiseMethod>> LayerwiseMethod::Create(const GgufModel& file, const std::string& path,
                                                                         const QuantizePlan& plan,
                                                                         std::vector<std::vector<TokenId>> chunks,
                                                                         LayerwiseOptions options, int threads,
                                                                         Progress progress) {
  QF_ASSIGN_OR_RETURN(LlamaModel model, LlamaModel::Load(file, path));
  return std::unique_ptr<LayerwiseMethod>(
      new LayerwiseMethod(std::move(model), plan, std::move(chunks), options, threads, std::move(progress)));
}

LayerwiseMethod::LayerwiseMethod(LlamaModel model, const QuantizePlan& plan, std::vector<std::vector<TokenId>> chunks,
                                 LayerwiseOptions options, int threads, Progress progress)
    : plan_(plan),
      chunks_(std::move(chunks)),
      options_(options),
      threads_(std::max(1, threads)),
      progress_(std::move(progress)),
      model_(std::move(model)),
      hidden_(chunks_.size()) {
  const LayerwiseSelection selection =
      SelectLayerwise(model_, plan_, options_.awq, options_.gptq, static_cast<bool>(options_.solve));
  fold_ = selection.fold;
  handled_ = selection.handled;
  for (size_t l = 0; l < model_.layers().size(); ++l) {
    layer_tensors_.push_back(TensorsOfLayer(model_, selection, static_cast<int>(l)));
  }
}

bool LayerwiseMethod::Handles(const PlannedTensor& t) const { return handled_.contains(t.output.name); }

absl::StatusOr<std::vector<uint8_t>> LayerwiseMethod::Quantize(const PlannedTensor& t, int64_t matrix) {
  const int64_t n_rows = t.output.ne[1];  // one matrix
  absl::MutexLock lock(&mu_);
  QF_RETURN_IF_ERROR(SolveThrough(EntryLayer(t.output.name)));
  auto it = solved_.find(t.output.name);
  if (it == solved_.end()) {
    return absl::InternalError(absl::StrFormat("tensor '%s' was not solved", t.output.name));
  }
  const size_t matrix_bytes = static_cast<size_t>(n_rows) * RowSize(t.output.type, t.output.ne[0]);
  const size_t at = static_cast<size_t>(matrix) * matrix_bytes;
  if (at + matrix_bytes > it->second.bytes.size()) {
    return absl::InternalError(absl::StrFormat("tensor '%s' has no matrix %d", t.output.name, matrix));
  }
  std::vector<uint8_t> out(it->second.bytes.begin() + at, it->second.bytes.begin() + at + matrix_bytes);
  if (--it->second.matrices_left == 0) solved_.erase(it);
  return out;
}

absl::Status LayerwiseMethod::SolveThrough(int layer) {
  while (failed_.ok() && next_layer_ <= layer) {
    absl::StatusOr<LayerReport> report = SolveLayer(next_layer_);
    ++next_layer_;
    if (!report.ok()) {
      failed_ = report.status();
    } else if (progress_) {
      progress_(*report, static_cast<int>(model_.layers().size()));
    }
  }
  return failed_;
}

absl::StatusOr<LayerReport> LayerwiseMethod::SolveLayer(int layer) {
  LayerTensors tensors;
  for (const std::string& name : layer_tensors_[static_cast<size_t>(layer)]) {
    tensors[name] = &plan_.tensors[handled_.at(name)];
  }
  std::map<std::string, std::vector<uint8_t>> solved;
  LayerwiseOptions options = options_;
  if (options_.progress) {  // said of this layer
    const size_t n_layer = model_.layers().size();
    options.progress = [this, layer, n_layer](const std::string& step) {
      options_.progress(absl::StrFormat("layer %d/%d: %s", layer + 1, n_layer, step));
    };
  }
  QF_ASSIGN_OR_RETURN(LayerReport report, quantfleet::SolveLayer(model_, layer, tensors, fold_, chunks_, &hidden_,
                                                                 options, threads_, &solved));
  SetBlasThreads(threads_);  // the forward pass on every thread again, as before the layer
  // The quantized bytes go to the executor, which frees them once taken.
  for (auto& [name, bytes] : solved) {
    Solved& s = solved_[name];
    s.bytes = std::move(bytes);
    s.matrices_left = tensors[name]->output.ne[2];
  }
  return report;
}

}  // namespace quantfleet
