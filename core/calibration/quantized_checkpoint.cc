#include "core/calibration/quantized_checkpoint.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/awq_clip.h"
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
using Bytes = absl::StatusOr<std::vector<uint8_t>>;

std::vector<uint8_t> WordBytes(const std::vector<uint32_t>& words) {
  std::vector<uint8_t> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

// `count` fields of `bits` bits per line of `lines`, as a little-endian bit
// stream over the line's 32-bit words: field i starts at bit i * bits.
std::vector<uint32_t> PackStream(int64_t lines, int64_t count, int bits,
                                 const std::function<uint32_t(int64_t, int64_t)>& value) {
  const int64_t words = count * bits / 32;
  std::vector<uint32_t> out(static_cast<size_t>(lines * words), 0);
  for (int64_t l = 0; l < lines; ++l) {
    for (int64_t i = 0; i < count; ++i) {
      const uint64_t v = value(l, i) & ((1u << bits) - 1);
      const int64_t bit = i * bits, w = bit / 32, shift = bit % 32;
      out[static_cast<size_t>(l * words + w)] |= static_cast<uint32_t>(v << shift);
      if (shift + bits > 32) out[static_cast<size_t>(l * words + w + 1)] |= static_cast<uint32_t>(v >> (32 - shift));
    }
  }
  return out;
}

// A matrix's grid, rows (outputs) in the checkpoint's order.
struct Module {
  std::shared_ptr<const IntGrid> grid;
  std::shared_ptr<const std::vector<int64_t>> row;  // checkpoint output n -> grid row
  int32_t Code(int64_t n, int64_t k) const { return grid->codes[static_cast<size_t>((*row)[n] * grid->columns + k)]; }
  float Scale(int64_t n, int64_t g) const { return grid->scales[static_cast<size_t>((*row)[n] * grid->groups + g)]; }
  int32_t Zero(int64_t n, int64_t g) const { return grid->zeros[static_cast<size_t>((*row)[n] * grid->groups + g)]; }
};

std::vector<uint8_t> ScalesF16(const Module& m) {
  const int64_t n = m.grid->rows, groups = m.grid->groups;
  std::vector<uint8_t> out(static_cast<size_t>(groups * n * 2));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t col = 0; col < n; ++col) {
      const uint16_t h = FloatToHalf(m.Scale(col, g));
      std::memcpy(out.data() + 2 * (g * n + col), &h, 2);
    }
  }
  return out;
}

// GPTQ (v1): qweight [K*b/32, N] down the inputs, qzeros [G, N*b/32] minus
// one along the outputs, scales [G, N], g_idx [K].
std::vector<SafetensorsEntry> GptqTensors(const std::string& module, const Module& m, int bits) {
  const int64_t k = m.grid->columns, n = m.grid->rows, groups = m.grid->groups;
  std::vector<SafetensorsEntry> e;
  e.push_back({module + ".qweight", SafetensorsDtype::kI32, {k * bits / 32, n}, [m, bits]() -> Bytes {
                 const int64_t k = m.grid->columns, n = m.grid->rows, words = k * bits / 32;
                 const std::vector<uint32_t> columns =
                     PackStream(n, k, bits, [&](int64_t col, int64_t row) { return m.Code(col, row); });
                 std::vector<uint32_t> out(columns.size());
                 for (int64_t col = 0; col < n; ++col) {
                   for (int64_t w = 0; w < words; ++w) out[w * n + col] = columns[col * words + w];
                 }
                 return WordBytes(out);
               }});
  e.push_back({module + ".qzeros", SafetensorsDtype::kI32, {groups, n * bits / 32}, [m, bits]() -> Bytes {
                 return WordBytes(PackStream(m.grid->groups, m.grid->rows, bits, [&](int64_t g, int64_t col) {
                   return static_cast<uint32_t>(m.Zero(col, g) - 1);
                 }));
               }});
  e.push_back({module + ".scales", SafetensorsDtype::kF16, {groups, n}, [m]() -> Bytes { return ScalesF16(m); }});
  e.push_back({module + ".g_idx", SafetensorsDtype::kI32, {k}, [m]() -> Bytes {
                 std::vector<uint32_t> idx(static_cast<size_t>(m.grid->columns));
                 for (int64_t i = 0; i < m.grid->columns; ++i) idx[i] = static_cast<uint32_t>(i / m.grid->group_size);
                 return WordBytes(idx);
               }});
  return e;
}

