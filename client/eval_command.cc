#include "client/eval_command.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/command_line.h"
#include "core/calibration/eval_report_json.h"
#include "core/calibration/evaluation.h"
#include "core/calibration/imatrix_run.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/model/forward_pass.h"
#include "core/model/runnable_model.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet eval --base BASE.gguf --model QUANT.gguf -f TEXT [options]

Measures what quantizing cost: both models run over the text chunk by chunk,
side by side, and the report gives the perplexity of each, their ratio, and
the KL divergence of QUANT's next-token distribution from BASE's, with
llama-perplexity's conventions (chunks of CTX tokens with BOS first, each
scored over its second half) and statistics. No logits file is written.

Either model may be F32, F16, BF16 or quantized (Q4_0 to Q8_0, the K-quants,
IQ4_NL, IQ4_XS), of the architectures `quantfleet imatrix` runs; both must
share a vocabulary (a model and its quantizations do). The text is tokenized
with BASE's tokenizer.

options:
  --base FILE        the reference model (e.g. the F16 GGUF)
  --model FILE       the model to measure (e.g. its Q4_K_M)
  -f, --file TEXT    evaluation text (held out from any calibration text)
  -c, --ctx N        tokens per chunk (default: 512; at most what the model was
                     trained for makes sense)
  --chunks N         use at most N chunks (default: all the text holds)
  -t, --threads N    threads for the matrix products (default: all cores)
  --json             print the report as JSON on stdout
  --coordinator H:P  run the chunks on the cluster's workers instead (paths on
                     the coordinator; each worker holds both models, read under
                     its --data-root or streamed into its cache); the same
                     numbers. -o REPORT names the report file the coordinator
                     writes (default: eval.json here); --max-kld X and
                     --max-ppl-ratio R fail the job over those limits
  -h, --help         this text

Reading the report: mean KLD is in nats per token (0: identical predictions;
smaller is better); "same top" is how often both models pick the same most
likely token; Δp is the change of the true token's probability.
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet eval: %s\n", message);
  return 1;
}

// A GGUF file and what runs it (which points into the file's mapping).
struct LoadedModel {
  std::unique_ptr<GgufModel> file;
  std::unique_ptr<RunnableModel> runnable;
};

absl::StatusOr<LoadedModel> Load(const std::string& path) {
  absl::StatusOr<GgufModel> file = OpenModel(path);
  if (!file.ok()) return file.status();
  LoadedModel out;
  out.file = std::make_unique<GgufModel>(*std::move(file));
  absl::StatusOr<RunnableModel> runnable = MakeRunnable(*out.file, path);
  if (!runnable.ok()) return runnable.status();
  out.runnable = std::make_unique<RunnableModel>(*std::move(runnable));
  return out;
}

}  // namespace

void PrintEvalReport(const EvalReport& r) {
  absl::PrintF("chunks %d, %d scored tokens\n\n", r.chunks, r.positions);
  absl::PrintF("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.ppl.value, r.ppl.uncertainty);
  absl::PrintF("Mean PPL(base)                : %10.6f ± %10.6f\n", r.ppl_base.value, r.ppl_base.uncertainty);
  absl::PrintF("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * r.ln_ppl_correlation);
  absl::PrintF("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", r.ln_ppl_ratio.value, r.ln_ppl_ratio.uncertainty);
  absl::PrintF("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n\n", r.ppl_ratio.value, r.ppl_ratio.uncertainty);
  absl::PrintF("Mean    KLD: %10.6f ± %10.6f\n", r.kld.value, r.kld.uncertainty);
  absl::PrintF("Maximum KLD: %10.6f\n", r.kld_max);
  absl::PrintF("99.9%%   KLD: %10.6f\n", r.kld_p999);
  absl::PrintF("99.0%%   KLD: %10.6f\n", r.kld_p99);
  absl::PrintF("95.0%%   KLD: %10.6f\n", r.kld_p95);
  absl::PrintF("90.0%%   KLD: %10.6f\n", r.kld_p90);
  absl::PrintF("Median  KLD: %10.6f\n\n", r.kld_median);
  absl::PrintF("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * r.delta_p.value, 100 * r.delta_p.uncertainty);
  absl::PrintF("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * r.delta_p_rms.value, 100 * r.delta_p_rms.uncertainty);
  absl::PrintF("Same top p: %6.3f ± %5.3f %%\n", 100 * r.same_top.value, 100 * r.same_top.uncertainty);
}

int RunEvalCommand(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") break;
    if (a == "--coordinator" || a.rfind("--coordinator=", 0) == 0) return RunClusterEval(args);
  }
  std::string base_path, model_path, text_path;
  EvalOptions options;
  int threads = 0;
  bool json = false;
  CommandLine line("quantfleet eval");
  line.Text({"--base"}, &base_path, "a file")
      .Text({"-m", "--model"}, &model_path, "a file")
      .Text({"-f", "--file"}, &text_path, "a file")
      .Int({"-c", "--ctx"}, &options.ctx, 16, "a number of tokens, 16 or more")
      .Int({"--chunks"}, &options.max_chunks, 1, "a positive number")
      .Int({"-t", "--threads"}, &threads, 1, "a positive number")
      .Flag({"--json"}, &json);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (absl::Status s = CheckChunkTokens(options.ctx); !s.ok()) return Fail(std::string(s.message()));
  if (base_path.empty() || model_path.empty() || text_path.empty()) {
    return Fail("give the base model (--base), the model to measure (--model) and the text (-f)");
  }
  absl::StatusOr<std::string> text = ReadRegularFile(text_path);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  absl::StatusOr<LoadedModel> base = Load(base_path);
  if (!base.ok()) return Fail(std::string(base.status().message()));
  absl::StatusOr<LoadedModel> model = Load(model_path);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  SetBlasThreads(threads);

  const RunnableModel& reference = *base->runnable;
  const std::vector<TokenId> tokens =
      reference.tokenizer.Tokenize(*text, /*add_special=*/true, /*parse_special=*/false);
  absl::FPrintF(stderr, "quantfleet eval: %s: %d tokens; %d per chunk; forward pass on %s\n", text_path, tokens.size(),
                options.ctx, BlasKernelName());
  const auto start = std::chrono::steady_clock::now();
  const bool tty = ::isatty(STDERR_FILENO) != 0;  // one line rewritten, or a line per chunk
  options.on_chunk = [&](const EvalReport& r) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    absl::FPrintF(stderr, "%schunk %d: PPL(Q) %.4f, PPL(base) %.4f, KLD %.6f, %.0f tokens/s%s", tty ? "\r" : "",
                  r.chunks, r.ppl.value, r.ppl_base.value, r.kld.value, 2.0 * r.chunks * options.ctx / seconds,
                  tty ? " " : "\n");
  };
  absl::StatusOr<EvalReport> report =
      RunEval(reference.llama, model->runnable->llama, *reference.vocab, tokens, options);
  if (tty) absl::FPrintF(stderr, "\n");
  if (!report.ok()) return Fail(absl::StrFormat("%s: %s", text_path, report.status().message()));
  if (json) {
    absl::PrintF("%s\n", ReportJson(*report).dump(2));
  } else {
    PrintEvalReport(*report);
  }
  return 0;
}

}  // namespace quantfleet
