// The best type per tensor for a file size: instead of one of llama.cpp's
// fixed recipes, measure what each choice costs and spend the bytes where
// they buy the most.
//
// For every weight matrix the recipe quantizes and every candidate type,
// the model runs over calibration chunks with only that matrix quantized
// (the layers before it are cached, so each run starts at its layer), and
// the mean KL divergence of its next-token distributions from the
// unquantized model's is that choice's cost. The allocation under the
// byte budget is type_choice.h's (it runs where the forward pass does not:
// on a coordinator, over costs its workers measured).
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
#include "core/calibration/type_choice.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

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

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_TYPE_BUDGET_H_
