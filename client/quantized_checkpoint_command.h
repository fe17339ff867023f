// `quantfleet quantize --method gptq|awq|rtn --format gptq|awq ... IN_DIR
// OUT_DIR`: a GPTQ or AWQ checkpoint (for vLLM, transformers, exllama)
// from a Hugging Face checkpoint folder.
//
// Thread-safety: called once from main.
#ifndef QUANTFLEET_CLIENT_QUANTIZED_CHECKPOINT_COMMAND_H_
#define QUANTFLEET_CLIENT_QUANTIZED_CHECKPOINT_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Whether `args` ask for a checkpoint format (--format) rather than GGUF.
bool WantsCheckpointFormat(const std::vector<std::string>& args);

int RunQuantizedCheckpointCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_QUANTIZED_CHECKPOINT_COMMAND_H_
