// The plan of one quantization: the output file's metadata and layout and,
// for every tensor, where its bytes come from and what they become.
//
// Everything that can fail about the inputs fails here, before a byte is
// written: unsupported types, missing importance weights, requantization
// without permission, imatrix shape mismatches. Sizes are known from the
// shapes, so the header and every tensor offset are fixed before any data
// exists (which is what lets many workers write one file).
//
// Thread-safety: a built plan is immutable.
#ifndef QUANTFLEET_CORE_QUANT_QUANTIZE_PLAN_H_
#define QUANTFLEET_CORE_QUANT_QUANTIZE_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/gguf/gguf_value.h"
#include "core/quant/file_type.h"
#include "core/quant/imatrix_file.h"
#include "core/quant/type_policy.h"

namespace quantfleet {

// What the user asked for: llama-quantize's options.
struct QuantizeOptions {
  FileTypeOption file_type = *ParseFileType("Q8_0");
  std::optional<GgmlType> output_tensor_type;
  std::optional<GgmlType> token_embedding_type;
  bool leave_output_tensor = false;
  bool pure = false;
  bool allow_requantize = false;
  std::vector<TensorTypeOverride> tensor_types;
  std::vector<GgufKv> kv_overrides;  // --override-kv, in order
  std::string imatrix_path;          // empty: none
  std::vector<std::string> include_weights;
  std::vector<std::string> exclude_weights;
};

struct PlannedTensor {
  const ModelTensor* source = nullptr;
  GgufTensorInfo output;                        // name, shape, target type, offset, size
  bool convert = false;                         // false: bytes copied unchanged
  const std::vector<float>* imatrix = nullptr;  // ne0 * ne2 weights, or null
  bool fell_back = false;
  bool requires_imatrix = false;
};

struct QuantizePlan {
  std::vector<GgufKv> kv;              // output metadata, in output order
  std::vector<PlannedTensor> tensors;  // output order
  std::vector<uint8_t> meta;           // serialised header incl. padding
  uint64_t data_size = 0;              // data section bytes incl. padding
  uint64_t file_size() const { return meta.size() + data_size; }
  uint64_t source_bytes = 0;  // sum of input tensor sizes
  uint64_t output_bytes = 0;  // sum of output tensor sizes
  int64_t n_elements = 0;
  int n_fallbacks = 0;
  bool missing_imatrix = false;  // some tensor needs one and none was given
  std::vector<std::string> warnings;
};

// Builds the plan. `imatrix` is the filtered importance matrix or null.
// When `dry_run` is true a missing importance matrix is reported in
// missing_imatrix instead of failing. Errors: INVALID_ARGUMENT or
// FAILED_PRECONDITION naming the tensor and what to do.
absl::StatusOr<QuantizePlan> BuildQuantizePlan(const GgufModel& model, const QuantizeOptions& options,
                                               const Imatrix* imatrix, bool dry_run);

// The keys llama-quantize records about an importance matrix.
inline constexpr char kImatrixFileKey[] = "quantize.imatrix.file";
inline constexpr char kImatrixDatasetKey[] = "quantize.imatrix.dataset";
inline constexpr char kImatrixEntriesKey[] = "quantize.imatrix.entries_count";
inline constexpr char kImatrixChunksKey[] = "quantize.imatrix.chunks_count";

// Parses one --override-kv argument, KEY=TYPE:VALUE with TYPE one of int,
// float, bool, str, into the pair written to the output (ints become u32
// of their absolute value, floats f32, as llama-quantize writes them).
absl::StatusOr<GgufKv> ParseKvOverride(const std::string& text);

// Parses one --tensor-type argument, NAME=TYPE: NAME is a regular
// expression (lower-cased, as llama-quantize does), TYPE a tensor type.
absl::StatusOr<TensorTypeOverride> ParseTensorTypeOverride(const std::string& spec);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_QUANTIZE_PLAN_H_
