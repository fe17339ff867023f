// Calibration text as chunks: the bounds on a chunk's length, the cutting
// of a token stream into chunks of `ctx` tokens with BOS first (as
// llama-imatrix and llama-perplexity cut them), and the perplexity of
// summed chunk statistics.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CALIBRATION_CALIBRATION_CHUNKS_H_
#define QUANTFLEET_CORE_CALIBRATION_CALIBRATION_CHUNKS_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/calibration/chunk_statistics.h"
#include "core/model/vocab.h"

namespace quantfleet {

// The most tokens one chunk may hold (llama.cpp's largest trained contexts).
inline constexpr int kMaxChunkTokens = 1 << 20;

// INVALID_ARGUMENT unless 16 <= ctx <= kMaxChunkTokens.
absl::Status CheckChunkTokens(int ctx);

// The chunks of `tokens`: whole runs of `ctx`, at most `max_chunks` (<= 0:
// all), each with BOS first where the vocabulary adds one.
// INVALID_ARGUMENT for ctx outside [16, kMaxChunkTokens];
// FAILED_PRECONDITION when the text has fewer than 2 * ctx tokens.
absl::StatusOr<std::vector<std::vector<TokenId>>> CutChunks(const Vocab& vocab, const std::vector<TokenId>& tokens,
                                                            int ctx, int max_chunks);

// The perplexity and llama-imatrix's "+/-" from summed chunk statistics.
void Perplexity(const ChunkStatistics& total, double* perplexity, double* error);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_CALIBRATION_CHUNKS_H_
