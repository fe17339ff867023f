// `quantfleet quantize --method gptq`: the matrices the forward pass
// multiplies, quantized to their planned ggml type by GPTQ (gptq_ggml.h)
// over the Hessians of a calibration text; everything else (norms,
// embeddings, tensors whose type has no block levels, such as the IQ
// types) goes to the type's own quantizer as usual. The importance weights
// that pick each block's scales are the plan's imatrix where one was given,
// otherwise diag(H) / 2, the imatrix of the same text.
//
// Thread-safety: Quantize may run on several threads at once (the
// Hessians are only read).
#ifndef QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_
#define QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_

#include <functional>
#include <string>
#include <vector>

#include "core/calibration/gptq_solver.h"
#include "core/calibration/hessian_collector.h"
#include "core/model/llama_model.h"
#include "core/quant/model_quantizer.h"

namespace quantfleet {

class GptqMethod final : public TensorMethod {
 public:
  // `hessians` must outlive the method.
  GptqMethod(const HessianCollector& hessians, GptqOptions options) : hessians_(hessians), options_(options) {}

  bool Handles(const PlannedTensor& t) const override;
  absl::StatusOr<std::vector<uint8_t>> Quantize(const PlannedTensor& t, int64_t matrix, const float* rows,
                                                int64_t n_rows) const override;

  // The Hessian entry a weight is solved over ("" when there is none).
  static std::string EntryFor(const std::string& weight_name);

 private:
  const HessianCollector& hessians_;
  const GptqOptions options_;
};

// The Hessians of every weight matrix over `chunks` (each a chunk of
// tokens with BOS first), summed in chunk order; `on_chunk(done, total)`
// after each chunk (may be null).
absl::StatusOr<HessianCollector> CollectHessians(const LlamaModel& model,
                                                 const std::vector<std::vector<TokenId>>& chunks,
                                                 const std::function<void(size_t, size_t)>& on_chunk);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_
