#include "client/inspect_command.h"

#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/command_line.h"
#include "client/terminal_progress.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet inspect [--tensors] [--json] MODEL.gguf | HF_DIR | FILE.safetensors

Shows what a GGUF file holds: its metadata, how many tensors of each type,
and the size in bits per weight. Validates the whole file on the way: a
malformed file is reported with the offset and the reason.

A Hugging Face checkpoint folder (config.json and model.safetensors, or the
shards its model.safetensors.index.json lists) or one .safetensors file is
shown the same way: the architecture from config.json, the shards, the
tensors by dtype and the parameter count, every safetensors header checked.

  --tensors   list every tensor with its shape, type and size
  --json      print a JSON document instead
)";

std::string ValueString(const GgufKv& kv) {
  if (kv.is_array) return absl::StrFormat("[%d x %s]", kv.size(), GgufValueTypeName(kv.type));
  if (kv.type == GgufValueType::kString) return "\"" + kv.strings[0] + "\"";
  if (std::optional<int64_t> i = kv.GetIntElement(0)) return absl::StrCat(*i);
  if (kv.type == GgufValueType::kFloat32) {
    float f;
    std::memcpy(&f, kv.raw.data(), 4);
    return absl::StrCat(f);
  }
  if (kv.type == GgufValueType::kBool) return kv.raw[0] ? "true" : "false";
  return absl::StrFormat("<%s>", GgufValueTypeName(kv.type));
}

// The config.json keys worth a line, in this order.
constexpr const char* kConfigKeys[] = {
    "model_type",          "hidden_size",         "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "vocab_size",        "max_position_embeddings",
    "rope_theta",          "tie_word_embeddings", "torch_dtype"};

// A checkpoint folder or one .safetensors file.
int InspectSafetensors(const std::string& path, bool is_dir, bool tensors, bool json) {
  std::vector<const SafetensorsTensor*> all;
  std::vector<std::string> shards;
  // Whichever is opened holds the tensors `all` points into.
  std::optional<SafetensorsCheckpoint> checkpoint;
  std::optional<SafetensorsFile> file;
  nlohmann::json config = nlohmann::json::object();
  if (is_dir) {
    absl::StatusOr<std::string> text = ReadRegularFile(path + "/config.json", size_t{1} << 24);
    if (!text.ok()) {
      absl::FPrintF(stderr, "quantfleet inspect: %s: no readable config.json: not a Hugging Face checkpoint (%s)\n",
                    path, text.status().message());
      return 1;
    }
    config = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      absl::FPrintF(stderr, "quantfleet inspect: %s/config.json: not a JSON object\n", path);
      return 1;
    }
    absl::StatusOr<SafetensorsCheckpoint> opened = SafetensorsCheckpoint::Open(path);
    if (!opened.ok()) {
      absl::FPrintF(stderr, "quantfleet inspect: %s\n", opened.status().message());
      return 1;
    }
    checkpoint.emplace(*std::move(opened));
    all = checkpoint->tensors();
    for (const SafetensorsFile& f : checkpoint->shards()) shards.push_back(f.path());
  } else {
    absl::StatusOr<SafetensorsFile> opened = SafetensorsFile::Open(path);
    if (!opened.ok()) {
      absl::FPrintF(stderr, "quantfleet inspect: %s\n", opened.status().message());
      return 1;
    }
    file.emplace(*std::move(opened));
    for (const SafetensorsTensor& t : file->tensors()) all.push_back(&t);
    shards.push_back(path);
  }
  std::map<std::string, int> by_dtype;
  int64_t elements = 0;
  uint64_t bytes = 0;
  for (const SafetensorsTensor* t : all) {
    ++by_dtype[std::string(SafetensorsDtypeName(t->dtype))];
    elements += t->elements();
    bytes += t->nbytes;
  }
  std::string architecture = "(not given)";
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
      config["architectures"][0].is_string()) {
    architecture = config["architectures"][0].get<std::string>();
  }
  if (json) {
    nlohmann::json j;
    j["path"] = path;
    j["format"] = is_dir ? "huggingface" : "safetensors";
    if (is_dir) j["architecture"] = architecture;
    if (is_dir) j["config"] = config;
    j["shards"] = shards;
    j["tensor_bytes"] = bytes;
    j["elements"] = elements;
    j["tensors_by_dtype"] = by_dtype;
    if (tensors) {
      for (const SafetensorsTensor* t : all) {
        j["tensors"].push_back({{"name", t->name},
                                {"shape", t->shape},
                                {"dtype", std::string(SafetensorsDtypeName(t->dtype))},
                                {"bytes", t->nbytes}});
      }
    }
    absl::PrintF("%s\n", j.dump(2));
    return 0;
  }
  if (is_dir) {
    absl::PrintF("%s: Hugging Face checkpoint, %s, %d shard(s), %d tensors\n", path, architecture, shards.size(),
                 all.size());
    for (const char* key : kConfigKeys) {
      if (config.contains(key)) absl::PrintF("  %-44s %s\n", key, config[key].dump());
    }
  } else {
    absl::PrintF("%s: safetensors, %d tensors\n", path, all.size());
  }
  std::vector<std::string> counts;
  for (const auto& [dtype, n] : by_dtype) counts.push_back(absl::StrFormat("%s: %d", dtype, n));
  absl::PrintF("tensors by dtype: %s\n", absl::StrJoin(counts, ", "));
  if (tensors) {
    for (const SafetensorsTensor* t : all) {
      absl::PrintF("  %-48s %-18s %-7s %10s\n", t->name, absl::StrFormat("[%s]", absl::StrJoin(t->shape, ", ")),
                   SafetensorsDtypeName(t->dtype), HumanBytes(t->nbytes));
    }
  }
  const double n = static_cast<double>(elements);
  const std::string params = n >= 1e9   ? absl::StrFormat("%.2f B", n / 1e9)
                             : n >= 1e6 ? absl::StrFormat("%.1f M", n / 1e6)
                                        : absl::StrFormat("%d", elements);
  absl::PrintF("%s of tensor data, %s parameters\n", HumanBytes(bytes), params);
  return 0;
}

}  // namespace

