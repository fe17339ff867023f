// Reads a GPTQ ("gptq" v1 format) checkpoint back to floating-point
// weights, written from the format's definition alone, for the tests of
// the GPTQ checkpoint writer: per module, qweight int32 [K*b/32, N] holds
// the codes as a little-endian stream of b-bit fields down each column,
// qzeros int32 [G, N*b/32] the zero points minus one along each row,
// scales F16 [G, N], g_idx int32 [K]; the weight of output n, input k is
// scales[g][n] * (q[k][n] - ((qzero[g][n] + 1) mod 2^b)) with g = g_idx[k].
// Also writes the dequantized model as an ordinary (F32) checkpoint
// folder that every model-taking command reads.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_TESTS_TOOLS_GPTQ_CHECKPOINT_READER_H_
#define QUANTFLEET_TESTS_TOOLS_GPTQ_CHECKPOINT_READER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

struct DequantizedMatrix {
  int64_t rows = 0, columns = 0;  // N outputs, K inputs
  std::vector<float> values;      // rows x columns
};

// Module name ("model.layers.0.self_attn.q_proj") -> its weights. `bits`
// from the folder's quantize_config.json.
absl::StatusOr<std::map<std::string, DequantizedMatrix>> ReadGptqCheckpoint(const std::string& dir);

// The checkpoint at `dir` as an unquantized folder at `out`: quantized
// modules as F32 ".weight" tensors, every other tensor and file as it is
// (config.json without its quantization_config).
absl::Status WriteDequantizedCheckpoint(const std::string& dir, const std::string& out);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_GPTQ_CHECKPOINT_READER_H_
