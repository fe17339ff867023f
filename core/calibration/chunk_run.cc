#include "core/calibration/chunk_run.h"

#include <cmath>

#include "core/model/forward_pass.h"

namespace quantfleet {
namespace {

// -log p(token) under the softmax of `logits`, as llama-imatrix computes it.
double NegativeLogProb(const float* logits, int n_vocab, TokenId token) {
  float max = logits[0];
  for (int i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max);
  return -(static_cast<double>(logits[token] - max) - std::log(sum));
}

}  // namespace

absl::StatusOr<ChunkStatistics> RunChunk(const LlamaModel& model, absl::Span<const TokenId> tokens, bool process_output,
                                         bool perplexity) {
  std::vector<float> hidden;
  return RunChunkLayers(model, tokens, 0, model.hparams().n_layer, &hidden, process_output, perplexity);
}

absl::StatusOr<ChunkStatistics> RunChunkLayers(const LlamaModel& model, absl::Span<const TokenId> tokens,
                                               int first_layer, int end_layer, std::vector<float>* hidden,
                                               bool process_output, bool perplexity) {
  ChunkStatistics out(process_output);
  perplexity = perplexity && end_layer == model.hparams().n_layer;
  std::vector<float> logits;
  if (absl::Status s =
          RunForwardLayers(model, tokens, first_layer, end_layer, hidden, &out.imatrix, perplexity ? &logits : nullptr);
      !s.ok()) {
    return s;
  }
  if (perplexity) {
    const int n_vocab = model.hparams().n_vocab;
    const size_t n = tokens.size();
    for (size_t i = n / 2; i + 1 < n; ++i) {
      const double v = NegativeLogProb(logits.data() + i * static_cast<size_t>(n_vocab), n_vocab, tokens[i + 1]);
      out.nll += v;
      out.nll2 += v * v;
      ++out.predictions;
    }
  }
  return out;
}

}  // namespace quantfleet
