// The forward pass of a llama-family model over one sequence on the CPU:
// embeddings, then per layer RMSNorm, Q/K/V projections (biases for qwen2,
// per-head Q/K norms for qwen3), RoPE, causal grouped-query attention,
// the output projection, RMSNorm and a SwiGLU feed-forward block, each with
// its residual (or, in a mixture of experts, each token routed by softmax to
// its top experts, their outputs weighted and added); a final RMSNorm and the
// output projection give logits.
// Matrix products run on BLAS.
//
// The numbers follow llama.cpp's CPU path where it rounds: activations
// entering a weight are rounded as its dot product sees them (F16, BF16,
// or quantized to Q8_0/Q8_K for quantized weights; see
// activation_rounding.h), and Q, K, V and the attention probabilities pass
// through F16 as in its KV cache.
//
// Thread-safety: Run may be called concurrently with different sinks; BLAS
// uses its own threads.
#ifndef QUANTFLEET_CORE_MODEL_FORWARD_PASS_H_
#define QUANTFLEET_CORE_MODEL_FORWARD_PASS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

// Receives the input of every matrix product: `n_tokens` rows of
// `weight.n_in` values, before any rounding.
class ActivationSink {
 public:
  virtual ~ActivationSink() = default;
  virtual void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) = 0;
  // The inputs of an expert product for routing slot `slot`: token t's row
  // of `x` goes to expert experts[t]. Called slot by slot, in order.
  virtual void OnExpertInput(const Linear& weight, int slot, const int32_t* experts, const float* x,
                             int64_t n_tokens) = 0;
  // Whether the output projection's input is wanted; when neither the sink
  // nor the caller (logits) needs it, the largest product is skipped.
  virtual bool WantsOutput() const { return true; }
};

// Runs `tokens` (positions 0, 1, ...) through `model`. `sink` may be null;
// `logits` (n_tokens * n_vocab) is filled when non-null. INVALID_ARGUMENT
// for a token id outside the vocabulary.
absl::Status RunForward(const LlamaModel& model, absl::Span<const TokenId> tokens, ActivationSink* sink,
                        std::vector<float>* logits);

// Part of the forward pass, for a pipeline of workers: layers
// [first_layer, end_layer) on `hidden`, the residual stream of the n tokens
// (n * n_embd values) leaving layer first_layer - 1. With first_layer 0 it
// is filled from the token embeddings instead. On return it holds the
// stream leaving layer end_layer - 1; with end_layer == n_layer the output
// head runs as in RunForward (and `hidden` is left normalized).
// INVALID_ARGUMENT for a bad range, a bad token or activations of the
// wrong size.
absl::Status RunForwardLayers(const LlamaModel& model, absl::Span<const TokenId> tokens, int first_layer, int end_layer,
                              std::vector<float>* hidden, ActivationSink* sink, std::vector<float>* logits);

// The input of layers [first_layer, end_layer) for `tokens`: with
// first_layer 0, `hidden` is filled from the token embeddings; otherwise it
// must already hold n_tokens * n_embd values. INVALID_ARGUMENT for a bad
// range, a token outside the vocabulary or activations of the wrong size.
// (RunForwardLayers calls it; so does the GPU forward pass.)
absl::Status PrepareStageInput(const LlamaModel& model, absl::Span<const TokenId> tokens, int first_layer,
                               int end_layer, std::vector<float>* hidden);

// Sets the threads the forward pass spreads its products over (0: all
// cores) and runs the BLAS library itself on one thread: each product is
// cut into blocks by its shape alone (weight rows; attention heads), one
// single-threaded BLAS call each, so the results are the same bits for
// any number of threads (an importance matrix from a worker on 16 threads
// equals the one-machine run on 2).
void SetBlasThreads(int threads);

// Sets the threads of the BLAS library's own (0: all cores), for products
// outside the forward pass that want them (a GPTQ solve timed on its own);
// their sums then depend on the number. SetBlasThreads sets it back to one.
void SetBlasLibraryThreads(int threads);

// The BLAS library and the kernel it chose for this CPU, e.g. "OpenBLAS
// Haswell" (OPENBLAS_CORETYPE overrides the choice). Products summed by
// another kernel differ in the last bits, so conformance reports name it.
std::string BlasKernelName();

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_FORWARD_PASS_H_
