// See type_choice.h.
#include "core/calibration/type_choice.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace quantfleet {

namespace {

constexpr uint64_t kAlignment = 32;  // tensors are laid out 32 bytes apart

uint64_t Aligned(uint64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

std::vector<GgmlType> CandidateTypes(int64_t n_per_row) {
  if (n_per_row % 256 == 0) {
    return {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_0};
  }
  return {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ8_0};
}

absl::StatusOr<std::vector<size_t>> AllocateTypes(const std::vector<TensorCosts>& tensors, uint64_t budget) {
  uint64_t smallest = 0;
  for (const TensorCosts& t : tensors) {
    if (t.options.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s has no candidate type", t.name));
    smallest += t.options.front().bytes;
  }
  if (smallest > budget) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the quantized matrices need at least %d bytes in the smallest types, %d over the budget",
                        smallest, smallest - budget));
  }
  // Exact multiple-choice knapsack over the budget cut into at most
  // kUnits units, each option's bytes rounded up to whole units (so the
  // choice always fits): least total KLD per number of units used.
  constexpr uint64_t kUnits = 1 << 14;
  const uint64_t unit = std::max<uint64_t>(1, (budget + kUnits - 1) / kUnits);
  const size_t capacity = static_cast<size_t>(budget / unit);
  std::vector<double> best(capacity + 1, 0.0), next(capacity + 1);
  std::vector<std::vector<uint8_t>> choice(tensors.size(), std::vector<uint8_t>(capacity + 1, 0));
  for (size_t t = 0; t < tensors.size(); ++t) {
    for (size_t c = 0; c <= capacity; ++c) {
      next[c] = INFINITY;
      for (size_t o = 0; o < tensors[t].options.size(); ++o) {
        const size_t w = static_cast<size_t>((tensors[t].options[o].bytes + unit - 1) / unit);
        if (w > c || best[c - w] == INFINITY) continue;
        const double v = best[c - w] + tensors[t].options[o].kld;
        if (v < next[c]) {
          next[c] = v;
          choice[t][c] = static_cast<uint8_t>(o);
        }
      }
    }
    best.swap(next);
  }
  std::vector<size_t> fitting(tensors.size(), 0);
  if (best[capacity] == INFINITY) {
    // Rounding up made the smallest options overflow the units: they fit in bytes.
  } else {
    size_t c = capacity;
    for (size_t t = tensors.size(); t-- > 0;) {
      fitting[t] = choice[t][c];
      c -= static_cast<size_t>((tensors[t].options[fitting[t]].bytes + unit - 1) / unit);
    }
  }
  // Spend what is left on the upgrades that lower the KLD most per byte.
  uint64_t used = 0;
  for (size_t t = 0; t < tensors.size(); ++t) used += tensors[t].options[fitting[t]].bytes;
  for (;;) {
    double best_gain = 0;
    size_t best_t = 0, best_o = 0;
    for (size_t t = 0; t < tensors.size(); ++t) {
      const TypeCost& now = tensors[t].options[fitting[t]];
      for (size_t o = 0; o < tensors[t].options.size(); ++o) {
        const TypeCost& c = tensors[t].options[o];
        if (c.bytes <= now.bytes || c.kld >= now.kld || used - now.bytes + c.bytes > budget) continue;
        const double gain = (now.kld - c.kld) / static_cast<double>(c.bytes - now.bytes);
        if (gain > best_gain) {
          best_gain = gain;
          best_t = t;
          best_o = o;
        }
      }
    }
    if (best_gain <= 0) break;
    used = used - tensors[best_t].options[fitting[best_t]].bytes + tensors[best_t].options[best_o].bytes;
    fitting[best_t] = best_o;
  }
  return fitting;
}

absl::StatusOr<TypeChoiceProblem> TypeChoiceFor(const QuantizePlan& plan, uint64_t file_bytes, double bits_per_weight) {
  // The matrices the recipe quantizes are the ones to choose for; every
  // other tensor keeps the recipe's type.
  TypeChoiceProblem p;
  uint64_t chosen_bytes_in_recipe = 0;
  for (const PlannedTensor& t : plan.tensors) {
    if (!t.convert || !IsQuantized(t.output.type) || t.output.ne[2] != 1 || t.output.ne[1] <= 1) continue;
    p.names.push_back(t.output.name);
    p.n_per_row[t.output.name] = t.output.ne[0];
    p.recipe_type[t.output.name] = t.output.type;
    chosen_bytes_in_recipe += Aligned(t.output.nbytes);
  }
  if (p.names.empty()) return absl::InvalidArgumentError("the recipe quantizes no weight matrix; nothing to choose");
  p.file_bytes =
      file_bytes > 0 ? file_bytes : static_cast<uint64_t>(bits_per_weight * static_cast<double>(plan.n_elements) / 8);
  const uint64_t fixed = plan.file_size() - chosen_bytes_in_recipe;
  uint64_t smallest = fixed;
  for (const PlannedTensor& t : plan.tensors) {
    if (!p.recipe_type.contains(t.output.name)) continue;
    const GgmlType least = CandidateTypes(t.output.ne[0]).front();
    smallest += Aligned(RowSize(least, t.output.ne[0]) * static_cast<uint64_t>(t.output.n_rows()));
  }
  if (p.file_bytes < smallest) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "a file of %d bytes cannot hold this model: with every weight matrix in its smallest type (Q2_K, or Q4_0 "
        "where rows are not whole super-blocks) it takes %d bytes",
        p.file_bytes, smallest));
  }
  p.budget_bytes = p.file_bytes - fixed;
  return p;
}

