#include "core/safetensors/safetensors_checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/io/mapped_file.h"
#include "core/safetensors/strict_json.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
// An index lists names and file names only; a few MB even for 405B models.
constexpr size_t kMaxIndexBytes = size_t{64} << 20;

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A shard's name as the index gives it: a plain file name in the folder.
bool PlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

bool IsCheckpointDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && IsRegularFile(path + "/config.json");
}

absl::StatusOr<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& dir) {
  SafetensorsCheckpoint out;
  out.dir_ = dir;
  const std::string index_path = dir + "/" + kIndexFile;
  // Which tensor the index places in which shard (empty without an index).
  std::map<std::string, std::string> placed;
  std::vector<std::string> shard_names;
  if (IsRegularFile(index_path)) {
    QF_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(index_path, kMaxIndexBytes));
    // An object holding the weight_map object of names (and metadata).
    absl::StatusOr<nlohmann::json> parsed = ParseStrictJson(text, /*max_depth=*/3);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrFormat("%s %s", index_path, parsed.status().message()));
    const nlohmann::json& index = *parsed;
    if (!index.is_object()) return absl::InvalidArgumentError(absl::StrFormat("%s: not a JSON object", index_path));
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: no \"weight_map\" object", index_path));
    }
    std::set<std::string> names;
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string() || !PlainFileName(shard.get<std::string>())) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: tensor '%s' is placed in %s, which is not a file name in the folder", index_path,
                            tensor, shard.dump()));
      }
      placed[tensor] = shard.get<std::string>();
      names.insert(shard.get<std::string>());
    }
    if (names.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s: the weight_map is empty", index_path));
    shard_names.assign(names.begin(), names.end());
  } else if (IsRegularFile(dir + "/" + kSingleFile)) {
    shard_names.push_back(kSingleFile);
  } else {
    return absl::NotFoundError(
        absl::StrFormat("%s: no %s and no %s: not a safetensors checkpoint", dir, kSingleFile, kIndexFile));
  }
  for (const std::string& name : shard_names) {
    const std::string path = dir + "/" + name;
    if (!IsRegularFile(path)) {
      return absl::NotFoundError(
          absl::StrFormat("%s: the index lists shard %s, which is missing or not a file", index_path, name));
    }
    QF_ASSIGN_OR_RETURN(SafetensorsFile shard, SafetensorsFile::Open(path));
    out.shards_.push_back(std::move(shard));
  }
  for (size_t s = 0; s < out.shards_.size(); ++s) {
    for (const SafetensorsTensor& t : out.shards_[s].tensors()) {
      auto [it, inserted] = out.by_name_.emplace(t.name, std::make_pair(s, &t));
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: tensor '%s' is in both %s and %s", dir, t.name,
                                                          shard_names[it->second.first], shard_names[s]));
      }
      out.tensors_.push_back(&t);
    }
  }
  for (const auto& [tensor, shard] : placed) {
    auto it = out.by_name_.find(tensor);
    if (it == out.by_name_.end() || shard_names[it->second.first] != shard) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: tensor '%s' is placed in %s, which does not hold it", index_path, tensor, shard));
    }
  }
  return out;
}

const SafetensorsTensor* SafetensorsCheckpoint::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.second;
}

const SafetensorsFile* SafetensorsCheckpoint::ShardOf(const SafetensorsTensor& tensor) const {
  auto it = by_name_.find(tensor.name);
  if (it == by_name_.end() || it->second.second != &tensor) return nullptr;
  return &shards_[it->second.first];
}

}  // namespace quantfleet
