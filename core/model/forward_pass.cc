#include "core/model/forward_pass.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/model/activation_rounding.h"
#include "core/quant/half.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

float RoundToHalf(float x) { return HalfToFloat(FloatToHalf(x)); }

// The threads the products are spread over (0: all cores); see SetBlasThreads.
std::atomic<int> g_threads{0};

int ForwardThreads() {
  const int t = g_threads.load();
  return t > 0 ? t : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Runs fn(i, worker) for i in [0, n) on up to ForwardThreads() threads
// (worker: which of them, 0 <= worker < their number, for its buffers).
// Each i's work is the same whichever thread takes it, so the results do
// not depend on how many there are.
void ParallelFor(int64_t n, const std::function<void(int64_t i, int worker)>& fn) {
  const int threads = static_cast<int>(std::min<int64_t>(ForwardThreads(), n));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&](int worker) {
    for (int64_t i; (i = next.fetch_add(1)) < n;) fn(i, worker);
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (std::thread& t : pool) t.join();
}

// RMSNorm of each row of `x` (n rows of `dim`), times `weight`, in place.
// The sum of squares is kept in double, as ggml does.
void RmsNorm(float* x, int64_t n, int dim, const std::vector<float>& weight, float eps) {
  for (int64_t t = 0; t < n; ++t) {
    float* row = x + t * dim;
    double sum = 0;
    for (int i = 0; i < dim; ++i) sum += static_cast<double>(row[i] * row[i]);
    const float mean = static_cast<float>(sum / dim);
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int i = 0; i < dim; ++i) row[i] = (row[i] * scale) * weight[static_cast<size_t>(i)];
  }
}

// y (n x n_out) = x (n x n_in) W_e^T (+ b) with expert e's matrix (0 for a
// plain one); rows of x are rounded as the weight type asks.
void Product(const Linear& l, int e, const float* x, int64_t n, float* y) {
  const float* input = x;
  std::vector<float> rounded;
  if (l.source_type != GgmlType::kF32) {
    rounded.assign(x, x + n * l.n_in);
    RoundActivationsFor(l.source_type, rounded.data(), n, l.n_in);
    input = rounded.data();
  }
  const int64_t base = static_cast<int64_t>(e) * l.n_out;  // first row of the matrix
  // A block of output columns (weight rows, about 8 MiB as F32) at a time,
  // each one product on one BLAS thread, the blocks over the threads: the
  // blocks are cut by the shape alone, so every value is summed the same
  // way whatever the number of threads.
  const int64_t block = std::max<int64_t>(1, (int64_t{8} << 20) / (4 * int64_t{l.n_in}));
  const int64_t blocks = (l.n_out + block - 1) / block;
  std::vector<std::vector<float>> buffers(
      l.source_type == GgmlType::kF32 ? 0 : static_cast<size_t>(std::min<int64_t>(ForwardThreads(), blocks)));
  ParallelFor(blocks, [&](int64_t b, int worker) {
    const int64_t first = b * block, rows = std::min<int64_t>(block, l.n_out - first);
    const float* w = reinterpret_cast<const float*>(l.data) + (base + first) * l.n_in;
    if (l.source_type != GgmlType::kF32) {  // other weights: as F32 first
      std::vector<float>& buffer = buffers[static_cast<size_t>(worker)];
      buffer.resize(static_cast<size_t>(rows * l.n_in));
      l.RowsToFloat(base + first, rows, buffer.data());
      w = buffer.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(rows), l.n_in, 1.0f,
                input, l.n_in, w, l.n_in, 0.0f, y + first, l.n_out);
  });
  if (!l.bias.empty()) {
    for (int64_t t = 0; t < n; ++t) {
      for (int o = 0; o < l.n_out; ++o) y[t * l.n_out + o] += l.bias[static_cast<size_t>(o)];
    }
  }
}

// y = x W^T (+ b), reporting x to the sink first.
void MatMul(const Linear& l, const float* x, int64_t n, float* y, ActivationSink* sink) {
  if (sink != nullptr) sink->OnMatMulInput(l, x, n);
  Product(l, 0, x, n, y);
}

