#include "core/calibration/gptq_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/int_grid_quantizer.h"
#include "core/convert/checkpoint_conversion.h"
#include "core/io/atomic_file.h"
#include "core/io/mapped_file.h"
#include "core/quant/half.h"
#include "core/quant/quantize_plan.h"
#include "core/safetensors/safetensors_writer.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

using Json = nlohmann::ordered_json;

// One solved matrix, rows in GGUF order.
struct Solved {
  int64_t rows = 0, columns = 0, groups = 0, group_size = 0;
  std::vector<uint8_t> codes;  // rows x columns
  std::vector<float> scales;   // rows x groups
  std::vector<int32_t> zeros;  // rows x groups
};

// `values` (one per index) as a little-endian stream of `bits`-bit fields
// in 32-bit words, `count` fields per line of `lines`: field i of a line
// starts at bit i * bits of it.
std::vector<uint8_t> PackFields(int64_t lines, int64_t count, int bits,
                                const std::function<uint32_t(int64_t, int64_t)>& value) {
  const int64_t words = count * bits / 32;
  std::vector<uint32_t> out(static_cast<size_t>(lines * words), 0);
  for (int64_t l = 0; l < lines; ++l) {
    for (int64_t i = 0; i < count; ++i) {
      const uint64_t v = value(l, i) & ((1u << bits) - 1);
      const int64_t bit = i * bits;
      const int64_t w = bit / 32, shift = bit % 32;
      out[static_cast<size_t>(l * words + w)] |= static_cast<uint32_t>(v << shift);
      if (shift + bits > 32) out[static_cast<size_t>(l * words + w + 1)] |= static_cast<uint32_t>(v >> (32 - shift));
    }
  }
  std::vector<uint8_t> bytes(out.size() * 4);
  std::memcpy(bytes.data(), out.data(), bytes.size());
  return bytes;
}

// The transpose of PackFields for qweight: words [K*b/32, N], fields run
// along K (down a column).
std::vector<uint8_t> PackAlongInput(const Solved& s, const std::vector<int64_t>& gguf_row_of, int bits) {
  const int64_t k = s.columns, n = s.rows;
  // Pack each output column as a line over K, then transpose the words.
  const std::vector<uint8_t> lines = PackFields(
      n, k, bits, [&](int64_t col, int64_t row) { return s.codes[static_cast<size_t>(gguf_row_of[col] * k + row)]; });
  const int64_t words = k * bits / 32;
  std::vector<uint8_t> out(lines.size());
  for (int64_t col = 0; col < n; ++col) {
    for (int64_t w = 0; w < words; ++w) {
      std::memcpy(out.data() + 4 * (w * n + col), lines.data() + 4 * (col * words + w), 4);
    }
  }
  return out;
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  QF_ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(from, size_t{1} << 32));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(to, /*overwrite=*/true));
  QF_RETURN_IF_ERROR(file->PWrite(bytes.data(), bytes.size(), 0));
  return file->Commit();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path, /*overwrite=*/true));
  QF_RETURN_IF_ERROR(file->PWrite(text.data(), text.size(), 0));
  return file->Commit();
}

int LayerOf(const std::string& gguf_name) {
  int layer = -1;
  std::vector<std::string> parts = absl::StrSplit(gguf_name, '.');
  if (parts.size() > 1 && parts[0] == "blk" && absl::SimpleAtoi(parts[1], &layer)) return layer;
  return -1;
}

}  // namespace

