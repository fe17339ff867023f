// The best type per tensor for a file size: instead of one of llama.cpp's
// fixed recipes, measure what each choice costs and spend the bytes where
// they buy the most.
//
// For every weight matrix the recipe quantizes and every candidate type,
// the model runs over calibration chunks with only that matrix quantized
// (the layers before it are cached, so each run starts at its layer), and
// the mean KL divergence of its next-token distributions from the
// unquantized model's is that choice's cost. Costs are taken to add up
// across matrices; the allocation minimizes their sum under the byte
// budget (an exact knapsack over the budget in at most 16,384 units, then
// the best upgrades that still fit in the bytes rounding left over).
//
// Thread-safety: functions on values; MeasureTypeCosts reads the model it
// is given and works on copies of it, on threads of its own.
#ifndef QUANTFLEET_CORE_CALIBRATION_TYPE_BUDGET_H_
#define QUANTFLEET_CORE_CALIBRATION_TYPE_BUDGET_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"
#include "core/quant/ggml_type.h"

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

// Measures every candidate type of every matrix in `names` over `chunks`
// (each with BOS first, as CutChunks makes them), with importance weights
// from `imatrix` (tensor name -> weights; may be empty), on `threads`
// threads (matrices in parallel; BLAS then runs single-threaded).
// `on_tensor` reports progress (called under a lock, from any of them).
// INVALID_ARGUMENT for a name that is no dense matrix of the model.
absl::StatusOr<std::vector<TensorCosts>> MeasureTypeCosts(const LlamaModel& model,
                                                          const std::vector<std::vector<TokenId>>& chunks,
                                                          const std::vector<std::string>& names,
                                                          const std::map<std::string, std::vector<float>>& imatrix,
                                                          int threads,
                                                          const std::function<void(int done, int total)>& on_tensor);

// One option per tensor (index into options) with total bytes at most
// `budget` and the least total KLD found. FAILED_PRECONDITION, with the
// smallest possible size, when even the smallest options do not fit.
absl::StatusOr<std::vector<size_t>> AllocateTypes(const std::vector<TensorCosts>& tensors, uint64_t budget);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_TYPE_BUDGET_H_
