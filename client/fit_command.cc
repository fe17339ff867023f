#include "client/fit_command.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/command_line.h"
#include "client/terminal_progress.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/file_type.h"
#include "core/quant/quantize_plan.h"
#include "core/util/byte_size.h"
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

options:
  --vram SIZE        memory of the GPU (or GPUs together): 24GiB, 11.5G, ...
  --ctx N            context length to hold in the KV cache (default 8192)
  --kv-type TYPE     f16 (default) or q8_0, the KV cache type llama.cpp runs with
  --overhead SIZE    compute buffers and driver (default 768MiB)
  --json             the same as JSON on stdout
  -h, --help         this text

example:
  quantfleet fit --vram 24GiB --ctx 16384 Llama-3.1-70B-Instruct-F16.gguf
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

}  // namespace

int RunFitCommand(const std::vector<std::string>& args) {
  std::string model_path, kv_type = "f16";
  uint64_t vram = 0, overhead = uint64_t{768} << 20;
  int ctx = 8192;
  bool json = false;
  std::vector<std::string> positional;
  CommandLine line("quantfleet fit");
  line.Size({"--vram"}, &vram)
      .Size({"--overhead"}, &overhead)
      .Int({"--ctx"}, &ctx, 1, "a positive number of tokens")
      .Choice({"--kv-type"}, &kv_type, {"f16", "q8_0"})
      .Flag({"--json"}, &json)
      .Positional(&positional, 1);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (!positional.empty()) model_path = positional[0];
  if (model_path.empty() || vram == 0) return Fail("give the GPU's memory (--vram SIZE) and the model");
  absl::StatusOr<GgufModel> model = GgufModel::Open(model_path);
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

  struct Row {
    std::string type;
    uint64_t file = 0;
    uint64_t total = 0;
    bool fits = false;
  };
  std::vector<Row> rows;
  for (const char* name : kTypes) {
    QuantizeOptions options;
    options.file_type = *ParseFileType(name);
    options.allow_requantize = true;
    absl::StatusOr<QuantizePlan> plan = BuildQuantizePlan(*model, options, nullptr, /*dry_run=*/true);
    if (!plan.ok()) continue;  // a type this model cannot take
    Row r{name, plan->file_size(), plan->file_size() + kv_bytes + overhead, false};
    r.fits = r.total <= vram;
    rows.push_back(r);
  }
  if (rows.empty()) return Fail(model_path + ": no file type can be planned for this model");
  const Row* best = nullptr;
  for (const Row& r : rows) {
    if (r.fits && (best == nullptr || r.file > best->file)) best = &r;
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
      j["types"].push_back({{"type", r.type}, {"file_bytes", r.file}, {"total_bytes", r.total}, {"fits", r.fits}});
    }
    j["best"] = best != nullptr ? nlohmann::json(best->type) : nlohmann::json(nullptr);
    j["largest_file_bytes"] = room > 0 ? nlohmann::json(room) : nlohmann::json(nullptr);
    absl::PrintF("%s\n", j.dump(2));
    return 0;
  }
  absl::PrintF("%s: %d layers, %d KV heads of %d+%d; KV cache at %d tokens (%s): %s; overhead %s; GPU %s\n\n",
               model_path, *n_layer, n_head_kv, k_dim, v_dim, ctx, kv_type, HumanBytes(kv_bytes), HumanBytes(overhead),
               HumanBytes(vram));
  absl::PrintF("%-8s %12s %12s  %s\n", "TYPE", "FILE", "TOTAL", "FITS");
  for (const Row& r : rows) {
    absl::PrintF("%-8s %12s %12s  %s\n", r.type, HumanBytes(r.file), HumanBytes(r.total), r.fits ? "yes" : "no");
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
