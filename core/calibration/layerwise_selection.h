// Which planned tensors a layerwise method (GPTQ, AWQ, both) writes, and
// whether AWQ's scales are folded: the part of the method the coordinator
// also needs (to cut a job into layer tasks) without running the model.
//
// The method writes a layer's matrices (q, k, v, o, gate, up, down; not
// the router) whose rows are whole blocks of their planned type:
//   - GPTQ alone: those whose type has levels (K-quants, legacy quants,
//     IQ4), converted from their source;
//   - a solver of its own (a checkpoint format): every such matrix;
//   - AWQ: every matrix and both norms of every layer, if the plan lets it
//     write all of them (otherwise nothing folds, and GPTQ, when asked
//     for, still takes what it would alone).
// Mixtures of experts fold the attention's groups only (their FFN input
// also feeds the router).
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CALIBRATION_LAYERWISE_SELECTION_H_
#define QUANTFLEET_CORE_CALIBRATION_LAYERWISE_SELECTION_H_

#include <map>
#include <string>
#include <vector>

#include "core/model/llama_model.h"
#include "core/quant/quantize_plan.h"

namespace quantfleet {

struct LayerwiseSelection {
  std::map<std::string, size_t> handled;  // tensor name -> index into the plan's tensors
  bool fold = false;                      // AWQ scales are folded (asked for, and every layer allows it)
};

// `awq`: AWQ asked for; `gptq`: GPTQ asked for; `own_solver`: every
// matrix goes to a solver of the caller's (a checkpoint format's grid).
LayerwiseSelection SelectLayerwise(const LlamaModel& model, const QuantizePlan& plan, bool awq, bool gptq,
                                   bool own_solver);

// The matrices of a layer the forward pass multiplies (not the router), in
// the order q, k, v, o, gate, up, down.
std::vector<const Linear*> LayerMatrices(const LlamaLayer& layer);

// "blk.3.attn_norm.weight" for (3, "attn_norm").
std::string LayerNormName(int layer, const char* which);

// Bytes of one set of `layer`'s input statistics (its Hessians in double:
// q/k/v's, o's, gate/up's and down's, per expert).
uint64_t LayerStatisticsBytes(const LlamaLayer& layer);

// The least memory solving `layer` holds beside the mapped model, when the
// activations entering (or leaving) it are `activation_bytes`: those
// entering and leaving it and a copy a worker keeps, the statistics twice
// (the sum and one chunk's), the matrices as floats with their solved
// bytes, and the two copies of its widest Hessian a solve takes.
uint64_t LayerSolveBytes(const LlamaLayer& layer, uint64_t activation_bytes);

// The names `selection` writes in `layer` of `model`, in plan order.
std::vector<std::string> TensorsOfLayer(const LlamaModel& model, const LayerwiseSelection& selection, int layer);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_LAYERWISE_SELECTION_H_
