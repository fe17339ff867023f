#include "client/imatrix_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/cluster_commands.h"
#include "client/command_line.h"
#include "core/calibration/imatrix_checkpoint.h"
#include "core/calibration/imatrix_run.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/gguf/gguf_model.h"
#include "core/gpu/gpu_devices.h"
#include "core/gpu/gpu_forward.h"
#include "core/io/mapped_file.h"
#include "core/model/forward_pass.h"
#include "core/model/runnable_model.h"
#include "core/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet imatrix -m MODEL.gguf -f TEXT -o OUT.gguf [options]

Computes the importance matrix of a model over a calibration text, as
llama-imatrix does: the text is cut into chunks of CTX tokens, each runs
through the model, and for every weight matrix of the transformer blocks
the sums of squared inputs and the token counts are gathered. The output
feeds `quantfleet quantize --imatrix` (and llama-quantize). The perplexity
of the text is printed as llama-imatrix prints it.

Supported: architectures llama (Llama 2/3, Mistral, Mixtral, TinyLlama), qwen2,
qwen3 and qwen3moe with F32, F16, BF16 or quantized weights (Q4_0 to Q8_0, the
K-quants, IQ4_NL, IQ4_XS); SentencePiece and byte-level BPE tokenizers. Runs on
this machine's CPU cores (BLAS).

A run cut short resumes: every --checkpoint-seconds the chunks done so far are
saved to OUT.checkpoint, and the same command run again continues from there
(the file is the same bytes as an uninterrupted run's). It is removed at the end.

  -m, --model FILE       the model
  -f, --file FILE        the calibration text
  -o, --output FILE      where to write the imatrix (default: imatrix.gguf)
  -c, --ctx N            tokens per chunk (default: 512)
  --chunks N             use at most N chunks (default: all the text holds)
  --process-output       also collect output.weight
  --parse-special        treat special-token text in the file as tokens
  --output-format F      gguf or dat (default: gguf, dat for a .dat name)
  --no-ppl               skip the perplexity (a little faster)
  -t, --threads N        threads (default: all cores); with enough chunks each thread
                         runs its own chunk, else the products share the threads
  --gpu N|auto           run the chunks on GPU N (auto: the first GPU), with the
                         weights in its memory and the statistics gathered there;
                         dense models with F32, F16 or BF16 weights (others, and
                         no GPU, are refused); with --coordinator, --gpu auto
                         runs them on the GPU workers
  --checkpoint-seconds N save progress at most every N seconds (default: 60;
                         0: after every chunk)
  --no-checkpoint        neither save nor resume progress
  --json                 print a JSON summary at the end
  --coordinator H:P      compute it on the cluster's workers instead (paths on the
                         coordinator; workers read the model under --data-root or
                         stream it into their cache); the file is the same bytes
                         this machine would write, and the coordinator keeps the
                         progress. Also takes the TLS and token flags of
                         `quantfleet submit`
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet imatrix: %s\n", message);
  return 1;
}

// The forward pass on the GPU `which` names ("auto": the first).
absl::StatusOr<std::unique_ptr<GpuForward>> OpenGpu(const LlamaModel& model, const std::string& which) {
  const std::vector<GpuDevice> gpus = ListGpus();
  if (gpus.empty()) return absl::FailedPreconditionError(NoGpuReason());
  int index = 0;
  if (which != "auto" && (!absl::SimpleAtoi(which, &index) || index < 0 || index >= static_cast<int>(gpus.size()))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("not a GPU here (%d visible: 0 to %d)", gpus.size(), gpus.size() - 1));
  }
  absl::StatusOr<std::unique_ptr<GpuForward>> g = GpuForward::Create(model, index, 0, model.hparams().n_layer);
  if (g.ok()) {
    absl::FPrintF(stderr, "quantfleet imatrix: on GPU %d (%s), %.2f GiB of weights\n", index, gpus[index].name,
                  (*g)->weight_bytes() / 1073741824.0);
  }
  return g;
}

