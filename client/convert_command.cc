#include "client/convert_command.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "client/command_line.h"
#include "client/terminal_progress.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet convert HF_DIR OUT.gguf [--outtype TYPE] [options]

Converts a Hugging Face checkpoint folder (config.json, *.safetensors with
their index, tokenizer.model or tokenizer.json, tokenizer_config.json) to
a GGUF file: the same bytes llama.cpp's convert_hf_to_gguf.py writes, with
no Python. Architectures: LlamaForCausalLM, MistralForCausalLM,
MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM.

Every command that takes a model also takes the folder itself and
converts on the fly (quantfleet quantize HF_DIR out.gguf Q4_K_M), so this
command is only needed to keep the full-precision GGUF.

  --outtype TYPE   auto (default: BF16 when the checkpoint's first matrix
                   is BF16, else F16), f32, f16, bf16 or q8_0; vectors and
                   norms stay F32
  --overwrite      replace OUT.gguf when it exists
  --json           print {"output", "tensors", "bytes", "architecture"}
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet convert: %s\n", message);
  return 1;
}

}  // namespace

int RunConvertCommand(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  std::string outtype = "auto";
  bool overwrite = false, json = false;
  CommandLine line("quantfleet convert");
  line.Choice({"--outtype"}, &outtype, {"auto", "f32", "f16", "bf16", "q8_0"})
      .Flag({"--overwrite"}, &overwrite)
      .Flag({"--json"}, &json)
      .Positional(&positional, 2);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (positional.size() != 2) return Fail("give the checkpoint folder and the output: convert HF_DIR OUT.gguf");
  const std::string& dir = positional[0];
  const std::string& out = positional[1];
  if (!IsCheckpointDir(dir)) return Fail(absl::StrFormat("%s: not a checkpoint folder (no config.json)", dir));
  absl::StatusOr<OutType> type = ParseOutType(outtype);
  if (!type.ok()) return Fail(std::string(type.status().message()));
  absl::StatusOr<std::unique_ptr<CheckpointConversion>> plan = CheckpointConversion::Plan(dir, *type);
  if (!plan.ok()) return Fail(std::string(plan.status().message()));
  const CheckpointConversion& c = **plan;
  const bool show = !json && isatty(STDERR_FILENO);
  TerminalProgress progress(stderr, c.file_size(), c.tensors().size());
  absl::Status written = c.Write(out, overwrite, [&](size_t done, size_t) {
    if (show)
      progress.Update(done, c.header().size() + c.tensors()[done - 1].info.offset, c.tensors()[done - 1].info.name);
  });
  if (show) progress.Finish();
  if (!written.ok()) return Fail(std::string(written.message()));
  if (json) {
    nlohmann::json j = {{"output", out},
                        {"architecture", c.architecture().gguf_arch},
                        {"tensors", c.tensors().size()},
                        {"bytes", c.file_size()}};
    absl::PrintF("%s\n", j.dump());
  } else {
    absl::PrintF("%s: %s, %d tensors, %s\n", out, c.architecture().hf_name, c.tensors().size(),
                 HumanBytes(c.file_size()));
  }
  return 0;
}

}  // namespace quantfleet
