// What a layerwise method writes. See layerwise_selection.h.
#include "core/calibration/layerwise_selection.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/quant/block_levels.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

std::vector<const Linear*> LayerMatrices(const LlamaLayer& layer) {
  return {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.gate, &layer.up, &layer.down};
}

std::string LayerNormName(int layer, const char* which) { return absl::StrFormat("blk.%d.%s.weight", layer, which); }

LayerwiseSelection SelectLayerwise(const LlamaModel& model, const QuantizePlan& plan, bool awq, bool gptq,
                                   bool own_solver) {
  LayerwiseSelection out;
  out.fold = awq;
  std::map<std::string, const Linear*> candidates;  // matrices, and norms (null) when folding
  for (size_t l = 0; l < model.layers().size(); ++l) {
    for (const Linear* m : LayerMatrices(model.layers()[l])) candidates[m->name] = m;
    if (out.fold) {
      candidates[LayerNormName(static_cast<int>(l), "attn_norm")] = nullptr;
      candidates[LayerNormName(static_cast<int>(l), "ffn_norm")] = nullptr;
    }
  }
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    auto m = candidates.find(t.output.name);
    if (m == candidates.end() || t.output.ne[0] % BlockSize(t.output.type) != 0) continue;
    if (m->second != nullptr && t.output.ne[0] != m->second->n_in) continue;
    if (!out.fold && !own_solver && (!t.convert || !HasBlockLevels(t.output.type))) continue;
    out.handled[t.output.name] = i;
  }
  if (!out.fold) return out;
  // A layer folds only when every tensor it rewrites is written here.
  for (size_t l = 0; l < model.layers().size(); ++l) {
    bool all = out.handled.contains(LayerNormName(static_cast<int>(l), "attn_norm")) &&
               out.handled.contains(LayerNormName(static_cast<int>(l), "ffn_norm"));
    for (const Linear* m : LayerMatrices(model.layers()[l])) all = all && out.handled.contains(m->name);
    if (!all) out.fold = false;
  }
  if (!out.fold) {
    for (auto it = out.handled.begin(); it != out.handled.end();) {
      const PlannedTensor& t = plan.tensors[it->second];
      const bool keep = t.convert && HasBlockLevels(t.output.type) && !absl::EndsWith(t.output.name, "norm.weight");
      it = keep && gptq ? std::next(it) : out.handled.erase(it);
    }
  }
  return out;
}

uint64_t LayerStatisticsBytes(const LlamaLayer& layer) {
  uint64_t bytes = 0;
  for (const Linear* m : {&layer.wq, &layer.wo, &layer.gate, &layer.down}) {
    bytes += static_cast<uint64_t>(m->n_in) * static_cast<uint64_t>(m->n_in) * std::max(1, m->n_mat) * 8;
  }
  return bytes;
}

uint64_t LayerSolveBytes(const LlamaLayer& layer, uint64_t activation_bytes) {
  uint64_t weights = 0;
  for (const Linear* m : LayerMatrices(layer)) {
    weights += static_cast<uint64_t>(m->n_in) * static_cast<uint64_t>(m->n_out) * std::max(1, m->n_mat) * 4;
  }
  uint64_t widest = 0;  // a matrix being solved holds two more copies of its Hessian
  for (const Linear* m : LayerMatrices(layer)) widest = std::max<uint64_t>(widest, static_cast<uint64_t>(m->n_in));
  return 3 * activation_bytes + 2 * LayerStatisticsBytes(layer) + 2 * weights + 2 * widest * widest * 8;
}

std::vector<std::string> TensorsOfLayer(const LlamaModel& model, const LayerwiseSelection& selection, int layer) {
  std::vector<std::string> names;
  const LlamaLayer& l = model.layers()[static_cast<size_t>(layer)];
  for (const Linear* m : LayerMatrices(l)) names.push_back(m->name);
  if (selection.fold) {
    names.push_back(LayerNormName(layer, "attn_norm"));
    names.push_back(LayerNormName(layer, "ffn_norm"));
  }
  std::vector<std::pair<size_t, std::string>> in_plan;
  for (const std::string& n : names) {
    auto it = selection.handled.find(n);
    if (it != selection.handled.end()) in_plan.emplace_back(it->second, n);
  }
  std::sort(in_plan.begin(), in_plan.end());
  names.clear();
  for (auto& [i, n] : in_plan) names.push_back(std::move(n));
  return names;
}

}  // namespace quantfleet
