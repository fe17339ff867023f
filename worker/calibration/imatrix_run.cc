#include "worker/calibration/imatrix_run.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_format.h"
#include "worker/calibration/forward_pass.h"

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

absl::StatusOr<ImatrixRunResult> RunImatrix(const LlamaModel& model, const Vocab& vocab,
                                            const std::vector<TokenId>& tokens, const ImatrixRunOptions& options,
                                            ImatrixCollector* collector,
                                            const std::function<void(const ChunkDone&)>& on_chunk) {
  const int ctx = options.ctx;
  if (ctx < 16) return absl::InvalidArgumentError(absl::StrFormat("context of %d tokens: it must be 16 or more", ctx));
  if (static_cast<int64_t>(tokens.size()) < 2 * static_cast<int64_t>(ctx)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the text tokenizes to %d tokens; a context of %d needs at least %d (use a longer text or a smaller -c)",
        tokens.size(), ctx, 2 * ctx));
  }
  const int available = static_cast<int>(tokens.size() / static_cast<size_t>(ctx));
  const int chunks = options.max_chunks < 0 ? available : std::min(options.max_chunks, available);
  const int n_vocab = model.hparams().n_vocab;
  ImatrixRunResult result;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  const auto start_all = std::chrono::steady_clock::now();
  std::vector<float> logits;
  for (int c = 0; c < chunks; ++c) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<TokenId> chunk(tokens.begin() + static_cast<std::ptrdiff_t>(c) * ctx,
                               tokens.begin() + static_cast<std::ptrdiff_t>(c + 1) * ctx);
    if (vocab.add_bos()) chunk[0] = vocab.bos();
    // Each chunk's statistics are gathered on their own and added to the
    // total in chunk order: the canonical sum, which any split of the
    // chunks across machines can reproduce bit for bit.
    ImatrixCollector partial(collector->process_output());
    if (absl::Status s = RunForward(model, chunk, &partial, options.perplexity ? &logits : nullptr); !s.ok()) {
      return s;
    }
    collector->Merge(partial);
    if (options.perplexity) {
      const TokenId* original = tokens.data() + static_cast<ptrdiff_t>(c) * ctx;
      for (int i = ctx / 2; i < ctx - 1; ++i) {
        const double v = NegativeLogProb(logits.data() + static_cast<size_t>(i) * n_vocab, n_vocab, original[i + 1]);
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    result.tokens += ctx;
    ChunkDone done;
    done.chunk = c + 1;
    done.chunks = chunks;
    done.perplexity = count > 0 ? std::exp(nll / static_cast<double>(count)) : 0;
    done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_chunk) on_chunk(done);
  }
  result.chunks = chunks;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_all).count();
  if (count > 0) {
    const double mean = nll / static_cast<double>(count);
    result.perplexity = std::exp(mean);
    const double var = nll2 / static_cast<double>(count) - mean * mean;
    result.perplexity_error = var > 0 ? std::sqrt(var / static_cast<double>(count - 1)) * result.perplexity : 0;
  }
  return result;
}

}  // namespace quantfleet
