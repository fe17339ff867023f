#include "core/calibration/evaluation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "core/calibration/imatrix_run.h"
#include "core/model/forward_pass.h"

namespace quantfleet {
namespace {

// Log-softmax pieces of one row of logits: the largest logit, where it is,
// and log(sum(exp(x - max))).
struct Softmax {
  float max = 0;
  int argmax = 0;
  double log_sum = 0;
};

Softmax Normalize(const float* x, int n) {
  Softmax s;
  s.max = x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] > s.max) {
      s.max = x[i];
      s.argmax = i;
    }
  }
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - s.max);
  s.log_sum = std::log(sum);
  return s;
}

// llama-perplexity's mean and standard error from a sum and a sum of squares.
Estimate MeanAndUncertainty(double sum, double sum2, int64_t count) {
  if (count < 1) return {};
  const double mean = sum / static_cast<double>(count);
  const double var = sum2 / static_cast<double>(count) - mean * mean;
  return {mean, var > 0 && count > 10 ? std::sqrt(var / static_cast<double>(count - 1)) : 0.0};
}

double Covariance(double sum_a, double sum_b, double sum_ab, int64_t count) {
  if (count < 10) return 0;
  const double n = static_cast<double>(count);
  return (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1);
}

// Linear interpolation between the neighbours of fraction * (n - 1), as
// llama-perplexity reports percentiles.
double Percentile(const std::vector<float>& sorted, double fraction) {
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(p);
  p -= static_cast<double>(i);
  return (1 - p) * sorted[i] + p * sorted[std::min(i + 1, sorted.size() - 1)];
}

}  // namespace

void EvalAccumulator::Add(const float* base_logits, const float* logits, int n_vocab, TokenId next) {
  const Softmax b = Normalize(base_logits, n_vocab);
  const Softmax q = Normalize(logits, n_vocab);
  const double nll_base = b.max + b.log_sum - base_logits[next];
  const double nll = q.max + q.log_sum - logits[next];
  sum_nll_ += nll;
  sum_nll2_ += nll * nll;
  sum_nll_base_ += nll_base;
  sum_nll_base2_ += nll_base * nll_base;
  sum_nll_nll_base_ += nll * nll_base;
  // KL(base || q) = sum_i p_i (log p_i - log q_i).
  double kld = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const double log_p = base_logits[i] - b.max - b.log_sum;
    const double log_q = logits[i] - q.max - q.log_sum;
    kld += std::exp(log_p) * (log_p - log_q);
  }
  sum_kld_ += kld;
  sum_kld2_ += kld * kld;
  kld_values_.push_back(static_cast<float>(kld));
  same_top_ += b.argmax == q.argmax ? 1 : 0;
  const double dp = std::exp(-nll) - std::exp(-nll_base);
  sum_dp_ += dp;
  sum_dp2_ += dp * dp;
  sum_dp4_ += dp * dp * dp * dp;
}

EvalReport EvalAccumulator::Report(int chunks) const {
  EvalReport r;
  const int64_t n = static_cast<int64_t>(kld_values_.size());
  r.chunks = chunks;
  r.positions = n;
  if (n == 0) return r;
  const Estimate ln_ppl = MeanAndUncertainty(sum_nll_, sum_nll2_, n);
  const Estimate ln_ppl_base = MeanAndUncertainty(sum_nll_base_, sum_nll_base2_, n);
  r.ppl = {std::exp(ln_ppl.value), std::exp(ln_ppl.value) * ln_ppl.uncertainty};
  r.ppl_base = {std::exp(ln_ppl_base.value), std::exp(ln_ppl_base.value) * ln_ppl_base.uncertainty};
  const double cov = Covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, n);
  const double spread = ln_ppl.uncertainty * ln_ppl_base.uncertainty;
  r.ln_ppl_correlation = spread > 0 ? cov / spread : 0;
  r.ln_ppl_ratio = {ln_ppl.value - ln_ppl_base.value,
                    std::sqrt(std::max(0.0, ln_ppl.uncertainty * ln_ppl.uncertainty +
                                                ln_ppl_base.uncertainty * ln_ppl_base.uncertainty - 2 * cov))};
  r.ppl_ratio = {std::exp(r.ln_ppl_ratio.value), std::exp(r.ln_ppl_ratio.value) * r.ln_ppl_ratio.uncertainty};
  r.kld = MeanAndUncertainty(sum_kld_, sum_kld2_, n);
  std::vector<float> sorted = kld_values_;
  std::sort(sorted.begin(), sorted.end());
  r.kld_median = sorted.size() % 2 == 0 ? 0.5 * (sorted[sorted.size() / 2] + sorted[sorted.size() / 2 - 1])
                                        : sorted[sorted.size() / 2];
  r.kld_p90 = Percentile(sorted, 0.90);
  r.kld_p95 = Percentile(sorted, 0.95);
  r.kld_p99 = Percentile(sorted, 0.99);
  r.kld_p999 = Percentile(sorted, 0.999);
  r.kld_max = sorted.back();
  const double top = static_cast<double>(same_top_) / static_cast<double>(n);
  r.same_top = {top, n > 1 ? std::sqrt(top * (1 - top) / static_cast<double>(n - 1)) : 0.0};
  r.delta_p = MeanAndUncertainty(sum_dp_, sum_dp2_, n);
  const Estimate mse = MeanAndUncertainty(sum_dp2_, sum_dp4_, n);
  const double rms = std::sqrt(mse.value);
  r.delta_p_rms = {rms, rms > 0 ? 0.5 / rms * mse.uncertainty : 0.0};
  return r;
}

absl::StatusOr<EvalReport> RunEval(const LlamaModel& base, const LlamaModel& model, const Vocab& vocab,
                                   const std::vector<TokenId>& tokens, const EvalOptions& options) {
  const int n_vocab = base.hparams().n_vocab;
  if (model.hparams().n_vocab != n_vocab) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the models have different vocabularies (%d and %d tokens): compare a model with its own quantization", n_vocab,
        model.hparams().n_vocab));
  }
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(vocab, tokens, options.ctx, options.max_chunks);
  if (!chunks.ok()) return chunks.status();
  const int first = options.ctx / 2;
  EvalAccumulator acc;
  std::vector<float> base_logits, logits;
  int done = 0;
  for (const std::vector<TokenId>& chunk : *chunks) {
    if (absl::Status s = RunForward(base, chunk, nullptr, &base_logits); !s.ok()) return s;
    if (absl::Status s = RunForward(model, chunk, nullptr, &logits); !s.ok()) return s;
    for (int j = first; j + 1 < options.ctx; ++j) {
      const size_t row = static_cast<size_t>(j) * static_cast<size_t>(n_vocab);
      acc.Add(base_logits.data() + row, logits.data() + row, n_vocab, chunk[static_cast<size_t>(j) + 1]);
    }
    ++done;
    if (options.on_chunk) options.on_chunk(acc.Report(done));
  }
  return acc.Report(done);
}

}  // namespace quantfleet
