#include "tests/tools/safetensors_writer.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

std::string EncodeSafetensors(const std::vector<TestSafetensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  std::string data;
  for (const TestSafetensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes.size()}}};
    at += t.bytes.size();
    data += t.bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';  // as the reference writer pads
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(uint64_t{text.size()} >> (8 * i));
  return out + text + data;
}

absl::Status WriteTestCheckpoint(const std::string& dir, const std::string& config_json,
                                 const std::vector<TestSafetensor>& tensors, int shards) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out << bytes;
    return out.good() ? absl::OkStatus() : absl::InternalError(absl::StrFormat("cannot write %s/%s", dir, name));
  };
  if (absl::Status s = write("config.json", config_json); !s.ok()) return s;
  if (shards <= 1) return write("model.safetensors", EncodeSafetensors(tensors));
  nlohmann::ordered_json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::ordered_json::object()}};
  for (int k = 0; k < shards; ++k) {
    const std::string name = absl::StrFormat("model-%05d-of-%05d.safetensors", k + 1, shards);
    std::vector<TestSafetensor> part;
    for (size_t i = static_cast<size_t>(k); i < tensors.size(); i += static_cast<size_t>(shards)) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].name] = name;
    }
    if (absl::Status s = write(name, EncodeSafetensors(part)); !s.ok()) return s;
  }
  return write("model.safetensors.index.json", index.dump(2));
}

}  // namespace quantfleet
