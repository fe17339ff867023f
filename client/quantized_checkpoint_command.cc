#include "client/quantized_checkpoint_command.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/calibration_text.h"
#include "client/command_line.h"
#include "core/calibration/quantized_checkpoint.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] =
    R"(usage: quantfleet quantize --method gptq --format gptq --calibration TEXT [options] IN_DIR OUT_DIR [NTHREADS]
       quantfleet quantize --method awq --format awq --calibration TEXT [options] IN_DIR OUT_DIR [NTHREADS]
       quantfleet quantize --method rtn --format gptq|awq [options] IN_DIR OUT_DIR [NTHREADS]

Writes a quantized checkpoint that vLLM, transformers and exllama load,
from a Hugging Face checkpoint folder: every transformer block's matrices
(q/k/v/o, gate/up/down) quantized layer after layer over the calibration
text, each layer from the activations the quantized layers before it
produce; the embeddings, norms and output head copied as they are;
config.json with its quantization_config, and the tokenizer and
generation files. Llama, Mistral, Mixtral, Qwen2, Qwen3 and Qwen3-MoE models
(each expert its own module).

  --format gptq   GPTQ's error feedback onto GPTQModel's grid, the "gptq"
                  (v1) format (qweight, qzeros, scales, g_idx); also
                  quantize_config.json
  --format awq    AWQ's scales (searched per group of matrices sharing an
                  input, folded into the norms and v/up rows) and clipping,
                  then AutoAWQ's 4-bit grid with a zero point, the GEMM layout
  --method rtn    the format's grid, each weight rounded to nearest (no
                  calibration text; the baseline the methods beat)

  --calibration TEXT   the calibration text (required by gptq and awq)
  --bits B             GPTQ: 2, 3, 4 (default) or 8; AWQ: 4
  --group-size G       columns per scale and zero point (128; -1: one per row)
  --asym               GPTQ: a zero point per group (default: symmetric, zero
                       point 2^(B-1), what Marlin kernels run)
  --desc-act           GPTQ's activation order (columns by decreasing input
                       energy; groups stay contiguous, g_idx is k / G)
  --damp X             GPTQ's damping, a fraction of the mean Hessian
                       diagonal (0.01)
  --no-clip            AWQ: the scales only, without the clipping search
                       (each row group's range shrunk by up to half where
                       that lowers the output error; q and k are not clipped)
  --chunks N, --ctx N  calibration chunks and tokens per chunk (8, 256)
  --json               print {"output", "layers", "matrices", "bytes",
                       "clipped_groups"}
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet quantize: %s\n", message);
  return 1;
}

}  // namespace

bool WantsCheckpointFormat(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--format") return true;
  }
  return false;
}

