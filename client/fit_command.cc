#include "client/fit_command.h"

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/calibration_text.h"
#include "client/command_line.h"
#include "client/terminal_progress.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/evaluation.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/gguf/gguf_model.h"
#include "core/model/runnable_model.h"
#include "core/quant/file_type.h"
#include "core/quant/model_quantizer.h"
#include "core/quant/quantize_plan.h"
#include "core/util/byte_size.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet fit --vram SIZE [options] MODEL.gguf

Which quantization of MODEL fits a GPU with SIZE of memory: for each file type
the size of the file (planned exactly from the model's tensors, nothing is
quantized), the KV cache at the context length, and their total with the
compute buffers; then the largest type that fits, and the largest
--target-size that would (quantfleet quantize --target-size picks the best
type per matrix for any size).

With --eval TEXT it also measures what each type costs: MODEL is quantized to
it (a scratch file, removed after) and both run over the text side by side
as in quantfleet eval; the table gains the mean KL divergence and the
perplexity ratio, and the best choice is the type with the least KL
divergence that fits.

options:
  --vram SIZE        memory of the GPU (or GPUs together): 24GiB, 11.5G, ...
  --ctx N            context length to hold in the KV cache (default 8192)
  --kv-type TYPE     f16 (default) or q8_0, the KV cache type llama.cpp runs with
  --overhead SIZE    compute buffers and driver (default 768MiB)
  --json             the same as JSON on stdout
  --eval TEXT        measure each type's KL divergence from MODEL over TEXT
  --eval-ctx N       tokens per evaluation chunk (default 512)
  --eval-chunks N    evaluation chunks (default 16)
  --imatrix FILE     importance matrix the measured files are quantized with
  --scratch DIR      where the scratch files go (default: beside MODEL)
  -h, --help         this text

examples:
  quantfleet fit --vram 24GiB --ctx 16384 Llama-3.1-70B-Instruct-F16.gguf
  quantfleet fit --vram 12GiB --eval wiki.test.raw --imatrix imatrix.gguf model-f16.gguf
)";

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet fit: %s\n", message);
  return 1;
}

std::optional<uint32_t> U32(const GgufModel& model, const std::string& key) {
  const GgufKv* kv = FindKv(model.kv(), key);
  return kv != nullptr ? kv->GetU32() : std::nullopt;
}

// The file types people pick for GPUs, smallest first.
constexpr const char* kTypes[] = {"Q2_K",   "Q3_K_S", "Q3_K_M", "Q3_K_L", "IQ4_XS", "Q4_0", "Q4_K_S",
                                  "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",   "Q8_0",   "F16"};

// What quantizing to a type costs, measured.
struct Measured {
  double kld = 0;
  double ppl_ratio = 0;
};

// `model` quantized by `plan` into a scratch file in `scratch`, run beside
// `base` over `tokens`; the scratch file is removed whatever happens.
absl::StatusOr<Measured> Measure(const GgufModel& model, const QuantizePlan& plan, const std::string& type,
                                 const std::string& scratch, const RunnableModel& base,
                                 const std::vector<TokenId>& tokens, const EvalOptions& eval) {
  const std::string path =
      (std::filesystem::path(scratch) / absl::StrFormat(".quantfleet-fit-%s-%d.gguf", type, ::getpid())).string();
  RunOptions run;
  QF_RETURN_IF_ERROR(RunQuantizePlan(model, plan, path, run));
  struct Remove {
    std::string path;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } remove{path};
  QF_ASSIGN_OR_RETURN(GgufModel file, OpenModel(path));
  QF_ASSIGN_OR_RETURN(LlamaModel quantized, LlamaModel::Load(file, path));
  QF_ASSIGN_OR_RETURN(EvalReport report, RunEval(base.llama, quantized, *base.vocab, tokens, eval));
  return Measured{report.kld.value, report.ppl_ratio.value};
}

}  // namespace

