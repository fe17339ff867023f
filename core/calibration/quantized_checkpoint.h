// Quantized Hugging Face checkpoints (the GPTQ and AWQ formats vLLM,
// transformers and exllama load) from a checkpoint folder: the matrices of
// every transformer block (q/k/v/o, gate/up/down) quantized layer after
// layer over a calibration text by the layerwise method, each onto an
// integer grid (int_grid_quantizer.h).
//
// GPTQ: GPTQ's error feedback onto GPTQModel's grid, written in the
// "gptq" (v1) format as GPTQModel writes it:
//
//   MODULE.qweight  int32 [K*b/32, N]  codes packed along the input
//                   dimension, lowest index in the lowest bits (for 3 bits
//                   a little-endian bit stream over 3 words per 32 rows)
//   MODULE.qzeros   int32 [G, N*b/32]  zero points minus one, packed along
//                   the output dimension the same way
//   MODULE.scales   F16   [G, N]
//   MODULE.g_idx    int32 [K]          k / group_size
//
// where K is the input and N the output features and G the groups; the
// weight is scales[g][n] * (q - (qzero + 1)); quantize_config.json too.
//
// AWQ: AutoAWQ's scale search per group of matrices sharing an input,
// folded into the norms and the v/up rows, then AutoAWQ's 4-bit grid
// (min/max per group, zero point), written in the GEMM layout AutoAWQ
// writes: qweight int32 [K, N/8] and qzeros int32 [G, N/8] with 8 outputs
// per word in the order 0,2,4,6,1,3,5,7 (4 bits each, lowest first; zero
// points as they are), scales F16 [G, N]; the weight is
// scales[k/g][n] * (q - qzero). The folded norms are written too.
//
// Every other tensor (the embeddings, norms, output head, biases) is
// copied in its dtype. config.json gains "quantization_config"; the
// tokenizer and generation files are copied.
//
// Llama, Mistral, Mixtral, Qwen2, Qwen3 and Qwen3-MoE models: each expert
// of a mixture is its own module, solved over the tokens routed to it
// (rounded to nearest when none were); AWQ's scales are folded for dense
// models only (a mixture's experts get its grid unscaled). The observer
// sees each matrix as the file will hold it (for AWQ with its scales
// folded in).
//
// Thread-safety: one call at a time per output folder; the observer is
// called from the solving threads, one matrix at a time.
#ifndef QUANTFLEET_CORE_CALIBRATION_QUANTIZED_CHECKPOINT_H_
#define QUANTFLEET_CORE_CALIBRATION_QUANTIZED_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration/layerwise_method.h"
#include "core/model/vocab.h"

namespace quantfleet {

enum class CheckpointFormat { kGptq, kAwq };

struct QuantizedCheckpointOptions {
  CheckpointFormat format = CheckpointFormat::kGptq;
  int bits = 4;              // GPTQ: 2, 3, 4 or 8; AWQ: 4
  int64_t group_size = 128;  // -1: one group per row
  bool symmetric = true;     // GPTQ: zero point 2^(b-1)
  bool desc_act = false;     // GPTQ's activation order (static groups)
  // GPTQ's error feedback, AWQ's scale search; false: round to nearest on
  // the same grid (no calibration text needed).
  bool calibrated = true;
  // AWQ's clipping search after the scales (q and k skipped); false: the
  // scales only.
  bool clip = true;
  double damp = 0.01;
  int threads = 0;
  std::string quantizer = "quantfleet";  // written in quantization_config.meta (GPTQ)
};

struct QuantizedCheckpointReport {
  int layers = 0;
  int matrices = 0;
  int64_t clipped_groups = 0;  // AWQ: row groups clamped below their maximum
  uint64_t bytes = 0;          // of the weights file
};

// A solved matrix as the checkpoint will hold it, dequantized: its
// checkpoint name (model.layers.L.self_attn.q_proj.weight), rows in the
// checkpoint's order, rows x columns floats.
using SolvedMatrixObserver =
    std::function<void(const std::string& name, const std::vector<float>& values, int64_t rows, int64_t columns)>;

// Writes the checkpoint of `hf_dir` to `out_dir` (created; files in it are
// replaced). `chunks`: calibration chunks with BOS first, tokenized with
// the folder's tokenizer. Errors name the folder, tensor or option.
absl::StatusOr<QuantizedCheckpointReport> WriteQuantizedCheckpoint(const std::string& hf_dir,
                                                                   const std::string& out_dir,
                                                                   std::vector<std::vector<TokenId>> chunks,
                                                                   const QuantizedCheckpointOptions& options,
                                                                   LayerwiseMethod::Progress progress = nullptr,
                                                                   SolvedMatrixObserver observer = nullptr);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_QUANTIZED_CHECKPOINT_H_
