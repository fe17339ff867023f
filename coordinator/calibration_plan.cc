#include "coordinator/calibration_plan.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <numeric>

namespace quantfleet {

uint64_t ModelFootprint::Total() const { return StageBytes(0, static_cast<int>(layers.size())); }

uint64_t ModelFootprint::LayerBytes(int first, int end) const {
  return std::accumulate(layers.begin() + first, layers.begin() + end, uint64_t{0});
}

uint64_t ModelFootprint::StageBytes(int first, int end) const {
  uint64_t n = LayerBytes(first, end);
  if (first == 0) n += embedding;
  if (end == static_cast<int>(layers.size())) n += head;
  return n;
}

ModelFootprint FootprintOf(const GgufModel& model, int n_layer) {
  ModelFootprint f;
  f.layers.assign(static_cast<size_t>(n_layer), 0);
  bool has_output = false;
  for (const ModelTensor& t : model.tensors()) {
    const std::string& name = t.info.name;
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) == 1 && layer >= 0 && layer < n_layer) {
      f.layers[static_cast<size_t>(layer)] += t.info.nbytes;
    } else if (name == "token_embd.weight") {
      f.embedding = t.info.nbytes;
    } else if (name == "output.weight" || name == "output_norm.weight") {
      f.head += t.info.nbytes;
      has_output = has_output || name == "output.weight";
    }
  }
  if (!has_output) f.head += f.embedding;  // tied: the head reads the embedding
  return f;
}

namespace {

// Cuts layers into stages for budgets (sorted, largest first, no zeros),
// `take(stage, first, bytes_so_far, next)` saying whether stage `stage`
// starting at `first` takes layer `next` too. nullopt: a stage overflows.
std::optional<std::vector<int>> Cut(const ModelFootprint& f, const std::vector<uint64_t>& budgets,
                                    const std::function<bool(size_t, int, int)>& take) {
  const int n = static_cast<int>(f.layers.size());
  const size_t stages = std::min(budgets.size(), f.layers.size());
  std::vector<int> ends;
  int first = 0;
  for (size_t s = 0; s < stages && first < n; ++s) {
    const bool last = s + 1 == stages;
    int end = first + 1;
    // Leave a layer for every later stage; the last stage takes the rest.
    const int limit = last ? n : n - static_cast<int>(stages - s - 1);
    if (last) {
      end = n;
    } else {
      while (end < limit && take(s, first, end)) ++end;
    }
    if (f.StageBytes(first, end) > budgets[s]) return std::nullopt;
    ends.push_back(end);
    first = end;
  }
  if (first != n) return std::nullopt;
  return ends;
}

}  // namespace

std::optional<std::vector<int>> PlanStages(const ModelFootprint& f, std::vector<uint64_t> budgets) {
  const int n = static_cast<int>(f.layers.size());
  if (n == 0 || budgets.empty()) return std::nullopt;
  const uint64_t total = f.Total();
  for (uint64_t b : budgets) {
    if (b == 0 || b >= total) return std::vector<int>{n};
  }
  std::sort(budgets.rbegin(), budgets.rend());
  const double budget_sum = std::accumulate(budgets.begin(), budgets.end(), 0.0);
  // Work in proportion to memory: stage s ends near the layer where the
  // work so far reaches its share, without overflowing its budget.
  const double work = static_cast<double>(f.LayerBytes(0, n) + f.head);
  std::vector<double> share_end(budgets.size());
  double so_far = 0;
  for (size_t s = 0; s < budgets.size(); ++s) {
    so_far += static_cast<double>(budgets[s]);
    share_end[s] = work * so_far / budget_sum;
  }
  auto proportional = [&](size_t s, int first, int next) {
    if (f.StageBytes(first, next + 1) > budgets[s]) return false;
    const double before = static_cast<double>(f.LayerBytes(0, next));
    const double after = before + static_cast<double>(f.layers[static_cast<size_t>(next)]);
    return after - share_end[s] <= share_end[s] - before;  // the nearer boundary
  };
  if (std::optional<std::vector<int>> ends = Cut(f, budgets, proportional)) return ends;
  // Fill each stage as far as its budget allows.
  auto greedy = [&](size_t s, int first, int next) { return f.StageBytes(first, next + 1) <= budgets[s]; };
  return Cut(f, budgets, greedy);
}

}  // namespace quantfleet
