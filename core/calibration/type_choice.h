// Choosing one type per weight matrix for a file size, once each choice's
// cost is measured (type_budget.h measures them with the forward pass; a
// cluster's workers measure them layer by layer): which matrices a recipe
// leaves to choose and the bytes left for them, the allocation that spends
// the bytes where they lower the expected KL divergence most, and the
// costs' wire form.
//
// Costs are taken to add up across matrices; the allocation minimizes
// their sum under the byte budget (an exact knapsack over the budget in at
// most 16,384 units, then the best upgrades that still fit in the bytes
// rounding left over).
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CALIBRATION_TYPE_CHOICE_H_
#define QUANTFLEET_CORE_CALIBRATION_TYPE_CHOICE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/quant/ggml_type.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

struct TypeCost {
  GgmlType type;
  uint64_t bytes = 0;  // the tensor's size in this type
  double kld = 0;      // mean KLD with only this tensor in this type
};

struct TensorCosts {
  std::string name;
  std::vector<TypeCost> options;  // ordered by bytes, smallest first
};

// The candidate types for a matrix with rows of `n_per_row` values: the
// K-quants Q2_K to Q6_K and Q8_0 when rows are whole super-blocks, else
// Q4_0, Q5_0 and Q8_0.
std::vector<GgmlType> CandidateTypes(int64_t n_per_row);

// One option per tensor (index into options) with total bytes at most
// `budget` and the least total KLD found. FAILED_PRECONDITION, with the
// smallest possible size, when even the smallest options do not fit.
absl::StatusOr<std::vector<size_t>> AllocateTypes(const std::vector<TensorCosts>& tensors, uint64_t budget);

// What is left to choose in a recipe's plan for a file of a given size.
struct TypeChoiceProblem {
  std::vector<std::string> names;               // the matrices the recipe quantizes, in plan order
  std::map<std::string, int64_t> n_per_row;     // of each
  std::map<std::string, GgmlType> recipe_type;  // what the recipe gives each
  uint64_t file_bytes = 0;                      // the size asked for
  uint64_t budget_bytes = 0;                    // what the matrices may take of it
};

// `file_bytes`, or if 0 `bits_per_weight` over the model's weights.
// INVALID_ARGUMENT when the recipe quantizes no matrix; FAILED_PRECONDITION
// when the size is below what the smallest types allow (the message says
// the smallest).
absl::StatusOr<TypeChoiceProblem> TypeChoiceFor(const QuantizePlan& plan, uint64_t file_bytes, double bits_per_weight);

struct TypeChoice {
  std::vector<TensorTypeOverride> overrides;  // one exact-name pattern per matrix
  std::vector<std::string> specs;             // the same as NAME=TYPE texts (--tensor-type)
  double expected_kld = 0;                    // the sum of the chosen costs
  double recipe_kld = 0;                      // the same for the recipe's own types
};

// The allocation over `costs` (one per problem name, any order).
// FAILED_PRECONDITION when the budget cannot hold them.
absl::StatusOr<TypeChoice> ChooseTypes(const TypeChoiceProblem& problem, const std::vector<TensorCosts>& costs);

// The names grouped by the layer they belong to (blk.N; the rest alone
// each), in order: the unit of work one cluster task measures.
std::vector<std::vector<std::string>> GroupByLayer(const std::vector<std::string>& names);

// Measured costs on the wire: per matrix in order, per candidate type in
// CandidateTypes order, the type id (uint32), 4 zero bytes, the bytes
// (uint64) and the KLD (float64), in the host's byte order (little-endian
// on every host quantfleet builds for).
inline constexpr size_t kTypeCostBytes = 24;
size_t TypeCostsBytes(const TypeChoiceProblem& problem, const std::vector<std::string>& names);
std::string EncodeTypeCosts(const std::vector<TensorCosts>& costs);
// INVALID_ARGUMENT unless `bytes` holds, for each of `names`, its
// candidates in order with finite, non-negative costs.
absl::StatusOr<std::vector<TensorCosts>> DecodeTypeCosts(std::string_view bytes, const TypeChoiceProblem& problem,
                                                         const std::vector<std::string>& names);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_TYPE_CHOICE_H_