int RunInspectCommand(const std::vector<std::string>& args) {
  bool json = false, tensors = false;
  std::vector<std::string> paths;
  CommandLine line("quantfleet inspect");
  line.Flag({"--json"}, &json).Flag({"--tensors"}, &tensors).Positional(&paths, 1);
  if (std::optional<int> exit = line.ParseOrExit(args, kUsage)) return *exit;
  if (paths.empty()) {
    absl::FPrintF(stderr, "%s", kUsage);
    return 1;
  }
  const std::string& path = paths[0];
  std::error_code ec;
  const bool is_dir = std::filesystem::is_directory(path, ec);
  if (is_dir || absl::EndsWith(path, ".safetensors")) return InspectSafetensors(path, is_dir, tensors, json);
  absl::StatusOr<GgufModel> model = GgufModel::Open(path);
  if (!model.ok()) {
    absl::FPrintF(stderr, "quantfleet inspect: %s\n", model.status().message());
    return 1;
  }
  std::map<std::string, int> by_type;
  int64_t elements = 0;
  for (const ModelTensor& t : model->tensors()) {
    ++by_type[std::string(TypeName(t.info.type))];
    elements += t.info.n_elements();
  }
  const double bpw = elements ? 8.0 * static_cast<double>(model->total_bytes()) / static_cast<double>(elements) : 0;
  if (json) {
    nlohmann::json j;
    j["path"] = path;
    j["parts"] = model->n_parts();
    j["version"] = model->header().version();
    j["tensor_bytes"] = model->total_bytes();
    j["elements"] = elements;
    j["bits_per_weight"] = bpw;
    j["tensors_by_type"] = by_type;
    for (const GgufKv& kv : model->kv()) j["metadata"][kv.key] = ValueString(kv);
    if (tensors) {
      for (const ModelTensor& t : model->tensors()) {
        j["tensors"].push_back({{"name", t.info.name},
                                {"shape", std::vector<int64_t>(t.info.ne, t.info.ne + t.info.n_dims())},
                                {"type", std::string(TypeName(t.info.type))},
                                {"bytes", t.info.nbytes}});
      }
    }
    absl::PrintF("%s\n", j.dump(2));
    return 0;
  }
  absl::PrintF("%s: GGUF v%d, %d part(s), %d metadata keys, %d tensors\n", path, model->header().version(),
               model->n_parts(), model->kv().size(), model->tensors().size());
  for (const GgufKv& kv : model->kv()) absl::PrintF("  %-44s %s\n", kv.key, ValueString(kv));
  std::vector<std::string> counts;
  for (const auto& [type, n] : by_type) counts.push_back(absl::StrFormat("%s: %d", type, n));
  absl::PrintF("tensors by type: %s\n", absl::StrJoin(counts, ", "));
  if (tensors) {
    for (const ModelTensor& t : model->tensors()) {
      std::vector<int64_t> dims(t.info.ne, t.info.ne + t.info.n_dims());
      absl::PrintF("  %-40s %-18s %-7s %10s\n", t.info.name, absl::StrFormat("[%s]", absl::StrJoin(dims, ", ")),
                   TypeName(t.info.type), HumanBytes(t.info.nbytes));
    }
  }
  absl::PrintF("%s of tensor data, %.2f bits per weight\n", HumanBytes(model->total_bytes()), bpw);
  return 0;
}

}  // namespace quantfleet
