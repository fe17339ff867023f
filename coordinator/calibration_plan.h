// How an importance-matrix job is spread over the workers: the bytes of
// weights each part of the model needs, and the cut of its layers into
// pipeline stages that fit the workers' memory.
//
// One stage (data-parallel) when some worker can hold the whole model;
// otherwise one stage per worker (at most one per layer), contiguous layer
// ranges, largest budget first, each within its worker's memory. The first
// stage also holds the token embeddings, the last one the output head.
// Within the budgets, stages get work in proportion to the workers' memory,
// work counted as the weights a stage multiplies: its layers, and the head
// for the last (the embeddings are only looked up), so that a pipeline of
// equal workers keeps them equally busy.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_COORDINATOR_CALIBRATION_PLAN_H_
#define QUANTFLEET_COORDINATOR_CALIBRATION_PLAN_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/gguf/gguf_model.h"

namespace quantfleet {

struct ModelFootprint {
  uint64_t embedding = 0;        // token_embd.weight
  std::vector<uint64_t> layers;  // every tensor of blk.N
  uint64_t head = 0;             // output_norm and output.weight (or the tied embedding)

  uint64_t Total() const;
  // Bytes a stage of layers [first, end) holds.
  uint64_t StageBytes(int first, int end) const;
  // Bytes of layers [first, end) alone.
  uint64_t LayerBytes(int first, int end) const;
};

ModelFootprint FootprintOf(const GgufModel& model, int n_layer);

// The end layer of every stage for workers that may hold `budgets` bytes
// each (0: no limit), or nullopt when they cannot hold the model together.
std::optional<std::vector<int>> PlanStages(const ModelFootprint& footprint, std::vector<uint64_t> budgets);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_CALIBRATION_PLAN_H_
