// See evaluation.h.
#include "core/calibration/evaluation.h"

#include "absl/strings/str_format.h"
#include "core/calibration/imatrix_run.h"
#include "core/model/forward_pass.h"

namespace quantfleet {
namespace {

absl::Status CheckVocabularies(const LlamaModel& base, const LlamaModel& model) {
  if (model.hparams().n_vocab == base.hparams().n_vocab) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "the models have different vocabularies (%d and %d tokens): compare a model with its own quantization",
      base.hparams().n_vocab, model.hparams().n_vocab));
}

}  // namespace

absl::StatusOr<std::vector<EvalPosition>> ScoreChunk(const LlamaModel& base, const LlamaModel& model,
                                                     const std::vector<TokenId>& chunk) {
  if (absl::Status s = CheckVocabularies(base, model); !s.ok()) return s;
  const int n_vocab = base.hparams().n_vocab;
  std::vector<float> base_logits, logits;
  if (absl::Status s = RunForward(base, chunk, nullptr, &base_logits); !s.ok()) return s;
  if (absl::Status s = RunForward(model, chunk, nullptr, &logits); !s.ok()) return s;
  return ScoreLogits(base_logits, logits, n_vocab, chunk);
}

std::vector<EvalPosition> ScoreLogits(const std::vector<float>& base_logits, const std::vector<float>& logits,
                                      int n_vocab, const std::vector<TokenId>& chunk) {
  const size_t width = static_cast<size_t>(n_vocab);
  std::vector<EvalPosition> positions;
  for (size_t j = chunk.size() / 2; j + 1 < chunk.size(); ++j) {
    positions.push_back(
        ScorePosition(base_logits.data() + j * width, logits.data() + j * width, n_vocab, chunk[j + 1]));
  }
  return positions;
}

absl::StatusOr<EvalReport> RunEval(const LlamaModel& base, const LlamaModel& model, const Vocab& vocab,
                                   const std::vector<TokenId>& tokens, const EvalOptions& options) {
  if (absl::Status s = CheckVocabularies(base, model); !s.ok()) return s;
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(vocab, tokens, options.ctx, options.max_chunks);
  if (!chunks.ok()) return chunks.status();
  EvalAccumulator acc;
  int done = 0;
  for (const std::vector<TokenId>& chunk : *chunks) {
    absl::StatusOr<std::vector<EvalPosition>> positions = ScoreChunk(base, model, chunk);
    if (!positions.ok()) return positions.status();
    for (const EvalPosition& p : *positions) acc.Add(p);
    ++done;
    if (options.on_chunk) options.on_chunk(acc.Report(done));
  }
  return acc.Report(done);
}

}  // namespace quantfleet
