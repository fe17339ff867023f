#include "core/calibration/imatrix_run.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/chunk_run.h"
#include "core/model/forward_pass.h"
#include "core/util/status_macros.h"

namespace quantfleet {
absl::StatusOr<ImatrixRunResult> RunImatrix(const LlamaModel& model, const Vocab& vocab,
                                            const std::vector<TokenId>& tokens, const ImatrixRunOptions& options,
                                            ImatrixCollector* collector,
                                            const std::function<void(const ChunkDone&)>& on_chunk) {
  absl::StatusOr<std::vector<std::vector<TokenId>>> chunks = CutChunks(vocab, tokens, options.ctx, options.max_chunks);
  if (!chunks.ok()) return chunks.status();
  const size_t n = chunks->size();
  const bool process_output = collector->process_output();
  const size_t first = options.resume != nullptr ? static_cast<size_t>(options.resume_chunks) : 0;
  if (first > n) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the checkpoint covers %d chunks but the text has only %d", first, n));
  }

  // Chunks run on `parallel` threads, in any order; their statistics are
  // added to the total strictly in chunk order as they become available.
  struct Slot {
    std::optional<absl::StatusOr<ChunkStatistics>> result;
    double seconds = 0;
  };
  std::vector<Slot> slots(n);
  absl::Mutex mu;
  size_t next = first;
  // At most 8 at once: each holds a chunk's logits (ctx x vocabulary).
  const int parallel =
      options.run_chunk ? 1 : std::max(1, std::min<int>({options.parallel_chunks, static_cast<int>(n - first), 8}));
  if (parallel > 1) SetBlasThreads(1);
  auto run = [&](size_t c) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<ChunkStatistics> r = options.run_chunk
                                            ? options.run_chunk((*chunks)[c])
                                            : RunChunk(model, (*chunks)[c], process_output, options.perplexity);
    absl::MutexLock l(&mu);
    slots[c].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    slots[c].result = std::move(r);
  };
  auto work = [&] {
    while (true) {
      size_t c;
      {
        absl::MutexLock l(&mu);
        if (next == n) return;
        c = next++;
      }
      run(c);
    }
  };
  std::vector<std::thread> pool;
  if (parallel > 1) {
    for (int t = 0; t < parallel; ++t) pool.emplace_back(work);
  }

  ImatrixRunResult result;
  ChunkStatistics total(process_output);
  if (options.resume != nullptr) total.Add(*options.resume);
  absl::Status failed;
  const auto start_all = std::chrono::steady_clock::now();
  for (size_t c = first; c < n; ++c) {
    absl::StatusOr<ChunkStatistics> chunk = absl::UnknownError("not run");
    double seconds = 0;
    if (parallel == 1) run(c);  // one at a time, on all the BLAS threads
    {
      absl::MutexLock l(&mu);
      mu.Await(absl::Condition(
          +[](Slot* s) { return s->result.has_value(); }, &slots[c]));
      chunk = std::move(*slots[c].result);
      seconds = slots[c].seconds;
    }
    if (!chunk.ok()) {
      failed = chunk.status();
      absl::MutexLock l(&mu);
      next = n;  // stop handing out chunks
      break;
    }
    total.Add(*chunk);  // in chunk order: the canonical sum
    result.tokens += options.ctx;
    ChunkDone done;
    done.chunk = static_cast<int>(c) + 1;
    done.chunks = static_cast<int>(n);
    done.perplexity = total.predictions > 0 ? std::exp(total.nll / static_cast<double>(total.predictions)) : 0;
    done.seconds = seconds / parallel;
    done.total = &total;
    if (on_chunk) on_chunk(done);
  }
  for (std::thread& t : pool) t.join();
  if (!failed.ok()) return failed;
  collector->Merge(total.imatrix);
  result.chunks = static_cast<int>(n);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_all).count();
  Perplexity(total, &result.perplexity, &result.perplexity_error);
  return result;
}

}  // namespace quantfleet
