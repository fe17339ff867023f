// How far a quantized model's predictions are from its base model's, with
// llama-perplexity's conventions and statistics (`--kl-divergence-base`
// then `--kl-divergence`): the text is cut into chunks of ctx tokens with
// BOS first, and each chunk's second half is scored, position j predicting
// token j + 1. Both models run the same chunk side by side, so no logits
// file is ever written.
//
// Per position: the negative log-likelihood of the true next token under
// each model, the KL divergence of the quantized model's next-token
// distribution from the base model's, whether both put the same token on
// top, and the change of the true token's probability.
//
// Thread-safety: EvalAccumulator is a value type (one per thread, or
// guarded by the caller); RunEval runs on the calling thread, BLAS on its own.
#ifndef QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_
#define QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

// A mean and its standard error.
struct Estimate {
  double value = 0;
  double uncertainty = 0;
};

struct EvalReport {
  int chunks = 0;
  int64_t positions = 0;  // scored tokens
  Estimate ppl;           // of the quantized model
  Estimate ppl_base;
  double ln_ppl_correlation = 0;
  Estimate ln_ppl_ratio;  // ln(PPL(Q) / PPL(base))
  Estimate ppl_ratio;     // PPL(Q) / PPL(base)
  Estimate kld;           // mean KL divergence, nats
  double kld_median = 0, kld_p90 = 0, kld_p95 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  Estimate same_top;  // fraction of positions with the same most likely token
  Estimate delta_p;   // mean change of the true token's probability
  Estimate delta_p_rms;
};

class EvalAccumulator {
 public:
  // One position: both models' logits (n_vocab each) and the true next token.
  void Add(const float* base_logits, const float* logits, int n_vocab, TokenId next);
  // The statistics so far. Percentiles need at least one position.
  EvalReport Report(int chunks) const;

 private:
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp_ = 0, sum_dp2_ = 0, sum_dp4_ = 0;
  int64_t same_top_ = 0;
  std::vector<float> kld_values_;
};

struct EvalOptions {
  int ctx = 512;       // tokens per chunk
  int max_chunks = 0;  // <= 0: every whole chunk of the text
  // Called after each chunk with the running report.
  std::function<void(const EvalReport&)> on_chunk;
};

// Runs `base` and `model` over `tokens` (the text tokenized with BOS as the
// vocabulary asks). INVALID_ARGUMENT when the models' vocabularies differ
// in size or ctx is out of range; FAILED_PRECONDITION when the text holds
// fewer than two chunks.
absl::StatusOr<EvalReport> RunEval(const LlamaModel& base, const LlamaModel& model, const Vocab& vocab,
                                   const std::vector<TokenId>& tokens, const EvalOptions& options);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_
