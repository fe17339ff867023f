#include "core/calibration/calibration_chunks.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::Status CheckChunkTokens(int ctx) {
  if (ctx >= 16 && ctx <= kMaxChunkTokens) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("a context of %d tokens: give 16 to %d tokens per chunk", ctx, kMaxChunkTokens));
}

absl::StatusOr<std::vector<std::vector<TokenId>>> CutChunks(const Vocab& vocab, const std::vector<TokenId>& tokens,
                                                            int ctx, int max_chunks) {
  QF_RETURN_IF_ERROR(CheckChunkTokens(ctx));
  if (static_cast<int64_t>(tokens.size()) < 2 * static_cast<int64_t>(ctx)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the text tokenizes to %d tokens; a context of %d needs at least %d (use a longer text or a smaller -c)",
        tokens.size(), ctx, 2 * ctx));
  }
  const int available = static_cast<int>(tokens.size() / static_cast<size_t>(ctx));
  const int n = max_chunks <= 0 ? available : std::min(max_chunks, available);
  std::vector<std::vector<TokenId>> chunks;
  for (int c = 0; c < n; ++c) {
    std::vector<TokenId> chunk(tokens.begin() + static_cast<std::ptrdiff_t>(c) * ctx,
                               tokens.begin() + static_cast<std::ptrdiff_t>(c + 1) * ctx);
    if (vocab.add_bos()) chunk[0] = vocab.bos();
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

void Perplexity(const ChunkStatistics& total, double* perplexity, double* error) {
  *perplexity = 0;
  *error = 0;
  if (total.predictions == 0) return;
  const double count = static_cast<double>(total.predictions);
  const double mean = total.nll / count;
  *perplexity = std::exp(mean);
  const double var = total.nll2 / count - mean * mean;
  *error = var > 0 && total.predictions > 1 ? std::sqrt(var / (count - 1)) * *perplexity : 0;
}

}  // namespace quantfleet