// AWQ GEMM: 8 outputs per word in AutoAWQ's order, 4 bits each.
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

std::vector<uint32_t> PackAwq(int64_t lines, int64_t outputs, const std::function<uint32_t(int64_t, int64_t)>& value) {
  std::vector<uint32_t> out(static_cast<size_t>(lines * outputs / 8), 0);
  for (int64_t l = 0; l < lines; ++l) {
    for (int64_t c = 0; c < outputs / 8; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) word |= (value(l, c * 8 + kAwqOrder[i]) & 0xf) << (4 * i);
      out[static_cast<size_t>(l * outputs / 8 + c)] = word;
    }
  }
  return out;
}

std::vector<SafetensorsEntry> AwqTensors(const std::string& module, const Module& m) {
  const int64_t k = m.grid->columns, n = m.grid->rows, groups = m.grid->groups;
  std::vector<SafetensorsEntry> e;
  e.push_back({module + ".qweight", SafetensorsDtype::kI32, {k, n / 8}, [m]() -> Bytes {
                 return WordBytes(PackAwq(m.grid->columns, m.grid->rows,
                                          [&](int64_t row, int64_t col) { return m.Code(col, row); }));
               }});
  e.push_back({module + ".qzeros", SafetensorsDtype::kI32, {groups, n / 8}, [m]() -> Bytes {
                 return WordBytes(PackAwq(m.grid->groups, m.grid->rows, [&](int64_t g, int64_t col) {
                   return static_cast<uint32_t>(m.Zero(col, g));
                 }));
               }});
  e.push_back({module + ".scales", SafetensorsDtype::kF16, {groups, n}, [m]() -> Bytes { return ScalesF16(m); }});
  return e;
}

// Floats as a checkpoint dtype (F32, F16 or BF16).
Bytes Encode(const std::vector<float>& values, SafetensorsDtype dtype) {
  std::vector<uint8_t> out(values.size() * SafetensorsDtypeBytes(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == SafetensorsDtype::kF32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else if (dtype == SafetensorsDtype::kF16 || dtype == SafetensorsDtype::kBF16) {
      const uint16_t h = dtype == SafetensorsDtype::kF16 ? FloatToHalf(values[i]) : FloatToBFloat16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      return absl::UnimplementedError("a folded norm of a type other than F32, F16 or BF16");
    }
  }
  return out;
}

absl::Status WriteBytes(const std::string& path, const std::string& bytes) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path, /*overwrite=*/true));
  QF_RETURN_IF_ERROR(file->PWrite(bytes.data(), bytes.size(), 0));
  return file->Commit();
}

int LayerOf(const std::string& gguf_name) {
  int layer = -1;
  std::vector<std::string> parts = absl::StrSplit(gguf_name, '.');
  if (parts.size() > 1 && parts[0] == "blk" && absl::SimpleAtoi(parts[1], &layer)) return layer;
  return -1;
}

