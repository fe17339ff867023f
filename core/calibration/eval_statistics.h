// The statistics of an evaluation (see evaluation.h), apart from the
// forward pass that feeds them, so that the coordinator can sum the
// positions its workers scored without linking BLAS.
//
// Per position: the negative log-likelihood of the true next token under
// each model, the KL divergence of the quantized model's next-token
// distribution from the base model's, and whether both put the same token
// on top. EvalAccumulator sums positions into llama-perplexity's
// statistics; positions added in the same order give the same report
// bit for bit, whichever process scored them.
//
// Thread-safety: value types and pure functions.
#ifndef QUANTFLEET_CORE_CALIBRATION_EVAL_STATISTICS_H_
#define QUANTFLEET_CORE_CALIBRATION_EVAL_STATISTICS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
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

// One scored position.
struct EvalPosition {
  double nll = 0;       // -ln p(next) under the quantized model
  double nll_base = 0;  // the same under the base model
  double kld = 0;       // KL(base || quantized), nats
  bool same_top = false;
};

// Scores one position from both models' logits (n_vocab each) and the
// true next token.
EvalPosition ScorePosition(const float* base_logits, const float* logits, int n_vocab, TokenId next);

class EvalAccumulator {
 public:
  void Add(const EvalPosition& p);
  void Add(const float* base_logits, const float* logits, int n_vocab, TokenId next) {
    Add(ScorePosition(base_logits, logits, n_vocab, next));
  }
  // The statistics so far. Percentiles need at least one position.
  EvalReport Report(int chunks) const;

 private:
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp_ = 0, sum_dp2_ = 0, sum_dp4_ = 0;
  int64_t same_top_ = 0;
  std::vector<float> kld_values_;
};

// Scored positions on the wire (a cluster evaluation task's result): per
// position nll, nll_base and kld as float64 and same_top as a uint64 (0 or
// 1), in the host's byte order (little-endian on every host quantfleet
// builds for), kEvalPositionBytes in all.
inline constexpr size_t kEvalPositionBytes = 32;
std::string EncodeEvalPositions(absl::Span<const EvalPosition> positions);
// INVALID_ARGUMENT unless `bytes` holds exactly `count` positions with
// finite, non-negative log-likelihoods and divergences.
absl::StatusOr<std::vector<EvalPosition>> DecodeEvalPositions(std::string_view bytes, size_t count);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_EVAL_STATISTICS_H_
