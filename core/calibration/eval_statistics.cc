// See eval_statistics.h.
#include "core/calibration/eval_statistics.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_format.h"

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

EvalPosition ScorePosition(const float* base_logits, const float* logits, int n_vocab, TokenId next) {
  const Softmax b = Normalize(base_logits, n_vocab);
  const Softmax q = Normalize(logits, n_vocab);
  EvalPosition p;
  p.nll_base = b.max + b.log_sum - base_logits[next];
  p.nll = q.max + q.log_sum - logits[next];
  // KL(base || q) = sum_i p_i (log p_i - log q_i).
  for (int i = 0; i < n_vocab; ++i) {
    const double log_p = base_logits[i] - b.max - b.log_sum;
    const double log_q = logits[i] - q.max - q.log_sum;
    p.kld += std::exp(log_p) * (log_p - log_q);
  }
  p.same_top = b.argmax == q.argmax;
  return p;
}

void EvalAccumulator::Add(const EvalPosition& p) {
  sum_nll_ += p.nll;
  sum_nll2_ += p.nll * p.nll;
  sum_nll_base_ += p.nll_base;
  sum_nll_base2_ += p.nll_base * p.nll_base;
  sum_nll_nll_base_ += p.nll * p.nll_base;
  sum_kld_ += p.kld;
  sum_kld2_ += p.kld * p.kld;
  kld_values_.push_back(static_cast<float>(p.kld));
  same_top_ += p.same_top ? 1 : 0;
  const double dp = std::exp(-p.nll) - std::exp(-p.nll_base);
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

std::string EncodeEvalPositions(absl::Span<const EvalPosition> positions) {
  std::string out(positions.size() * kEvalPositionBytes, '\0');
  char* at = out.data();
  for (const EvalPosition& p : positions) {
    const double values[3] = {p.nll, p.nll_base, p.kld};
    const uint64_t same = p.same_top ? 1 : 0;
    std::memcpy(at, values, sizeof(values));
    std::memcpy(at + sizeof(values), &same, sizeof(same));
    at += kEvalPositionBytes;
  }
  return out;
}

absl::StatusOr<std::vector<EvalPosition>> DecodeEvalPositions(std::string_view bytes, size_t count) {
  if (bytes.size() != count * kEvalPositionBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%d bytes of scored positions where %d positions take %d",
                                                      bytes.size(), count, count * kEvalPositionBytes));
  }
  std::vector<EvalPosition> out(count);
  for (size_t i = 0; i < count; ++i) {
    const char* at = bytes.data() + i * kEvalPositionBytes;
    double values[3];
    uint64_t same;
    std::memcpy(values, at, sizeof(values));
    std::memcpy(&same, at + sizeof(values), sizeof(same));
    for (double v : values) {
      if (!std::isfinite(v) || v < -1e-6) {  // rounding may leave a KLD a hair below zero
        return absl::InvalidArgumentError(
            absl::StrFormat("position %d: %g is not a log-likelihood or divergence", i, v));
      }
    }
    if (same > 1) return absl::InvalidArgumentError(absl::StrFormat("position %d: same-top flag %d", i, same));
    out[i] = {values[0], values[1], values[2], same == 1};
  }
  return out;
}

}  // namespace quantfleet
