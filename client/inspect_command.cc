#include "client/inspect_command.h"

#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/terminal_progress.h"
#include "core/gguf/gguf_model.h"
#include "nlohmann/json.hpp"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet inspect [--tensors] [--json] MODEL.gguf

Shows what a GGUF file holds: its metadata, how many tensors of each type,
and the size in bits per weight. Validates the whole file on the way: a
malformed file is reported with the offset and the reason.

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

}  // namespace

int RunInspectCommand(const std::vector<std::string>& args) {
  bool json = false, tensors = false;
  std::string path;
  for (const std::string& a : args) {
    if (a == "--json") {
      json = true;
    } else if (a == "--tensors") {
      tensors = true;
    } else if (a == "-h" || a == "--help") {
      absl::PrintF("%s", kUsage);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      absl::FPrintF(stderr, "quantfleet inspect: unknown option '%s'\n", a);
      return 1;
    } else {
      path = a;
    }
  }
  if (path.empty()) {
    absl::FPrintF(stderr, "%s", kUsage);
    return 1;
  }
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
