// `quantfleet quantize --method gptq`: the matrices the forward pass
// multiplies, quantized to their planned ggml type by GPTQ (gptq_ggml.h),
// layer after layer. Layer l's Hessians come from the calibration chunks'
// activations as the already-quantized layers 0..l-1 produce them (as
// GPTQModel does), so each layer also makes up for the errors of those
// before it. Everything else (norms, embeddings, the output head) goes to
// the type's own quantizer as usual. The importance weights that pick each
// block's scales are the plan's imatrix where one was given, otherwise
// diag(H) / 2, the imatrix of the same text.
//
// Memory: the activations entering the current layer for every chunk
// (chunks x ctx x n_embd floats), one layer's Hessians (in double), and the
// quantized bytes of solved matrices until the executor takes them (it
// asks in file order, which is layer order in the files llama.cpp writes).
//
// Thread-safety: Handles and Quantize may be called from several threads;
// the first caller that needs a layer solves it (its matrices on up to
// `threads` threads) while the others wait.
#ifndef QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_
#define QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/gptq_solver.h"
#include "core/calibration/hessian_collector.h"
#include "core/model/llama_model.h"
#include "core/quant/model_quantizer.h"

namespace quantfleet {

class GptqMethod final : public TensorMethod {
 public:
  // After each layer: (layers solved, layers in all).
  using Progress = std::function<void(int, int)>;

  // `file` (named `path` in errors) and `plan` must outlive the method;
  // `chunks` are calibration chunks with BOS first. Errors: those of
  // LlamaModel::Load.
  static absl::StatusOr<std::unique_ptr<GptqMethod>> Create(const GgufModel& file, const std::string& path,
                                                            const QuantizePlan& plan,
                                                            std::vector<std::vector<TokenId>> chunks,
                                                            GptqOptions options, int threads, Progress progress);

  bool Handles(const PlannedTensor& t) const override;
  absl::StatusOr<std::vector<uint8_t>> Quantize(const PlannedTensor& t, int64_t matrix, const float* rows,
                                                int64_t n_rows) override;

  // The Hessian entry a weight is solved over (HessianCollector's key).
  static std::string EntryFor(const std::string& weight_name);

 private:
  GptqMethod(LlamaModel model, const QuantizePlan& plan, std::vector<std::vector<TokenId>> chunks, GptqOptions options,
             int threads, Progress progress);

  // Solves layers up to `layer`, in order.
  absl::Status SolveThrough(int layer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SolveLayer(int layer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const QuantizePlan& plan_;
  const std::vector<std::vector<TokenId>> chunks_;
  const GptqOptions options_;
  const int threads_;
  const Progress progress_;
  std::map<std::string, size_t> handled_;  // tensor name -> index into plan_.tensors (fixed at creation)

  absl::Mutex mu_;
  LlamaModel model_ ABSL_GUARDED_BY(mu_);                        // solved layers point at their quantized bytes
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

#endif  // QUANTFLEET_CORE_CALIBRATION_GPTQ_METHOD_H_