absl::StatusOr<GptqCheckpointReport> WriteGptqCheckpoint(const std::string& hf_dir, const std::string& out_dir,
                                                         std::vector<std::vector<TokenId>> chunks,
                                                         const GptqCheckpointOptions& options,
                                                         LayerwiseMethod::Progress progress,
                                                         SolvedMatrixObserver observer) {
  if (options.bits != 2 && options.bits != 3 && options.bits != 4 && options.bits != 8) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--bits %d: GPTQ checkpoints hold 2, 3, 4 or 8 bits", options.bits));
  }
  if (options.group_size != -1 && options.group_size <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--group-size %d: a positive number of columns, or -1 for one group per row", options.group_size));
  }
  QF_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointConversion> conversion,
                      CheckpointConversion::Plan(hf_dir, OutType::kAuto));
  if (!conversion->architecture().expert_projections.empty()) {
    return absl::UnimplementedError(
        absl::StrFormat("%s: %s is a mixture of experts; GPTQ checkpoints are written for dense models so far", hf_dir,
                        conversion->architecture().hf_name));
  }
  QF_ASSIGN_OR_RETURN(GgufModel model, conversion->ToModel());
  QuantizeOptions all_f32;
  all_f32.file_type = *ParseFileType("F32");
  QF_ASSIGN_OR_RETURN(QuantizePlan plan, BuildQuantizePlan(model, all_f32, nullptr, false));
  // Every matrix must split into whole groups and pack into whole words.
  for (const PlannedTensor& t : plan.tensors) {
    if (LayerOf(t.output.name) < 0 || t.output.n_dims() != 2 || absl::EndsWith(t.output.name, "_norm.weight")) continue;
    const int64_t k = t.output.ne[0], n = t.output.ne[1];
    if ((options.group_size > 0 && k % options.group_size != 0) || k % 32 != 0 || n % 32 != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s' (%d inputs, %d outputs): GPTQ checkpoints need both multiples of 32 and the inputs of the "
          "group size %d",
          t.output.name, k, n, options.group_size));
    }
  }

  absl::Mutex mu;
  std::map<std::string, Solved> solved;  // by GGUF name
  LayerwiseOptions layerwise;
  layerwise.gptq = true;
  layerwise.gptq_options.damp = options.damp;
  layerwise.gptq_options.act_order = options.desc_act;
  layerwise.gptq_options.group = options.group_size > 0 ? options.group_size : 0;
  layerwise.gptq_options.feedback = options.error_feedback;
  layerwise.solve = [&](const PlannedTensor& t, int64_t, const float* w, int64_t rows, int64_t columns,
                        std::vector<double> hessian) -> absl::StatusOr<std::vector<uint8_t>> {
    GptqOptions gptq = layerwise.gptq_options;
    if (hessian.empty()) {  // no token reached it: round to nearest
      hessian.assign(static_cast<size_t>(columns * columns), 0.0);
      for (int64_t i = 0; i < columns; ++i) hessian[static_cast<size_t>(i * columns + i)] = 1;
      gptq.feedback = false;
    }
    IntGridQuantizer grid(options.bits, options.symmetric, rows, columns, options.group_size);
    std::vector<double> weights(w, w + rows * columns);
    QF_ASSIGN_OR_RETURN(GptqResult result, SolveGptq(weights, rows, columns, std::move(hessian), grid, gptq));
    std::vector<float> values(result.q.begin(), result.q.end());
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    Solved s{rows, columns, grid.groups(), grid.group_size(), grid.codes(), grid.scales(), grid.zeros()};
    absl::MutexLock lock(&mu);
    if (observer) {
      // Rows in the checkpoint's order, as the file will hold them.
      const ConvertedTensor* c = nullptr;
      for (const ConvertedTensor& ct : conversion->tensors()) {
        if (ct.info.name == t.output.name) c = &ct;
      }
      std::vector<float> hf(values.size());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t to = RotaryRowSource(r, rows, c != nullptr ? c->permute_heads : 0);
        std::copy(values.begin() + r * columns, values.begin() + (r + 1) * columns, hf.begin() + to * columns);
      }
      observer(t.output.name, hf, rows, columns);
    }
    solved[t.output.name] = std::move(s);
    return bytes;
  };
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<LayerwiseMethod> method,
      LayerwiseMethod::Create(model, hf_dir, plan, std::move(chunks), layerwise, options.threads, std::move(progress)));
  // Layer after layer (the file's order sorts layer 10 before layer 2).
  std::vector<const PlannedTensor*> order;
  for (const PlannedTensor& t : plan.tensors) {
    if (method->Handles(t)) order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(), [](const PlannedTensor* a, const PlannedTensor* b) {
    return LayerOf(a->output.name) < LayerOf(b->output.name);
  });
  GptqCheckpointReport report;
  for (const PlannedTensor* t : order) {
    QF_RETURN_IF_ERROR(method->Quantize(*t, 0).status());
    report.layers = std::max(report.layers, LayerOf(t->output.name) + 1);
  }
  report.matrices = static_cast<int>(solved.size());

  // The weights file: quantized modules as their four tensors, the rest
  // copied, in the checkpoint's order.
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("%s: cannot create: %s", out_dir, ec.message()));
  std::vector<SafetensorsEntry> entries;
  const int bits = options.bits;
  for (const SafetensorsTensor* src : conversion->checkpoint().tensors()) {
    const ConvertedTensor* c = nullptr;
    for (const ConvertedTensor& ct : conversion->tensors()) {
      if (ct.sources.size() == 1 && ct.sources[0] == src) c = &ct;
    }
    auto it = c != nullptr ? solved.find(c->info.name) : solved.end();
    if (it == solved.end()) {
      entries.push_back({src->name, src->dtype, src->shape, [src]() -> absl::StatusOr<std::vector<uint8_t>> {
                           return std::vector<uint8_t>(src->data, src->data + src->nbytes);
                         }});
      continue;
    }
    const Solved& s = it->second;
    const std::string module = src->name.substr(0, src->name.size() - std::string(".weight").size());
    // Checkpoint output n is GGUF row gguf_row_of[n].
    auto gguf_row_of = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(s.rows));
    for (int64_t r = 0; r < s.rows; ++r)
      (*gguf_row_of)[static_cast<size_t>(RotaryRowSource(r, s.rows, c->permute_heads))] = r;
    const int64_t k = s.columns, n = s.rows, groups = s.groups;
    entries.push_back({module + ".qweight",
                       SafetensorsDtype::kI32,
                       {k * bits / 32, n},
                       [&s, gguf_row_of, bits]() -> absl::StatusOr<std::vector<uint8_t>> {
                         return PackAlongInput(s, *gguf_row_of, bits);
                       }});
    entries.push_back({module + ".qzeros",
                       SafetensorsDtype::kI32,
                       {groups, n * bits / 32},
                       [&s, gguf_row_of, bits]() -> absl::StatusOr<std::vector<uint8_t>> {
                         return PackFields(s.groups, s.rows, bits, [&](int64_t g, int64_t col) {
                           // Stored minus one (the "gptq" v1 format).
                           const int32_t zero = s.zeros[static_cast<size_t>((*gguf_row_of)[col] * s.groups + g)];
                           return static_cast<uint32_t>(zero - 1);
                         });
                       }});
    entries.push_back({module + ".scales",
                       SafetensorsDtype::kF16,
                       {groups, n},
                       [&s, gguf_row_of]() -> absl::StatusOr<std::vector<uint8_t>> {
                         std::vector<uint8_t> out(static_cast<size_t>(s.groups * s.rows * 2));
                         for (int64_t g = 0; g < s.groups; ++g) {
                           for (int64_t col = 0; col < s.rows; ++col) {
                             const uint16_t h =
                                 FloatToHalf(s.scales[static_cast<size_t>((*gguf_row_of)[col] * s.groups + g)]);
                             std::memcpy(out.data() + 2 * (g * s.rows + col), &h, 2);
                           }
                         }
                         return out;
                       }});
    entries.push_back({module + ".g_idx", SafetensorsDtype::kI32, {k}, [&s]() -> absl::StatusOr<std::vector<uint8_t>> {
                         std::vector<int32_t> idx(static_cast<size_t>(s.columns));
                         for (int64_t i = 0; i < s.columns; ++i)
                           idx[static_cast<size_t>(i)] = static_cast<int32_t>(i / s.group_size);
                         std::vector<uint8_t> out(idx.size() * 4);
                         std::memcpy(out.data(), idx.data(), out.size());
                         return out;
                       }});
  }
  const std::string weights = out_dir + "/model.safetensors";
  QF_RETURN_IF_ERROR(WriteSafetensors(weights, entries));
  report.bytes = std::filesystem::file_size(weights, ec);

  // config.json with its quantization_config, and quantize_config.json.
  QF_ASSIGN_OR_RETURN(std::string config_text, ReadRegularFile(hf_dir + "/config.json", size_t{64} << 20));
  Json config = Json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object())
    return absl::InvalidArgumentError(absl::StrFormat("%s/config.json: not a JSON object", hf_dir));
  Json quantization = {{"bits", bits},
                       {"group_size", options.group_size},
                       {"desc_act", options.desc_act},
                       {"sym", options.symmetric},
                       {"lm_head", false},
                       {"quant_method", "gptq"},
                       {"checkpoint_format", "gptq"},
                       {"pack_dtype", "int32"},
                       {"meta",
                        {{"quantizer", {options.quantizer}},
                         {"damp_percent", options.damp},
                         {"static_groups", options.desc_act},
                         {"true_sequential", false}}}};
  config["quantization_config"] = quantization;
  QF_RETURN_IF_ERROR(WriteText(out_dir + "/config.json", config.dump(2) + "\n"));
  QF_RETURN_IF_ERROR(WriteText(out_dir + "/quantize_config.json", quantization.dump(2) + "\n"));
  for (const char* name :
       {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja", "chat_template.json"}) {
    const std::string from = hf_dir + "/" + name;
    if (std::filesystem::is_regular_file(from, ec)) QF_RETURN_IF_ERROR(CopyFile(from, out_dir + "/" + name));
  }
  return report;
}

}  // namespace quantfleet
