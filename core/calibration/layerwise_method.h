// `quantfleet quantize --method gptq | awq | awq+gptq`: the matrices the
// forward pass multiplies, quantized layer after layer over a calibration
// text on one machine. Which tensors it writes is layerwise_selection.h's
// choice; each layer is solved by SolveLayer (layer_solve.h) from the
// activations the already-quantized layers before it produce (as GPTQModel
// and AutoAWQ do), so each layer also makes up for the errors of those
// before it. Everything else (embeddings, the output head, other norms)
// goes to the type's own quantizer as usual.
//
// Memory: the activations entering the current layer for every chunk
// (chunks x ctx x n_embd floats); one layer's statistics (Hessians in
// double: about 4 GiB for an 8B layer, 15 GiB for a 70B one) as a sum, and
// as each running chunk's own (added in chunk order, at most 8 GiB of them
// at once; see layer_solve.h) and its weights as floats; per matrix being
// solved, two more copies of its Hessian; and the quantized bytes of
// solved tensors until the executor takes them (it asks in file order,
// which is layer order in the files llama.cpp writes).
//
// Thread-safety: Handles and Quantize may be called from several threads;
// the first caller that needs a layer solves it (its matrices on up to
// `threads` threads) while the others wait.
#ifndef QUANTFLEET_CORE_CALIBRATION_LAYERWISE_METHOD_H_
#define QUANTFLEET_CORE_CALIBRATION_LAYERWISE_METHOD_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/hessian_collector.h"
#include "core/calibration/layer_solve.h"
#include "core/calibration/layerwise_selection.h"
#include "core/model/llama_model.h"
#include "core/quant/model_quantizer.h"

namespace quantfleet {

class LayerwiseMethod final : public TensorMethod {
 public:
  using Progress = std::function<void(const LayerReport&, int n_layer)>;

  // `file` (named `path` in errors) and `plan` must outlive the method;
  // `chunks` are calibration chunks with BOS first. Errors: those of
  // LlamaModel::Load.
  static absl::StatusOr<std::unique_ptr<LayerwiseMethod>> Create(const GgufModel& file, const std::string& path,
                                                                 const QuantizePlan& plan,
                                                                 std::vector<std::vector<TokenId>> chunks,
                                                                 LayerwiseOptions options, int threads,
                                                                 Progress progress);

  bool Handles(const PlannedTensor& t) const override;
  // Whether AWQ scales are folded: asked for, a dense model, and every
  // tensor a fold rewrites is one the plan lets this method write.
  bool folds() const { return fold_; }
  absl::StatusOr<std::vector<uint8_t>> Quantize(const PlannedTensor& t, int64_t matrix) override;

 private:
  LayerwiseMethod(LlamaModel model, const QuantizePlan& plan, std::vector<std::vector<TokenId>> chunks,
                  LayerwiseOptions options, int threads, Progress progress);

  // Solves layers up to `layer`, in order.
  absl::Status SolveThrough(int layer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<LayerReport> SolveLayer(int layer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const QuantizePlan& plan_;
  const std::vector<std::vector<TokenId>> chunks_;
  const LayerwiseOptions options_;
  const int threads_;
  const Progress progress_;
  bool fold_ = false;                                    // AWQ on a model it applies to
  std::map<std::string, size_t> handled_;                // tensor name -> index into plan_.tensors (fixed at creation)
  std::vector<std::vector<std::string>> layer_tensors_;  // per layer, the names it writes

  absl::Mutex mu_;
  LlamaModel model_ ABSL_GUARDED_BY(mu_);                        // the source weights (see SolveLayer)
  std::vector<std::vector<float>> hidden_ ABSL_GUARDED_BY(mu_);  // per chunk, entering layer next_layer_
  int next_layer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  struct Solved {
    std::vector<uint8_t> bytes;  // every matrix of the tensor, back to back
    int64_t matrices_left = 0;   // not yet taken by the executor
  };
  std::map<std::string, Solved> solved_ ABSL_GUARDED_BY(mu_);
};

// The Hessians of every weight matrix over `chunks` (each a chunk of
// tokens with BOS first) through `model` as it is, summed in chunk order.
absl::StatusOr<HessianCollector> CollectHessians(const LlamaModel& model,
                                                 const std::vector<std::vector<TokenId>>& chunks);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_LAYERWISE_METHOD_H_
