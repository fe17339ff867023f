// The model families `convert` reads from Hugging Face checkpoints, and
// what llama.cpp's converter (at the pinned version) does for each: the
// GGUF architecture, the tensor names, the hyperparameter keys and which
// tensors are reordered or merged.
//
//   LlamaForCausalLM, MistralForCausalLM  -> llama (Q/K rows permuted)
//   MixtralForCausalLM                    -> llama with experts (w1/w2/w3 merged)
//   Qwen2ForCausalLM                      -> qwen2 (Q/K/V biases)
//   Qwen3ForCausalLM                      -> qwen3 (per-head Q/K norms)
//   Qwen3MoeForCausalLM                   -> qwen3moe (experts merged)
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CONVERT_HF_ARCHITECTURE_H_
#define QUANTFLEET_CORE_CONVERT_HF_ARCHITECTURE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/convert/metadata_list.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

enum class HfFamily { kLlama, kMixtral, kQwen2, kQwen3, kQwen3Moe };

struct HfArchitecture {
  std::string hf_name;    // config.json's architectures[0]
  std::string gguf_arch;  // "llama", "qwen2", ...
  HfFamily family = HfFamily::kLlama;
  bool permutes_qk = false;  // llama's rotary layout: Q/K rows reordered
  // Experts stored one matrix per expert, merged into one 3D tensor per
  // projection: the projections in the order the converter writes them.
  std::vector<std::string> expert_projections;
};

// The architecture config.json names; UNIMPLEMENTED naming it when it is
// not one of the above.
absl::StatusOr<HfArchitecture> ArchitectureOf(const nlohmann::json& config, const std::string& dir);

// The GGUF name of checkpoint tensor `name` ("model.layers.3.mlp.up_proj.weight"
// -> "blk.3.ffn_up.weight"); merged experts are named
// "model.layers.B.experts.PROJ.weight". INVALID_ARGUMENT naming the tensor
// when the architecture has no such tensor.
absl::StatusOr<std::string> GgufTensorName(const HfArchitecture& arch, const std::string& name);

// When `name` is one expert's matrix ("...experts.7.w1.weight"), its layer,
// expert and projection.
struct ExpertPart {
  int layer = 0;
  int expert = 0;
  std::string projection;
};
std::optional<ExpertPart> ExpertPartOf(const HfArchitecture& arch, const std::string& name);
std::string MergedExpertName(int layer, const std::string& projection);

// The hyperparameters the converter writes for the architecture, after
// general.architecture/type and the authorship keys: block count, lengths,
// heads, rope, norms, experts, file type, and the family's own keys.
absl::Status AddHyperparameters(const HfArchitecture& arch, const nlohmann::json& hparams, uint32_t file_type,
                                const std::string& dir, MetadataList& meta);

// The tokenizer keys, as the family's converter chooses its vocabulary.
absl::Status AddVocabulary(const HfArchitecture& arch, const nlohmann::json& hparams, const std::string& dir,
                           MetadataList& meta);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_HF_ARCHITECTURE_H_