absl::StatusOr<TypeChoice> ChooseTypes(const TypeChoiceProblem& problem, const std::vector<TensorCosts>& costs) {
  absl::StatusOr<std::vector<size_t>> picks = AllocateTypes(costs, problem.budget_bytes);
  if (!picks.ok()) {
    return absl::FailedPreconditionError(absl::StrFormat("a file of %d bytes is too small for this model: %s",
                                                         problem.file_bytes, picks.status().message()));
  }
  TypeChoice out;
  for (size_t t = 0; t < costs.size(); ++t) {
    const TensorCosts& c = costs[t];
    const TypeCost& pick = c.options[(*picks)[t]];
    out.expected_kld += pick.kld;
    const auto recipe = problem.recipe_type.find(c.name);
    for (const TypeCost& o : c.options) {
      if (recipe != problem.recipe_type.end() && o.type == recipe->second) out.recipe_kld += o.kld;
    }
    // An exact-name pattern: first match wins, ahead of any the user gave.
    const std::string pattern = "^" + absl::StrReplaceAll(c.name, {{".", "\\."}}) + "$";
    out.overrides.push_back({pattern, pick.type});
    out.specs.push_back(absl::StrFormat("%s=%s", pattern, TypeName(pick.type)));
  }
  return out;
}

std::vector<std::vector<std::string>> GroupByLayer(const std::vector<std::string>& names) {
  std::vector<std::vector<std::string>> groups;
  std::map<int, size_t> group_of_layer;
  for (const std::string& name : names) {
    int layer = -1;
    if (name.rfind("blk.", 0) == 0) {
      const size_t dot = name.find('.', 4);
      if (dot == std::string::npos || !absl::SimpleAtoi(name.substr(4, dot - 4), &layer)) layer = -1;
    }
    if (layer < 0) {
      groups.push_back({name});
      continue;
    }
    const auto [it, added] = group_of_layer.emplace(layer, groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(name);
  }
  return groups;
}

size_t TypeCostsBytes(const TypeChoiceProblem& problem, const std::vector<std::string>& names) {
  size_t n = 0;
  for (const std::string& name : names) n += CandidateTypes(problem.n_per_row.at(name)).size() * kTypeCostBytes;
  return n;
}

std::string EncodeTypeCosts(const std::vector<TensorCosts>& costs) {
  std::string out;
  for (const TensorCosts& t : costs) {
    for (const TypeCost& o : t.options) {
      char record[kTypeCostBytes] = {};
      const uint32_t type = static_cast<uint32_t>(o.type);
      std::memcpy(record, &type, 4);
      std::memcpy(record + 8, &o.bytes, 8);
      std::memcpy(record + 16, &o.kld, 8);
      out.append(record, sizeof(record));
    }
  }
  return out;
}

absl::StatusOr<std::vector<TensorCosts>> DecodeTypeCosts(std::string_view bytes, const TypeChoiceProblem& problem,
                                                         const std::vector<std::string>& names) {
  if (bytes.size() != TypeCostsBytes(problem, names)) {
    return absl::InvalidArgumentError(absl::StrFormat("%d bytes of measured costs where %d matrices take %d",
                                                      bytes.size(), names.size(), TypeCostsBytes(problem, names)));
  }
  std::vector<TensorCosts> out;
  const char* at = bytes.data();
  for (const std::string& name : names) {
    TensorCosts t{name, {}};
    for (GgmlType want : CandidateTypes(problem.n_per_row.at(name))) {
      uint32_t type;
      TypeCost o;
      std::memcpy(&type, at, 4);
      std::memcpy(&o.bytes, at + 8, 8);
      std::memcpy(&o.kld, at + 16, 8);
      at += kTypeCostBytes;
      if (type != static_cast<uint32_t>(want) || !std::isfinite(o.kld) || o.kld < -1e-6 || o.bytes == 0) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: the cost of %s is not a measurement (type %d, %d bytes, KLD %g)", name, TypeName(want),
                            type, o.bytes, o.kld));
      }
      o.type = want;
      t.options.push_back(o);
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace quantfleet
