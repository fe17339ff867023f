// How far a quantized model's predictions are from its base model's, with
// llama-perplexity's conventions and statistics (`--kl-divergence-base`
// then `--kl-divergence`): the text is cut into chunks of ctx tokens with
// BOS first, and each chunk's second half is scored, position j predicting
// token j + 1. Both models run the same chunk side by side, so no logits
// file is ever written.
//
// The per-position statistics are eval_statistics.h's. A cluster runs the
// chunks on its workers with ScoreChunk and sums their positions in chunk
// order, as RunEval does here.
//
// Thread-safety: ScoreChunk and RunEval run on the calling thread, BLAS on
// its own.
#ifndef QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_
#define QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/eval_statistics.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

struct EvalOptions {
  int ctx = 512;       // tokens per chunk
  int max_chunks = 0;  // <= 0: every whole chunk of the text
  // Called after each chunk with the running report.
  std::function<void(const EvalReport&)> on_chunk;
};

// Runs both models over one chunk (BOS first) and scores its second half:
// position j predicts token j + 1, for j from size/2 to size - 2.
// INVALID_ARGUMENT when the models' vocabularies differ in size.
absl::StatusOr<std::vector<EvalPosition>> ScoreChunk(const LlamaModel& base, const LlamaModel& model,
                                                     const std::vector<TokenId>& chunk);

// The positions of `chunk` scored from both models' logits over it
// (chunk.size() x n_vocab each), as ScoreChunk scores them.
std::vector<EvalPosition> ScoreLogits(const std::vector<float>& base_logits, const std::vector<float>& logits,
                                      int n_vocab, const std::vector<TokenId>& chunk);

// Runs `base` and `model` over `tokens` (the text tokenized with BOS as the
// vocabulary asks). INVALID_ARGUMENT when the models' vocabularies differ
// in size or ctx is out of range; FAILED_PRECONDITION when the text holds
// fewer than two chunks.
absl::StatusOr<EvalReport> RunEval(const LlamaModel& base, const LlamaModel& model, const Vocab& vocab,
                                   const std::vector<TokenId>& tokens, const EvalOptions& options);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_EVALUATION_H_
