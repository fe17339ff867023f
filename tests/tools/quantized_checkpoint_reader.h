// Reads a quantized checkpoint back to floating-point weights, written
// from the formats' definitions alone, for the tests of the checkpoint
// writer. GPTQ ("gptq" v1): per module, qweight int32 [K*b/32, N] holds
// the codes as a little-endian stream of b-bit fields down each column,
// qzeros int32 [G, N*b/32] the zero points minus one along each row,
// scales F16 [G, N], g_idx int32 [K]; the weight of output n, input k is
// scales[g][n] * (q[k][n] - ((qzero[g][n] + 1) mod 2^b)) with g = g_idx[k].
// AWQ (GEMM): qweight int32 [K, N/8] and qzeros int32 [G, N/8] hold 8
// 4-bit fields per word, field i being output 8c + (0,2,4,6,1,3,5,7)[i];
// the weight is scales[k / (K/G)][n] * (q[k][n] - qzero[g][n]).
// Also writes the dequantized model as an ordinary (F32) checkpoint
// folder that every model-taking command reads.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_TESTS_TOOLS_QUANTIZED_CHECKPOINT_READER_H_
#define QUANTFLEET_TESTS_TOOLS_QUANTIZED_CHECKPOINT_READER_H_

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

// Module name ("model.layers.0.self_attn.q_proj") -> its weights; the
// format and bits from config.json's quantization_config.
absl::StatusOr<std::map<std::string, DequantizedMatrix>> ReadQuantizedCheckpoint(const std::string& dir);

// The checkpoint at `dir` as an unquantized folder at `out`: quantized
// modules as F32 ".weight" tensors, every other tensor and file as it is
// (config.json without its quantization_config).
absl::Status WriteDequantizedCheckpoint(const std::string& dir, const std::string& out);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_QUANTIZED_CHECKPOINT_READER_H_
