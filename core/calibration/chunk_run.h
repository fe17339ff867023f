// One calibration chunk through the forward pass: the statistics
// (importance sums and counts, perplexity sums) of a whole chunk or of one
// pipeline stage of it.
//
// Thread-safety: pure functions of their arguments; `model` is only read.
#ifndef QUANTFLEET_CORE_CALIBRATION_CHUNK_RUN_H_
#define QUANTFLEET_CORE_CALIBRATION_CHUNK_RUN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/calibration/chunk_statistics.h"
#include "core/model/llama_model.h"

namespace quantfleet {

// Runs `tokens` (one chunk, BOS in place) through `model`.
absl::StatusOr<ChunkStatistics> RunChunk(const LlamaModel& model, absl::Span<const TokenId> tokens, bool process_output,
                                         bool perplexity);

// One stage of a pipelined chunk: layers [first_layer, end_layer) on the
// activations in `hidden` (see RunForwardLayers), which then hold the
// stage's output. The statistics cover the stage's entries; the last stage
// adds the perplexity sums (and output.weight when asked).
absl::StatusOr<ChunkStatistics> RunChunkLayers(const LlamaModel& model, absl::Span<const TokenId> tokens,
                                               int first_layer, int end_layer, std::vector<float>* hidden,
                                               bool process_output, bool perplexity);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_CHUNK_RUN_H_