int RunFitCommand(const std::vector<std::string>& args) {
  std::string model_path, kv_type = "f16";
  uint64_t vram = 0, overhead = uint64_t{768} << 20;
  int ctx = 8192;
  bool json = false;
  std::string eval_path, imatrix_path, scratch;
  EvalOptions eval;
  eval.max_chunks = 16;
  std::vector<std::string> positional;
  CommandLine line("quantfleet fit");
  line.Size({"--vram"}, &vram)
      .Size({"--overhead"}, &overhead)
      .Int({"--ctx"}, &ctx, 1, "a positive number of tokens")
      .Choice({"--kv-type"}, &kv_type, {"f16", "q8_0"})
      .Flag({"--json"}, &json)
      .Text({"--eval"}, &eval_path, "a text file")
      .Int({"--eval-ctx"}, &eval.ctx, 16, "a number of tokens, 16 or more")
      .Int({"--eval-chunks"}, &eval.max_chunks, 1, "a positive number")
      .Text({"--imatrix"}, &imatrix_path, "a file")
      .Text({"--scratch"}, &scratch, "a directory")
      .Positional(&positional, 1);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (!positional.empty()) model_path = positional[0];
  if (model_path.empty() || vram == 0) return Fail("give the GPU's memory (--vram SIZE) and the model");
  absl::StatusOr<GgufModel> model = OpenModel(model_path);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  const GgufKv* arch_kv = FindKv(model->kv(), "general.architecture");
  const std::optional<std::string> arch = arch_kv != nullptr ? arch_kv->GetString() : std::nullopt;
  if (!arch) return Fail(model_path + ": general.architecture is missing");
  const std::optional<uint32_t> n_layer = U32(*model, *arch + ".block_count");
  const std::optional<uint32_t> n_head = U32(*model, *arch + ".attention.head_count");
  const std::optional<uint32_t> n_embd = U32(*model, *arch + ".embedding_length");
  if (!n_layer || !n_head || !n_embd || *n_head == 0) {
    return Fail(
        absl::StrFormat("%s: %s.block_count, attention.head_count or embedding_length is missing", model_path, *arch));
  }
  const uint32_t n_head_kv = U32(*model, *arch + ".attention.head_count_kv").value_or(*n_head);
  const uint32_t k_dim = U32(*model, *arch + ".attention.key_length").value_or(*n_embd / *n_head);
  const uint32_t v_dim = U32(*model, *arch + ".attention.value_length").value_or(*n_embd / *n_head);
  // K and V per layer and token; q8_0 stores 32 values in 34 bytes.
  const double per_value = kv_type == "f16" ? 2.0 : 34.0 / 32.0;
  const uint64_t kv_bytes =
      static_cast<uint64_t>(static_cast<double>(*n_layer) * ctx * n_head_kv * (k_dim + v_dim) * per_value);

  // With --eval: the text, MODEL made runnable, and the imatrix.
  const bool measure = !eval_path.empty();
  if (!measure && (!imatrix_path.empty() || !scratch.empty())) {
    return Fail("--imatrix and --scratch are for --eval TEXT (the measured files)");
  }
  std::optional<RunnableModel> base;
  std::vector<TokenId> tokens;
  std::optional<Imatrix> imatrix;
  if (measure) {
    if (absl::Status s = CheckChunkTokens(eval.ctx); !s.ok()) return Fail(std::string(s.message()));
    // Checked now rather than after the first type is quantized.
    absl::StatusOr<CalibrationText> text =
        LoadCalibrationText(*model, model_path, eval_path, eval.ctx, eval.max_chunks);
    if (!text.ok()) return Fail(absl::StrFormat("--eval: %s", text.status().message()));
    base.emplace(std::move(text->model));
    tokens = std::move(text->tokens);
    if (!imatrix_path.empty()) {
      absl::StatusOr<Imatrix> loaded = LoadImatrix(imatrix_path);
      if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
      imatrix = std::move(*loaded);
    }
    if (scratch.empty()) scratch = std::filesystem::path(model_path).parent_path().string();
    if (scratch.empty()) scratch = ".";
  }

  struct Row {
    std::string type;
    uint64_t file = 0;
    uint64_t total = 0;
    bool fits = false;
    std::optional<Measured> measured;
  };
  std::vector<Row> rows;
  const bool tty = ::isatty(STDERR_FILENO) != 0 && !json;
  for (const char* name : kTypes) {
    QuantizeOptions options;
    options.file_type = *ParseFileType(name);
    options.allow_requantize = true;
    absl::StatusOr<QuantizePlan> plan =
        BuildQuantizePlan(*model, options, imatrix ? &*imatrix : nullptr, /*dry_run=*/!measure);
    if (!plan.ok()) continue;  // a type this model cannot take
    Row r{name, plan->file_size(), plan->file_size() + kv_bytes + overhead, false, std::nullopt};
    r.fits = r.total <= vram;
    if (measure) {
      if (!json) absl::FPrintF(stderr, "%smeasuring %s ...%s", tty ? "\r" : "", name, tty ? "        " : "\n");
      absl::StatusOr<Measured> m = Measure(*model, *plan, name, scratch, *base, tokens, eval);
      if (!m.ok()) return Fail(absl::StrFormat("measuring %s: %s", name, m.status().message()));
      r.measured = *m;
    }
    rows.push_back(r);
  }
  if (tty && measure) absl::FPrintF(stderr, "\n");
  if (rows.empty()) return Fail(model_path + ": no file type can be planned for this model");
  // The largest that fits, or with measurements the least KL divergence.
  const Row* best = nullptr;
  for (const Row& r : rows) {
    if (!r.fits) continue;
    const bool better = best == nullptr || (r.measured ? r.measured->kld < best->measured->kld : r.file > best->file);
    if (better) best = &r;
  }
  const int64_t room = static_cast<int64_t>(vram) - static_cast<int64_t>(kv_bytes + overhead);
  if (json) {
    nlohmann::json j;
    j["model"] = model_path;
    j["vram_bytes"] = vram;
    j["ctx"] = ctx;
    j["kv_type"] = kv_type;
    j["kv_cache_bytes"] = kv_bytes;
    j["overhead_bytes"] = overhead;
    j["types"] = nlohmann::json::array();
    for (const Row& r : rows) {
      nlohmann::json t = {{"type", r.type}, {"file_bytes", r.file}, {"total_bytes", r.total}, {"fits", r.fits}};
      if (r.measured) {
        t["kld"] = r.measured->kld;
        t["ppl_ratio"] = r.measured->ppl_ratio;
      }
      j["types"].push_back(t);
    }
    j["best"] = best != nullptr ? nlohmann::json(best->type) : nlohmann::json(nullptr);
    j["largest_file_bytes"] = room > 0 ? nlohmann::json(room) : nlohmann::json(nullptr);
    absl::PrintF("%s\n", j.dump(2));
    return 0;
  }
  absl::PrintF("%s: %d layers, %d KV heads of %d+%d; KV cache at %d tokens (%s): %s; overhead %s; GPU %s\n\n",
               model_path, *n_layer, n_head_kv, k_dim, v_dim, ctx, kv_type, HumanBytes(kv_bytes), HumanBytes(overhead),
               HumanBytes(vram));
  absl::PrintF("%-8s %12s %12s  %-4s%s\n", "TYPE", "FILE", "TOTAL", "FITS", measure ? "  KLD        PPL RATIO" : "");
  for (const Row& r : rows) {
    absl::PrintF("%-8s %12s %12s  %-4s%s\n", r.type, HumanBytes(r.file), HumanBytes(r.total), r.fits ? "yes" : "no",
                 r.measured ? absl::StrFormat("  %-10.6f %.4f", r.measured->kld, r.measured->ppl_ratio) : "");
  }
  absl::PrintF("\n");
  if (best != nullptr) {
    absl::PrintF("best that fits: %s (%s)\n", best->type, HumanBytes(best->file));
  } else {
    absl::PrintF("no file type fits: reduce --ctx, use --kv-type q8_0, or spread the model over more GPUs\n");
  }
  if (room > 0) {
    absl::PrintF("any file up to %s fits: quantfleet quantize --target-size %d --calibration TEXT ...\n",
                 HumanBytes(static_cast<uint64_t>(room)), room);
  }
  return 0;
}

}  // namespace quantfleet
