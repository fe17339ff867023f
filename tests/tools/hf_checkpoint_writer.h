// Writes a Hugging Face checkpoint folder from a GGUF model, for the
// conversion tests: the GGUF's tensors under their checkpoint names (the
// llama Q/K rows put back in the checkpoint's rotary order, experts split
// into one matrix each), in F32, F16 or BF16, in one file or sharded with
// an index; config.json from the GGUF's hyperparameters; the tokenizer
// from its tokenizer.ggml.* keys, as tokenizer.model (SentencePiece) or
// tokenizer.json (byte-level BPE); tokenizer_config.json and
// generation_config.json. Converting the folder gives back the GGUF's
// tensor values (exactly, from F16 into F16 or F32).
//
// Thread-safety: pure function writing to the folder given.
#ifndef QUANTFLEET_TESTS_TOOLS_HF_CHECKPOINT_WRITER_H_
#define QUANTFLEET_TESTS_TOOLS_HF_CHECKPOINT_WRITER_H_

#include <string>

#include "absl/status/status.h"

namespace quantfleet {

struct HfCheckpointSpec {
  std::string dtype = "F16";  // "F32", "F16" or "BF16" for the matrices; norms follow it
  int shards = 1;             // > 1: model-0000K-of-0000N.safetensors and the index
  bool drop_output = false;   // tie the embeddings: no lm_head
  bool llama3_rope = false;   // rope_scaling {"rope_type": "llama3", ...}
  bool chat_template = true;  // a chat template in tokenizer_config.json
  bool generation_config = true;
  std::string model_card;  // README.md's text (none when empty)
  // The architecture config.json names; empty: from the GGUF
  // (llama -> LlamaForCausalLM or MixtralForCausalLM, qwen2, qwen3, qwen3moe).
  std::string architecture;
};

absl::Status WriteHfCheckpoint(const std::string& gguf_path, const std::string& dir, const HfCheckpointSpec& spec);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_HF_CHECKPOINT_WRITER_H_
