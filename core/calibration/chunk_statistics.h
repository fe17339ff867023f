// One calibration chunk's statistics (importance sums and counts, the
// perplexity sums of its second half): the entries a model yields, the
// fixed binary layout in which a worker sends them to the coordinator, and
// adding them to a total. Running a chunk is chunk_run.h.
// Totals are always built by adding chunks in chunk order, so the result
// is the same bits whichever machines ran which chunks.
//
// Thread-safety: functions are independent; a ChunkStatistics belongs to
// one thread.
#ifndef QUANTFLEET_CORE_CALIBRATION_CHUNK_STATISTICS_H_
#define QUANTFLEET_CORE_CALIBRATION_CHUNK_STATISTICS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/calibration/imatrix_collector.h"
#include "core/gguf/gguf_model.h"
#include "core/model/vocab.h"

namespace quantfleet {

// The entries a chunk of `model` yields, in name order: every attention and
// feed-forward matrix of the blocks (expert tensors with one matrix per
// expert, and the router), and output.weight when `process_output` and the
// model has one.
struct ImatrixEntryShape {
  std::string name;
  int64_t columns = 0;
  int64_t matrices = 1;
};
using ImatrixLayout = std::vector<ImatrixEntryShape>;
ImatrixLayout ImatrixLayoutOf(const GgufModel& model, bool process_output);
// Bytes of one encoded chunk for `layout`.
size_t EncodedChunkBytes(const ImatrixLayout& layout);

struct ChunkStatistics {
  explicit ChunkStatistics(bool process_output) : imatrix(process_output) {}
  ImatrixCollector imatrix;
  double nll = 0;   // sum of -log p over the second half of the chunk
  double nll2 = 0;  // sum of squares of the same
  int64_t predictions = 0;

  // Adds `chunk` (the next in chunk order) to this total.
  void Add(const ChunkStatistics& chunk);
};

// The block index of an entry ("blk.12.ffn_up.weight": 12), or -1 for
// entries outside the blocks (output.weight).
int EntryLayer(const std::string& name);
// The entries of `layout` that layers [first_layer, end_layer) of a model
// of `n_layer` yield (output.weight belongs to the last stage).
ImatrixLayout StageLayout(const ImatrixLayout& layout, int first_layer, int end_layer, int n_layer);

// The wire layout (see CalibrationChunk in proto/quantfleet.proto).
// FAILED_PRECONDITION when the statistics do not have `layout`'s entries.
absl::StatusOr<std::string> EncodeChunk(const ChunkStatistics& chunk, const ImatrixLayout& layout);
absl::StatusOr<ChunkStatistics> DecodeChunk(std::string_view bytes, const ImatrixLayout& layout, bool process_output);

// The perplexity sums that close every encoded chunk: its last
// kChunkPerplexityBytes bytes, readable without decoding the rest.
struct ChunkPerplexity {
  double nll = 0;
  double nll2 = 0;
  int64_t predictions = 0;
};
inline constexpr size_t kChunkPerplexityBytes = 2 * sizeof(double) + sizeof(int64_t);
// DATA_LOSS unless `tail` is kChunkPerplexityBytes long.
absl::StatusOr<ChunkPerplexity> DecodeChunkPerplexity(std::string_view tail);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_CHUNK_STATISTICS_H_