absl::Status CheckOptions(const QuantizedCheckpointOptions& o) {
  const bool awq = o.format == CheckpointFormat::kAwq;
  if (awq ? o.bits != 4 : (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--bits %d: %s", o.bits,
                        awq ? "AWQ checkpoints (GEMM) hold 4 bits" : "GPTQ checkpoints hold 2, 3, 4 or 8 bits"));
  }
  if (o.group_size != -1 && o.group_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--group-size %d: a positive number of columns, or -1 for one group per row", o.group_size));
  }
  if (awq && (!o.symmetric || o.desc_act)) {
    return absl::InvalidArgumentError("AWQ checkpoints have a zero point per group and no activation order");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedCheckpointReport> WriteQuantizedCheckpoint(
    const std::string& hf_dir, const std::string& out_dir, std::vector<std::vector<TokenId>> chunks,
    const QuantizedCheckpointOptions& options, LayerwiseMethod::Progress progress, SolvedMatrixObserver observer) {
  QF_RETURN_IF_ERROR(CheckOptions(options));
  const bool awq = options.format == CheckpointFormat::kAwq;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointConversion> conversion,
                      CheckpointConversion::Plan(hf_dir, OutType::kAuto));
  QF_ASSIGN_OR_RETURN(GgufModel model, conversion->ToModel());
  QuantizeOptions all_f32;
  all_f32.file_type = *ParseFileType("F32");
  QF_ASSIGN_OR_RETURN(QuantizePlan plan, BuildQuantizePlan(model, all_f32, nullptr, false));
  // The checkpoint tensor matrix `e` of a GGUF tensor comes from (one per
  // expert of a merged one), and which grid row its row n is.
  auto source_of = [&](const std::string& gguf_name, int64_t e) -> const ConvertedTensor* {
    for (const ConvertedTensor& ct : conversion->tensors()) {
      if (ct.info.name == gguf_name && e < static_cast<int64_t>(ct.sources.size())) return &ct;
    }
    return nullptr;
  };
  auto rows_of = [](const ConvertedTensor& ct, int64_t rows) {
    auto row = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) (*row)[static_cast<size_t>(RotaryRowSource(r, rows, ct.permute_heads))] = r;
    return row;
  };

  absl::Mutex mu;
  std::map<std::string, Module> solved;  // by checkpoint tensor name
  std::atomic<int64_t> clipped_groups{0};
  LayerwiseOptions layerwise;
  layerwise.awq = awq && options.calibrated;
  layerwise.gptq = !awq;
  layerwise.gptq_options.damp = options.damp;
  layerwise.gptq_options.act_order = options.desc_act;
  layerwise.gptq_options.group = options.group_size > 0 ? options.group_size : 0;
  layerwise.gptq_options.feedback = options.calibrated;
  const int64_t group = options.group_size;
  if (awq) {
    layerwise.awq_round = [group](const float* w, int64_t rows, int64_t columns, float* back) {
      std::vector<float> values;
      RoundToAwqGrid(w, rows, columns, group, 4, &values);
      std::copy(values.begin(), values.end(), back);
    };
  }
  layerwise.solve = [&](const PlannedTensor& t, int64_t matrix, const float* w, int64_t rows, int64_t columns,
                        std::vector<double> hessian) -> Bytes {
    const ConvertedTensor* source = source_of(t.output.name, matrix);
    if (source == nullptr) return absl::InternalError("no checkpoint tensor behind it");
    IntGrid grid;
    std::vector<float> values;
    if (awq) {
      // AutoAWQ clips all but q and k, whose error the output does not show.
      const bool query_or_key =
          absl::StrContains(t.output.name, ".attn_q.") || absl::StrContains(t.output.name, ".attn_k.");
      std::vector<float> clipped;
      if (options.calibrated && options.clip && !hessian.empty() && !query_or_key) {
        clipped.assign(w, w + rows * columns);
        clipped_groups += ClipAwqGroups(clipped.data(), rows, columns, group, hessian, layerwise.awq_round).clipped;
      }
      grid = RoundToAwqGrid(clipped.empty() ? w : clipped.data(), rows, columns, group, 4, &values);
    } else {
      GptqOptions gptq = layerwise.gptq_options;
      if (hessian.empty()) {  // no token reached it: round to nearest
        hessian.assign(static_cast<size_t>(columns * columns), 0.0);
        for (int64_t i = 0; i < columns; ++i) hessian[static_cast<size_t>(i * columns + i)] = 1;
        gptq.feedback = false;
      }
      IntGridQuantizer quantizer(options.bits, options.symmetric, rows, columns, group);
      std::vector<double> weights(w, w + rows * columns);
      QF_ASSIGN_OR_RETURN(GptqResult result, SolveGptq(weights, rows, columns, std::move(hessian), quantizer, gptq));
      values.assign(result.q.begin(), result.q.end());
      grid = quantizer.grid();
    }
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    Module m{std::make_shared<const IntGrid>(std::move(grid)), rows_of(*source, rows)};
    const std::string& name = source->sources[static_cast<size_t>(matrix)]->name;
    absl::MutexLock lock(&mu);
    if (observer) {
      std::vector<float> ordered(values.size());
      for (int64_t n = 0; n < rows; ++n) {
        std::copy(values.begin() + (*m.row)[n] * columns, values.begin() + ((*m.row)[n] + 1) * columns,
                  ordered.begin() + n * columns);
      }
      observer(name, ordered, rows, columns);
    }
    solved[name] = std::move(m);
    return bytes;
  };
  QF_ASSIGN_OR_RETURN(
      std::unique_ptr<LayerwiseMethod> method,
      LayerwiseMethod::Create(model, hf_dir, plan, std::move(chunks), layerwise, options.threads, std::move(progress)));
  // Layer after layer (the file's order sorts layer 10 before layer 2);
  // with AWQ the folded norms come back too.
  std::vector<const PlannedTensor*> order;
  for (const PlannedTensor& t : plan.tensors) {
    if (method->Handles(t)) order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(), [](const PlannedTensor* a, const PlannedTensor* b) {
    return LayerOf(a->output.name) < LayerOf(b->output.name);
  });
  // Every matrix must split into whole groups and pack into whole words.
  for (const PlannedTensor* t : order) {
    const int64_t k = t->output.ne[0], n = t->output.ne[1];
    if (absl::EndsWith(t->output.name, "_norm.weight")) continue;
    if ((options.group_size > 0 && k % options.group_size != 0) || k % 32 != 0 || n % 32 != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor '%s' (%d inputs, %d outputs): quantized checkpoints need both multiples of 32 and the inputs a "
          "multiple of the group size %d",
          t->output.name, k, n, options.group_size));
    }
  }
  QuantizedCheckpointReport report;
  std::map<std::string, std::vector<float>> norms;  // folded, by GGUF name
  for (const PlannedTensor* t : order) {
    for (int64_t e = 1; e < t->output.ne[2]; ++e) QF_RETURN_IF_ERROR(method->Quantize(*t, e).status());
    QF_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, method->Quantize(*t, 0));
    if (absl::EndsWith(t->output.name, "_norm.weight")) {
      std::vector<float>& v = norms[t->output.name];
      v.resize(bytes.size() / sizeof(float));
      std::memcpy(v.data(), bytes.data(), bytes.size());
    }
    report.layers = std::max(report.layers, LayerOf(t->output.name) + 1);
  }
  report.matrices = static_cast<int>(solved.size());
  report.clipped_groups = clipped_groups.load();

  // The weights: quantized modules as the format's tensors, folded norms
  // in their dtype, the rest copied, in the checkpoint's order.
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("%s: cannot create: %s", out_dir, ec.message()));
  std::vector<SafetensorsEntry> entries;
  for (const SafetensorsTensor* src : conversion->checkpoint().tensors()) {
    std::string gguf;
    for (const ConvertedTensor& ct : conversion->tensors()) {
      if (ct.sources.size() == 1 && ct.sources[0] == src) gguf = ct.info.name;
    }
    if (auto it = solved.find(src->name); it != solved.end()) {
      const std::string module = src->name.substr(0, src->name.size() - std::string(".weight").size());
      for (SafetensorsEntry& e : awq ? AwqTensors(module, it->second) : GptqTensors(module, it->second, options.bits)) {
        entries.push_back(std::move(e));
      }
    } else if (auto norm = norms.find(gguf); norm != norms.end()) {
      const std::vector<float>* values = &norm->second;
      entries.push_back({src->name, src->dtype, src->shape, [values, src]() { return Encode(*values, src->dtype); }});
    } else {
      entries.push_back({src->name, src->dtype, src->shape,
                         [src]() -> Bytes { return std::vector<uint8_t>(src->data, src->data + src->nbytes); }});
    }
  }
  const std::string weights = out_dir + "/model.safetensors";
  QF_RETURN_IF_ERROR(WriteSafetensors(weights, entries));
  report.bytes = std::filesystem::file_size(weights, ec);

  QF_ASSIGN_OR_RETURN(std::string config_text, ReadRegularFile(hf_dir + "/config.json", size_t{64} << 20));
  Json config = Json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object())
    return absl::InvalidArgumentError(absl::StrFormat("%s/config.json: not a JSON object", hf_dir));
  Json quantization;
  if (awq) {
    quantization = {{"quant_method", "awq"},
                    {"zero_point", true},
                    {"group_size", options.group_size},
                    {"bits", 4},
                    {"version", "gemm"},
                    {"modules_to_not_convert", nullptr}};
  } else {
    quantization = {{"bits", options.bits},
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
    QF_RETURN_IF_ERROR(WriteBytes(out_dir + "/quantize_config.json", quantization.dump(2) + "\n"));
  }
  config["quantization_config"] = quantization;
  QF_RETURN_IF_ERROR(WriteBytes(out_dir + "/config.json", config.dump(2) + "\n"));
  for (const char* name :
       {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja", "chat_template.json"}) {
    const std::string from = hf_dir + "/" + name;
    if (!std::filesystem::is_regular_file(from, ec)) continue;
    QF_ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(from, size_t{1} << 32));
    QF_RETURN_IF_ERROR(WriteBytes(out_dir + "/" + name, bytes));
  }
  return report;
}

}  // namespace quantfleet