// A mixture-of-experts feed-forward block on `cur` (n x n_embd) into `out`:
// softmax routing to the top n_expert_used experts, weights renormalized
// to sum to one, SwiGLU per expert, outputs weighted and added slot by slot.
void MixtureOfExperts(const LlamaLayer& l, const LlamaHparams& hp, const float* cur, int64_t n, float* out,
                      ActivationSink* sink) {
  const int ne = hp.n_expert, k = hp.n_expert_used, e_dim = hp.n_embd, f = hp.n_ff;
  std::vector<float> scores(static_cast<size_t>(n * ne));
  MatMul(l.router, cur, n, scores.data(), sink);
  std::vector<int32_t> chosen(static_cast<size_t>(n * k));  // [token][slot]
  std::vector<float> weight(static_cast<size_t>(n * k));
  for (int64_t t = 0; t < n; ++t) {
    float* p = scores.data() + t * ne;
    const float max = *std::max_element(p, p + ne);
    double sum = 0;
    for (int i = 0; i < ne; ++i) {
      p[i] = std::exp(p[i] - max);
      sum += p[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int i = 0; i < ne; ++i) p[i] *= inv;
    std::vector<int32_t> order(static_cast<size_t>(ne));
    for (int i = 0; i < ne; ++i) order[static_cast<size_t>(i)] = i;
    std::stable_sort(order.begin(), order.end(), [p](int32_t a, int32_t b) { return p[a] > p[b]; });
    double wsum = 0;
    for (int s = 0; s < k; ++s) {
      chosen[static_cast<size_t>(t * k + s)] = order[static_cast<size_t>(s)];
      weight[static_cast<size_t>(t * k + s)] = p[order[static_cast<size_t>(s)]];
      wsum += weight[static_cast<size_t>(t * k + s)];
    }
    const float norm = std::max(static_cast<float>(wsum), 6.103515625e-5f);
    for (int s = 0; s < k; ++s) weight[static_cast<size_t>(t * k + s)] /= norm;
  }
  std::fill(out, out + n * e_dim, 0.0f);
  std::vector<int32_t> experts(static_cast<size_t>(n));
  std::vector<float> act(static_cast<size_t>(n * f)), gathered, g, u, y;
  std::vector<std::vector<int64_t>> rows_of(static_cast<size_t>(ne));  // this slot's tokens per expert
  for (int s = 0; s < k; ++s) {
    for (auto& rows : rows_of) rows.clear();
    for (int64_t t = 0; t < n; ++t) {
      experts[static_cast<size_t>(t)] = chosen[static_cast<size_t>(t * k + s)];
      rows_of[static_cast<size_t>(experts[static_cast<size_t>(t)])].push_back(t);
    }
    if (sink != nullptr) {
      sink->OnExpertInput(l.up, s, experts.data(), cur, n);
      sink->OnExpertInput(l.gate, s, experts.data(), cur, n);
    }
    // Per expert: its tokens' rows through gate and up, then SwiGLU.
    for (int e = 0; e < ne; ++e) {
      const std::vector<int64_t>& rows = rows_of[static_cast<size_t>(e)];
      if (rows.empty()) continue;
      const int64_t m = static_cast<int64_t>(rows.size());
      gathered.resize(static_cast<size_t>(m * e_dim));
      for (int64_t i = 0; i < m; ++i) std::copy_n(cur + rows[i] * e_dim, e_dim, gathered.data() + i * e_dim);
      g.resize(static_cast<size_t>(m * f));
      u.resize(static_cast<size_t>(m * f));
      Product(l.gate, e, gathered.data(), m, g.data());
      Product(l.up, e, gathered.data(), m, u.data());
      for (int64_t i = 0; i < m; ++i) {
        for (int c = 0; c < f; ++c) {
          const float gv = g[static_cast<size_t>(i * f + c)];
          act[static_cast<size_t>(rows[i] * f + c)] = (gv / (1.0f + std::exp(-gv))) * u[static_cast<size_t>(i * f + c)];
        }
      }
    }
    if (sink != nullptr) sink->OnExpertInput(l.down, s, experts.data(), act.data(), n);
    // Then through down, weighted into the output.
    for (int e = 0; e < ne; ++e) {
      const std::vector<int64_t>& rows = rows_of[static_cast<size_t>(e)];
      if (rows.empty()) continue;
      const int64_t m = static_cast<int64_t>(rows.size());
      gathered.resize(static_cast<size_t>(m * f));
      for (int64_t i = 0; i < m; ++i) std::copy_n(act.data() + rows[i] * f, f, gathered.data() + i * f);
      y.resize(static_cast<size_t>(m * e_dim));
      Product(l.down, e, gathered.data(), m, y.data());
      for (int64_t i = 0; i < m; ++i) {
        const float w = weight[static_cast<size_t>(rows[i] * k + s)];
        for (int c = 0; c < e_dim; ++c) out[rows[i] * e_dim + c] += y[static_cast<size_t>(i * e_dim + c)] * w;
      }
    }
  }
}

// Rotary position embedding of `n_heads` heads of `head_dim` per token:
// adjacent pairs (llama) or halves (NEOX: qwen2, qwen3) of the first
// `n_rot` dimensions, angles computed as ggml does.
void Rope(float* x, int64_t n, int n_heads, int head_dim, const LlamaHparams& hp, const std::vector<float>& freqs,
          bool neox) {
  const int n_rot = hp.n_rot;
  const float theta_scale = std::pow(hp.rope_base, -2.0f / static_cast<float>(n_rot));
  std::vector<float> cos_t(static_cast<size_t>(n_rot / 2)), sin_t(static_cast<size_t>(n_rot / 2));
  for (int64_t p = 0; p < n; ++p) {
    float theta = static_cast<float>(p);
    for (int i = 0; i < n_rot / 2; ++i) {
      const float ff = freqs.empty() ? 1.0f : freqs[static_cast<size_t>(i)];
      const float angle = hp.rope_freq_scale * (theta / ff);
      cos_t[static_cast<size_t>(i)] = std::cos(angle);
      sin_t[static_cast<size_t>(i)] = std::sin(angle);
      theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (p * n_heads + h) * head_dim;
      for (int i = 0; i < n_rot / 2; ++i) {
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + n_rot / 2 : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cos_t[static_cast<size_t>(i)] - x1 * sin_t[static_cast<size_t>(i)];
        v[b] = x0 * sin_t[static_cast<size_t>(i)] + x1 * cos_t[static_cast<size_t>(i)];
      }
    }
  }
}

// Causal attention of every head; q (n x n_head x d), k, v (n x n_kv x d);
// out (n x n_head x d). Per head: scores = Q K^T on BLAS, scaled, masked
// and soft-maxed row by row (sums in double, probabilities through F16 as
// llama.cpp's product with its F16 cache), then P V on BLAS.
void Attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int64_t n,
               const LlamaHparams& hp, std::vector<float>* out) {
  const int d = hp.head_dim;
  const int group = hp.n_head / hp.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int ni = static_cast<int>(n);
  out->assign(static_cast<size_t>(n * hp.n_head * d), 0.0f);
  // The heads over the threads, each on one BLAS thread.
  std::vector<std::vector<float>> scores_of(static_cast<size_t>(std::min(ForwardThreads(), hp.n_head)));
  ParallelFor(hp.n_head, [&](int64_t head, int worker) {
    const int h = static_cast<int>(head);
    std::vector<float>& scores = scores_of[static_cast<size_t>(worker)];
    scores.resize(static_cast<size_t>(n * n));
    const int kv = h / group;
    const float* qh = q.data() + static_cast<size_t>(h) * d;
    const float* kh = k.data() + static_cast<size_t>(kv) * d;
    const float* vh = v.data() + static_cast<size_t>(kv) * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, ni, d, 1.0f, qh, hp.n_head * d, kh, hp.n_head_kv * d, 0.0f,
                scores.data(), ni);
    for (int64_t i = 0; i < n; ++i) {
      float* row = scores.data() + i * n;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j <= i; ++j) {
        row[j] *= scale;
        max = std::max(max, row[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = std::exp(row[j] - max);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j <= i; ++j) row[j] = RoundToHalf(row[j] * inv);
      for (int64_t j = i + 1; j < n; ++j) row[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, d, ni, 1.0f, scores.data(), ni, vh, hp.n_head_kv * d,
                0.0f, out->data() + static_cast<size_t>(h) * d, hp.n_head * d);
  });
}

}  // namespace