// What makes a checkpoint fit this run: the model's and the text's paths,
// sizes and modification times, and every option that changes the result.
std::string RunIdentity(const GgufModel& model, const std::string& text_path, const ImatrixRunOptions& options,
                        bool process_output, bool parse_special) {
  auto stamp = [](const std::string& path) {
    struct stat st;
    std::error_code ec;
    const std::string absolute = std::filesystem::absolute(path, ec).string();
    if (::stat(path.c_str(), &st) != 0) return absolute;
    return absl::StrFormat("%s %d %d.%09d", absolute, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  };
  std::string id;
  for (int p = 0; p < model.n_parts(); ++p) id += "model " + stamp(model.part(p).path()) + "; ";
  id += "text " + stamp(text_path) + "; ";
  id += absl::StrFormat("ctx %d; chunks %d; process-output %d; parse-special %d; ppl %d", options.ctx,
                        options.max_chunks, process_output, parse_special, options.perplexity);
  return id;
}

}  // namespace

int RunImatrixCommand(const std::vector<std::string>& args, const ImatrixCommandHooks& hooks) {
  std::string model_path, text_path, out_path = "imatrix.gguf", format;
  ImatrixRunOptions options;
  bool process_output = false, parse_special = false, json = false, checkpoints = true;
  int threads = 0, checkpoint_seconds = 60;
  std::string gpu;  // empty: the CPU
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") break;                     // the usage below
    if (a == "--coordinator") return RunClusterImatrix(args);  // the workers compute it
  }
  CommandLine line("quantfleet imatrix");
  line.Text({"-m", "--model"}, &model_path, "a file")
      .Text({"-f", "--file"}, &text_path, "a file")
      .Text({"-o", "--output"}, &out_path, "a file")
      .Int({"-c", "--ctx"}, &options.ctx, 16, "a number of tokens, 16 or more")
      .Int({"--chunks"}, &options.max_chunks, 1, "a positive number")
      .Int({"-t", "--threads"}, &threads, 1, "a positive number")
      .Choice({"--output-format"}, &format, {"gguf", "dat"})
      .Flag({"--process-output"}, &process_output)
      .Flag({"--parse-special"}, &parse_special)
      .Flag({"--no-ppl"}, &options.perplexity, false)
      .Int({"--checkpoint-seconds"}, &checkpoint_seconds, 0, "a number of seconds, 0 or more")
      .Text({"--gpu"}, &gpu, "a GPU index or auto")
      .Flag({"--no-checkpoint"}, &checkpoints, false)
      .Flag({"--json"}, &json);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (absl::Status s = CheckChunkTokens(options.ctx); !s.ok()) return Fail(std::string(s.message()));
  if (model_path.empty() || text_path.empty()) return Fail("give the model (-m) and the calibration text (-f)");
  if (format.empty()) format = absl::EndsWith(out_path, ".dat") ? "dat" : "gguf";

  absl::StatusOr<std::string> text_or = ReadRegularFile(text_path);
  if (!text_or.ok()) return Fail(std::string(text_or.status().message()));
  const std::string text = *std::move(text_or);
  absl::StatusOr<GgufModel> file = OpenModel(model_path);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  absl::StatusOr<RunnableModel> runnable = MakeRunnable(*file, model_path);
  if (!runnable.ok()) return Fail(std::string(runnable.status().message()));
  const LlamaModel* model = &runnable->llama;
  const std::shared_ptr<const Vocab>& shared_vocab = runnable->vocab;
  const Tokenizer* tokenizer = &runnable->tokenizer;
  const int cores = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  SetBlasThreads(cores);
  options.parallel_chunks = cores;

  std::unique_ptr<GpuForward> on_gpu;
  if (!gpu.empty()) {
    absl::StatusOr<std::unique_ptr<GpuForward>> g = OpenGpu(*model, gpu);
    if (!g.ok()) return Fail(absl::StrFormat("--gpu %s: %s", gpu, g.status().message()));
    on_gpu = *std::move(g);
    options.run_chunk = [&](absl::Span<const TokenId> chunk) {
      std::vector<float> hidden;
      return on_gpu->RunChunk(chunk, &hidden, process_output, options.perplexity);
    };
  }
  const std::vector<TokenId> tokens = tokenizer->Tokenize(text, /*add_special=*/true, parse_special);
  absl::FPrintF(stderr, "quantfleet imatrix: %s: %d tokens; %d per chunk; forward pass on %s\n", text_path,
                tokens.size(), options.ctx, on_gpu ? "the GPU" : BlasKernelName());

  // Progress from an earlier run of the same command, if any.
  const std::string checkpoint_path = out_path + ".checkpoint";
  const std::string identity = RunIdentity(*file, text_path, options, process_output, parse_special);
  const ImatrixLayout layout = ImatrixLayoutOf(*file, process_output);
  std::optional<ImatrixCheckpoint> resumed;
  if (checkpoints) {
    absl::StatusOr<std::optional<ImatrixCheckpoint>> found =
        ReadImatrixCheckpoint(checkpoint_path, identity, layout, process_output);
    if (!found.ok()) {
      absl::FPrintF(stderr, "quantfleet imatrix: starting afresh: %s\n", found.status().message());
    } else if (found->has_value()) {
      resumed = std::move(*found);
      options.resume = &resumed->total;
      options.resume_chunks = resumed->chunks_done;
      absl::FPrintF(stderr, "quantfleet imatrix: resuming from %s: chunks 1-%d are done\n", checkpoint_path,
                    resumed->chunks_done);
    }
  }
  auto last_checkpoint = std::chrono::steady_clock::now();
  const auto run_start = last_checkpoint;
  absl::Status checkpoint_status;
  ImatrixCollector collector(process_output);
  const bool tty = ::isatty(STDERR_FILENO) != 0;  // one line rewritten, or a line per chunk
  absl::StatusOr<ImatrixRunResult> result =
      RunImatrix(*model, *shared_vocab, tokens, options, &collector, [&](const ChunkDone& d) {
        // llama-imatrix's running perplexity; on stderr when stdout is JSON.
        if (options.perplexity) absl::FPrintF(json ? stderr : stdout, "[%d]%.4f,", d.chunk, d.perplexity);
        std::fflush(stdout);
        // The ETA from the chunks this run computed (resumed ones cost nothing).
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
        const int computed = d.chunk - options.resume_chunks;
        const double eta = computed > 0 ? elapsed / computed * (d.chunks - d.chunk) : 0;
        absl::FPrintF(stderr, "%schunk %d/%d, %.0f tokens/s, ETA %s%s", tty ? "\r" : "", d.chunk, d.chunks,
                      options.ctx / d.seconds,
                      eta >= 90 ? absl::StrFormat("%.0f min", eta / 60) : absl::StrFormat("%.0f s", eta),
                      tty ? " " : "\n");
        const auto now = std::chrono::steady_clock::now();
        if (checkpoints && d.chunk < d.chunks && checkpoint_status.ok() &&
            now - last_checkpoint >= std::chrono::seconds(checkpoint_seconds)) {
          // A failure to save progress is reported once; the run goes on.
          checkpoint_status = WriteImatrixCheckpoint(checkpoint_path, identity, d.chunk, *d.total, layout);
          if (!checkpoint_status.ok()) {
            absl::FPrintF(stderr, "\nquantfleet imatrix: cannot save progress: %s\n", checkpoint_status.message());
          }
          last_checkpoint = now;
        }
        if (hooks.after_chunk) hooks.after_chunk(d.chunk);
      });
  if (tty) absl::FPrintF(stderr, "\n");
  if (!result.ok()) return Fail(std::string(result.status().message()));
  if (options.perplexity) {
    absl::FPrintF(json ? stderr : stdout, "\nFinal estimate: PPL = %.4f +/- %.5f\n", result->perplexity,
                  result->perplexity_error);
  }
  const absl::Status written = format == "dat"
                                   ? collector.WriteLegacy(out_path, text_path, result->chunks, options.ctx)
                                   : collector.WriteGguf(out_path, {text_path}, result->chunks, options.ctx);
  if (!written.ok()) return Fail(std::string(written.message()));
  std::error_code ec;
  std::filesystem::remove(checkpoint_path, ec);  // the run is complete
  const double tps = result->seconds > 0 ? result->tokens / result->seconds : 0;
  if (json) {
    nlohmann::json j = {{"output", out_path},
                        {"format", format},
                        {"chunks", result->chunks},
                        {"ctx", options.ctx},
                        {"tokens", result->tokens},
                        {"seconds", result->seconds},
                        {"tokens_per_second", tps},
                        {"entries", collector.entries().size()},
                        {"resumed_chunks", options.resume_chunks}};
    if (options.perplexity) j["perplexity"] = result->perplexity;
    absl::PrintF("%s\n", j.dump(2));
  } else {
    absl::FPrintF(stderr, "quantfleet imatrix: wrote %d entries over %d chunks to %s (%.0f tokens/s)\n",
                  collector.entries().size(), result->chunks, out_path, tps);
  }
  return 0;
}

}  // namespace quantfleet
