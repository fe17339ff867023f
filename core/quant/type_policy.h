// Decides each tensor's target type for a file type, exactly as
// llama-quantize does: which tensors are never quantized, the per-tensor
// mixture rules (attention V/K/Q/output, FFN up/gate/down by layer
// position, output and token embeddings, GQA and expert counts, the 70B
// special case), user overrides, and fallbacks for rows that are not a
// multiple of the block size.
//
// The rules depend on the order tensors are visited (layer counters), so
// Decide takes the whole list in llama.cpp's order (see SortTensorsLikeLlama).
// Thread-safety: Decide is const and may run concurrently.
#ifndef QUANTFLEET_CORE_QUANT_TYPE_POLICY_H_
#define QUANTFLEET_CORE_QUANT_TYPE_POLICY_H_

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_value.h"
#include "core/quant/file_type.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

// The model hyper-parameters the rules look at.
struct ModelFacts {
  std::string arch;        // general.architecture
  uint32_t n_layer = 0;    // <arch>.block_count
  uint32_t n_head = 0;     // layer 0
  uint32_t n_head_kv = 0;  // layer 0; defaults to n_head
  uint32_t n_expert = 0;
  bool is_70b = false;  // llama with 80 layers and grouped-query attention

  uint32_t n_gqa() const { return n_head_kv == 0 ? 0 : n_head / n_head_kv; }
};

// Reads ModelFacts from metadata; `overrides` (from --override-kv) win,
// as they do in llama.cpp's loader. Errors name the missing or mistyped key.
absl::StatusOr<ModelFacts> ReadModelFacts(const std::vector<GgufKv>& kv, const std::vector<GgufKv>& overrides);

struct TensorTypeOverride {
  std::string pattern;  // regular expression searched in the tensor name
  GgmlType type;
};

struct TypePolicyOptions {
  FileType file_type = FileType::kQ8_0;
  std::optional<GgmlType> output_tensor_type;
  std::optional<GgmlType> token_embedding_type;
  bool quantize_output_tensor = true;  // false: --leave-output-tensor
  bool only_copy = false;              // COPY
  bool pure = false;
  bool has_imatrix = false;
  std::vector<TensorTypeOverride> tensor_types;  // first match wins
};

struct PolicyTensor {
  std::string name;
  int n_dims = 1;
  int64_t ne0 = 0;  // elements per row
  int64_t ne2 = 1;  // experts
  GgmlType type = GgmlType::kF32;
};

struct TensorDecision {
  GgmlType type = GgmlType::kF32;
  bool allows_quantization = false;
  bool requires_imatrix = false;
  bool fell_back = false;  // the row length forced a different type
};

class TypePolicy {
 public:
  TypePolicy(ModelFacts facts, TypePolicyOptions options);

  // Decides every tensor, in the order given. Errors: INVALID_ARGUMENT when
  // a tensor's layer cannot be determined for an expert model, or a
  // fallback is undefined for the requested type.
  absl::StatusOr<std::vector<TensorDecision>> Decide(const std::vector<PolicyTensor>& tensors) const;

 private:
  ModelFacts facts_;
  TypePolicyOptions options_;
  std::vector<std::pair<std::regex, GgmlType>> patterns_;
};

// True when the name says the tensor may be quantized at all (2D or more,
// a "weight", not a norm, not a router, not one of the small special
// tensors llama.cpp keeps as they are).
bool TensorAllowsQuantization(const std::string& name, int n_dims, const TypePolicyOptions& options);

// Orders tensor names as llama.cpp's loader does: by the layer number of
// "blk.N." (tensors without one first), then by name.
bool LlamaTensorOrderLess(const std::string& a, const std::string& b);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_TYPE_POLICY_H_
