// One layer of a layerwise method (GPTQ, AWQ, or both): from the
// activations entering the layer for every calibration chunk, the layer's
// quantized tensors and the activations leaving it. The local method
// (layerwise_method.h) runs it layer after layer; on the cluster a worker
// runs it for one layer task. Given the same weights, chunks, activations
// and options it gives the same bytes wherever it runs on the same kind
// of CPU.
//
// For the layer:
//   1. its input statistics (each matrix's Hessian H = (2/N) sum x x^T and,
//      for AWQ, mean |x| per channel) over the chunks, as many chunks at
//      once as `threads` and options.parallel_statistics_bytes allow;
//   2. with AWQ folding, the scales of its groups (q/k/v after attn_norm,
//      o after v, and on dense models gate/up after ffn_norm, down after
//      up) are searched (awq_search.h) and folded: the norms' weights and
//      v's and up's rows divided by them, the matrices' columns
//      multiplied; the Hessians and importance weights follow
//      (H -> S^-1 H S^-1);
//   3. each matrix goes to its planned type: by GPTQ (gptq_ggml.h), by a
//      solver of the caller's, or by the type's own quantizer; the
//      importance weights are the plan's imatrix where it has one,
//      otherwise diag(H) / 2;
//   4. the chunks go on through the quantized layer.
//
// Thread-safety: SolveLayer changes `model` while it runs (the layer's
// matrices and norms point at the quantized values, and back before it
// returns): nothing else may use the model meanwhile.
#ifndef QUANTFLEET_CORE_CALIBRATION_LAYER_SOLVE_H_
#define QUANTFLEET_CORE_CALIBRATION_LAYER_SOLVE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/awq_search.h"
#include "core/calibration/gptq_solver.h"
#include "core/model/llama_model.h"
#include "core/model/tokenizer.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

// Solves one matrix into the bytes its planned type holds (rows x
// RowSize(type, columns)), given its weights (rows x columns floats, AWQ
// scales folded in) and the Hessian of its input (empty when no token
// reached it). Called from several threads for different matrices.
using MatrixSolver =
    std::function<absl::StatusOr<std::vector<uint8_t>>(const PlannedTensor& t, int64_t matrix, const float* w,
                                                       int64_t rows, int64_t columns, std::vector<double> hessian)>;

struct LayerwiseOptions {
  bool awq = false;  // search and fold AWQ scales first (mixtures of experts: attention only)
  bool gptq = true;  // GPTQ; otherwise each type's own quantizer
  GptqOptions gptq_options;
  // Set: every matrix is solved by it instead (e.g. GPTQ onto a
  // checkpoint format's grid, given back as F32 for the layers after).
  MatrixSolver solve;
  // Set: AWQ's search scores its candidates on this grid (the one `solve`
  // rounds to) instead of the planned types'.
  AwqRound awq_round;
  // The statistics of chunks running at once take at most this (at least
  // one chunk's are held); the bytes do not depend on it.
  uint64_t parallel_statistics_bytes = uint64_t{8} << 30;
  // Set: hears where a layer's solve is ("Hessians: chunk 3 of 8",
  // "solving: 2 of 7 matrices done", "activations out: chunk 5 of 8"),
  // from the thread that called SolveLayer.
  std::function<void(const std::string& step)> progress;
};

// Per layer, what the method did (for reports and tests).
struct LayerReport {
  int layer = 0;
  int scaled_groups = 0;  // AWQ groups whose best scales were not all 1
  int matrices = 0;
};

// The tensors of one layer the method writes (name -> planned tensor: its
// source, output type and shape, importance weights). With `fold`, both
// norms are among them.
using LayerTensors = std::map<std::string, const PlannedTensor*>;

// Solves `layer` of `model` over `chunks` (each with BOS first), whose
// activations entering the layer are `*hidden` (one vector per chunk;
// empty for layer 0, which starts from the embeddings). `*solved` gets the
// quantized bytes of every tensor of `tensors` (every matrix of it, back
// to back); unless it is the model's last layer, `*hidden` becomes the
// activations leaving the quantized layer. `threads` run the chunks and
// the matrices' solves; BLAS is left on one thread. Errors name the tensor.
absl::StatusOr<LayerReport> SolveLayer(LlamaModel& model, int layer, const LayerTensors& tensors, bool fold,
                                       const std::vector<std::vector<TokenId>>& chunks,
                                       std::vector<std::vector<float>>* hidden, const LayerwiseOptions& options,
                                       int threads, std::map<std::string, std::vector<uint8_t>>* solved);

// The Hessian entry a weight is solved over (HessianCollector's key).
std::string HessianEntryFor(const std::string& weight_name);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_LAYER_SOLVE_H_