void SetBlasThreads(int threads) {
  g_threads.store(std::max(0, threads));
  openblas_set_num_threads(1);
}

void SetBlasLibraryThreads(int threads) {
  openblas_set_num_threads(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));
}

std::string BlasKernelName() { return absl::StrCat("OpenBLAS ", openblas_get_corename()); }

absl::Status PrepareStageInput(const LlamaModel& model, absl::Span<const TokenId> tokens, int first_layer,
                               int end_layer, std::vector<float>* hidden) {
  const LlamaHparams& hp = model.hparams();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int e = hp.n_embd;
  if (first_layer < 0 || end_layer > hp.n_layer || first_layer >= end_layer) {
    return absl::InvalidArgumentError(
        absl::StrFormat("layers [%d, %d) are not a range of the model's %d", first_layer, end_layer, hp.n_layer));
  }
  std::vector<float>& x = *hidden;
  if (first_layer == 0) {
    x.assign(static_cast<size_t>(n * e), 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      const TokenId id = tokens[static_cast<size_t>(t)];
      if (id < 0 || id >= hp.n_vocab) {
        return absl::InvalidArgumentError(
            absl::StrFormat("token %d at position %d is outside the vocabulary of %d", id, t, hp.n_vocab));
      }
      model.token_embd().RowsToFloat(id, 1, x.data() + t * e);
    }
  } else if (x.size() != static_cast<size_t>(n * e)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the activations entering layer %d hold %d values; %d tokens of %d need %d", first_layer,
                        x.size(), n, e, n * e));
  }
  return absl::OkStatus();
}

