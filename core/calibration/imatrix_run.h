// llama-imatrix's procedure over a tokenized text: chunks of `ctx` tokens
// (the first token of each replaced by BOS where the vocabulary adds one),
// each run through the model independently while an ImatrixCollector
// gathers its statistics, which are then added to the total in chunk
// order; and the perplexity of the second half of every chunk, printed as
// llama-imatrix prints it.
//
// Thread-safety: one call at a time per collector; with parallel_chunks
// > 1 it runs that many threads of its own.
#ifndef QUANTFLEET_CORE_CALIBRATION_IMATRIX_RUN_H_
#define QUANTFLEET_CORE_CALIBRATION_IMATRIX_RUN_H_

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/chunk_statistics.h"
#include "core/calibration/imatrix_collector.h"
#include "core/model/llama_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

struct ImatrixRunOptions {
  int ctx = 512;
  int max_chunks = -1;  // -1: every whole chunk of the text
  bool perplexity = true;
  // Chunks run at once, each on one BLAS thread (1: one chunk at a time on
  // the BLAS threads set by the caller). The result is the same bits.
  int parallel_chunks = 1;
  // Resuming: the total of the first `resume_chunks` chunks (from a
  // checkpoint); the run computes only the chunks after them.
  const ChunkStatistics* resume = nullptr;
  int resume_chunks = 0;
  // Set: runs each chunk (tokens, BOS in place) instead of the CPU path,
  // one chunk at a time (a GPU).
  std::function<absl::StatusOr<ChunkStatistics>(absl::Span<const TokenId>)> run_chunk;
};

struct ChunkDone {
  int chunk = 0;  // 1-based
  int chunks = 0;
  double perplexity = 0;                   // running, over the chunks so far
  double seconds = 0;                      // for this chunk
  const ChunkStatistics* total = nullptr;  // chunks 1..chunk, added in order (for checkpoints)
};

struct ImatrixRunResult {
  int chunks = 0;  // in the result, resumed ones included
  double perplexity = 0;
  double perplexity_error = 0;  // llama-imatrix's "+/-"
  double seconds = 0;
  int64_t tokens = 0;  // computed by this run
};

// FAILED_PRECONDITION when the text has fewer than 2 * ctx tokens (as
// llama-imatrix requires), or fewer chunks than a resumed run had done.
absl::StatusOr<ImatrixRunResult> RunImatrix(const LlamaModel& model, const Vocab& vocab,
                                            const std::vector<TokenId>& tokens, const ImatrixRunOptions& options,
                                            ImatrixCollector* collector,
                                            const std::function<void(const ChunkDone&)>& on_chunk);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_IMATRIX_RUN_H_
