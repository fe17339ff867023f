// quantfleet-hf-checkpoint: writes a Hugging Face checkpoint folder from a
// GGUF model (for conversion tests, demos and the benchmark).
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "tests/tools/hf_checkpoint_writer.h"

namespace {

constexpr char kUsage[] = R"(usage: quantfleet-hf-checkpoint [options] IN.gguf OUT_DIR

Writes the GGUF model as a Hugging Face checkpoint folder: safetensors,
config.json, the tokenizer (tokenizer.model or tokenizer.json) and its
config, generation_config.json.

  --dtype T         F32, F16 (default) or BF16
  --shards N        N safetensors files with an index (default 1)
  --tied            no lm_head (tied embeddings)
  --llama3-rope     Llama 3 rope scaling in config.json
  --arch NAME       the architecture config.json names (default: from the GGUF)
)";

}  // namespace

int main(int argc, char** argv) {
  quantfleet::HfCheckpointSpec spec;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dtype") {
      spec.dtype = value();
    } else if (a == "--shards") {
      if (!absl::SimpleAtoi(value(), &spec.shards)) spec.shards = 0;
    } else if (a == "--tied") {
      spec.drop_output = true;
    } else if (a == "--llama3-rope") {
      spec.llama3_rope = true;
    } else if (a == "--arch") {
      spec.architecture = value();
    } else if (a == "-h" || a == "--help") {
      absl::PrintF("%s", kUsage);
      return 0;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2 || spec.shards < 1 ||
      (spec.dtype != "F32" && spec.dtype != "F16" && spec.dtype != "BF16")) {
    absl::FPrintF(stderr, "%s", kUsage);
    return 1;
  }
  if (absl::Status s = quantfleet::WriteHfCheckpoint(positional[0], positional[1], spec); !s.ok()) {
    absl::FPrintF(stderr, "quantfleet-hf-checkpoint: %s\n", s.message());
    return 1;
  }
  return 0;
}