absl::Status RunForwardLayers(const LlamaModel& model, absl::Span<const TokenId> tokens, int first_layer, int end_layer,
                              std::vector<float>* hidden, ActivationSink* sink, std::vector<float>* logits) {
  const LlamaHparams& hp = model.hparams();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int e = hp.n_embd;
  const int q_dim = hp.n_head * hp.head_dim;
  const int kv_dim = hp.n_head_kv * hp.head_dim;
  const bool neox = hp.arch != "llama";
  QF_RETURN_IF_ERROR(PrepareStageInput(model, tokens, first_layer, end_layer, hidden));
  std::vector<float>& x = *hidden;
  std::vector<float> cur(x.size()), q(static_cast<size_t>(n * q_dim)), k(static_cast<size_t>(n * kv_dim)),
      v(static_cast<size_t>(n * kv_dim)), attn, gate(static_cast<size_t>(n * hp.n_ff)),
      up(static_cast<size_t>(n * hp.n_ff));
  for (int layer = first_layer; layer < end_layer; ++layer) {
    const LlamaLayer& l = model.layers()[static_cast<size_t>(layer)];
    cur = x;
    RmsNorm(cur.data(), n, e, l.attn_norm, hp.rms_eps);
    MatMul(l.wq, cur.data(), n, q.data(), sink);
    MatMul(l.wk, cur.data(), n, k.data(), sink);
    MatMul(l.wv, cur.data(), n, v.data(), sink);
    if (!l.q_norm.empty()) {
      RmsNorm(q.data(), n * hp.n_head, hp.head_dim, l.q_norm, hp.rms_eps);
      RmsNorm(k.data(), n * hp.n_head_kv, hp.head_dim, l.k_norm, hp.rms_eps);
    }
    Rope(q.data(), n, hp.n_head, hp.head_dim, hp, model.rope_freqs(), neox);
    Rope(k.data(), n, hp.n_head_kv, hp.head_dim, hp, model.rope_freqs(), neox);
    for (float& f : q) f = RoundToHalf(f);  // the KV cache and the K·Q product are F16
    for (float& f : k) f = RoundToHalf(f);
    for (float& f : v) f = RoundToHalf(f);
    Attention(q, k, v, n, hp, &attn);
    MatMul(l.wo, attn.data(), n, cur.data(), sink);
    for (size_t i = 0; i < x.size(); ++i) x[i] += cur[i];
    cur = x;
    RmsNorm(cur.data(), n, e, l.ffn_norm, hp.rms_eps);
    if (hp.n_expert > 0) {
      std::vector<float> moe(cur.size());
      MixtureOfExperts(l, hp, cur.data(), n, moe.data(), sink);
      for (size_t i = 0; i < x.size(); ++i) x[i] += moe[i];
      continue;
    }
    MatMul(l.gate, cur.data(), n, gate.data(), sink);
    MatMul(l.up, cur.data(), n, up.data(), sink);
    for (size_t i = 0; i < gate.size(); ++i) gate[i] = (gate[i] / (1.0f + std::exp(-gate[i]))) * up[i];
    MatMul(l.down, gate.data(), n, cur.data(), sink);
    for (size_t i = 0; i < x.size(); ++i) x[i] += cur[i];
  }
  if (end_layer < hp.n_layer) return absl::OkStatus();
  if (logits == nullptr && (sink == nullptr || !sink->WantsOutput())) return absl::OkStatus();
  RmsNorm(x.data(), n, e, model.output_norm(), hp.rms_eps);
  std::vector<float> out(static_cast<size_t>(n * hp.n_vocab));
  MatMul(model.output(), x.data(), n, out.data(), sink);
  if (logits != nullptr) *logits = std::move(out);
  return absl::OkStatus();
}

absl::Status RunForward(const LlamaModel& model, absl::Span<const TokenId> tokens, ActivationSink* sink,
                        std::vector<float>* logits) {
  std::vector<float> hidden;
  return RunForwardLayers(model, tokens, 0, model.hparams().n_layer, &hidden, sink, logits);
}

}  // namespace quantfleet