int RunQuantizedCheckpointCommand(const std::vector<std::string>& args) {
  std::string method, format, calibration;
  int bits = 4, chunks = 8, ctx = 256;
  int64_t group = 128;
  bool asym = false, desc_act = false, json = false, no_clip = false;
  double damp = 0.01;
  std::vector<std::string> positional;
  CommandLine line("quantfleet quantize");
  line.Choice({"--method"}, &method, {"gptq", "awq", "rtn"})
      .Choice({"--format"}, &format, {"gptq", "awq"})
      .Text({"--calibration"}, &calibration, "a text file")
      .Int({"--bits"}, &bits, 2, "2, 3, 4 or 8")
      .Value({"--group-size"}, "a number of columns, or -1",
             [&group](const std::string& v) {
               if (!absl::SimpleAtoi(v, &group) || (group != -1 && group <= 0)) {
                 return absl::InvalidArgumentError(
                     absl::StrFormat("--group-size '%s': a positive number of columns, or -1", v));
               }
               return absl::OkStatus();
             })
      .Flag({"--asym"}, &asym)
      .Flag({"--desc-act"}, &desc_act)
      .Flag({"--no-clip"}, &no_clip)
      .Value({"--damp"}, "a number in (0, 1]",
             [&damp](const std::string& v) {
               if (!absl::SimpleAtod(v, &damp) || !(damp > 0 && damp <= 1)) {
                 return absl::InvalidArgumentError(absl::StrFormat("--damp '%s': a number in (0, 1], e.g. 0.01", v));
               }
               return absl::OkStatus();
             })
      .Int({"--chunks"}, &chunks, 1, "a positive number")
      .Int({"-c", "--ctx"}, &ctx, 16, "a number of tokens, 16 or more")
      .Flag({"--json"}, &json)
      .Positional(&positional, 3);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (method.empty()) return Fail(absl::StrFormat("--format %s needs --method %s (or rtn)", format, format));
  if (method != "rtn" && method != format) {
    return Fail(absl::StrFormat("--method %s writes --format %s (or --method rtn)", method, method));
  }
  const bool calibrated = method != "rtn";
  if (no_clip && method != "awq")
    return Fail("--no-clip is for --method awq (the clipping search follows AWQ's scales)");
  if (calibrated && calibration.empty()) return Fail(absl::StrFormat("--method %s needs --calibration TEXT", method));
  if (positional.size() < 2) return Fail("give the checkpoint folder and the output folder: IN_DIR OUT_DIR");
  const std::string& in = positional[0];
  const std::string& out = positional[1];
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (positional.size() == 3 && (!absl::SimpleAtoi(positional[2], &threads) || threads < 1)) {
    return Fail(absl::StrFormat("NTHREADS '%s': a positive number", positional[2]));
  }
  if (!IsCheckpointDir(in)) {
    return Fail(
        absl::StrFormat("%s: --format gptq reads a Hugging Face checkpoint folder (config.json, safetensors)", in));
  }
  std::vector<std::vector<TokenId>> calibration_chunks;
  if (calibrated) {
    absl::StatusOr<GgufModel> model = OpenModel(in);
    if (!model.ok()) return Fail(std::string(model.status().message()));
    absl::StatusOr<CalibrationText> text = LoadCalibrationText(*model, in, calibration, ctx, chunks);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    calibration_chunks = std::move(text->chunks);
  }
  QuantizedCheckpointOptions options;
  options.format = format == "awq" ? CheckpointFormat::kAwq : CheckpointFormat::kGptq;
  options.calibrated = calibrated;
  options.bits = bits;
  options.group_size = group;
  options.symmetric = !asym;
  options.desc_act = desc_act;
  options.damp = damp;
  options.clip = !no_clip;
  options.threads = threads;
  options.quantizer = absl::StrFormat("quantfleet:%s", QUANTFLEET_VERSION);
  const bool tty = !json && isatty(STDERR_FILENO);
  absl::StatusOr<QuantizedCheckpointReport> report =
      WriteQuantizedCheckpoint(in, out, std::move(calibration_chunks), options, [&](const LayerReport& r, int n_layer) {
        if (json) return;
        absl::FPrintF(stderr, "%s%s: layer %d/%d done (%d matrices)%s", tty ? "\r" : "", method, r.layer + 1, n_layer,
                      r.matrices, tty && r.layer + 1 < n_layer ? "" : "\n");
      });
  if (!report.ok()) return Fail(std::string(report.status().message()));
  if (json) {
    absl::PrintF("%s\n", nlohmann::json({{"output", out},
                                         {"layers", report->layers},
                                         {"matrices", report->matrices},
                                         {"bytes", report->bytes},
                                         {"clipped_groups", report->clipped_groups}})
                             .dump());
  } else {
    absl::PrintF("%s: %s checkpoint, %s onto %d bits, group %d: %d matrices in %d layers, %d bytes of weights%s\n", out,
                 format == "awq" ? "AWQ" : "GPTQ", calibrated ? method : "rounding to nearest", bits, group,
                 report->matrices, report->layers, report->bytes,
                 report->clipped_groups > 0 ? absl::StrFormat(" (%d row groups clipped)", report->clipped_groups) : "");
  }
  return 0;
}

}  // namespace quantfleet
