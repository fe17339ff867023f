// The weights of a Hugging Face checkpoint folder: `model.safetensors`, or
// the shards that `model.safetensors.index.json` lists (its "weight_map"
// names each tensor's shard), each opened as a SafetensorsFile.
//
// Refused, naming the folder, file and tensor: no safetensors file at all;
// an index that is not JSON or names a shard outside the folder (a path,
// "..") or one that is missing; a tensor the index places in a shard that
// does not hold it; a tensor held by two shards. Tensors a shard holds but
// the index does not list are kept (as the loaders keep them).
//
// Thread-safety: immutable after Open; share freely.
#ifndef QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_CHECKPOINT_H_
#define QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_CHECKPOINT_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/safetensors/safetensors_file.h"

namespace quantfleet {

class SafetensorsCheckpoint {
 public:
  static absl::StatusOr<SafetensorsCheckpoint> Open(const std::string& dir);

  // Moves keep the tensors' addresses; copies would not, so there are none.
  SafetensorsCheckpoint(SafetensorsCheckpoint&&) = default;
  SafetensorsCheckpoint& operator=(SafetensorsCheckpoint&&) = default;
  SafetensorsCheckpoint(const SafetensorsCheckpoint&) = delete;
  SafetensorsCheckpoint& operator=(const SafetensorsCheckpoint&) = delete;

  const std::string& dir() const { return dir_; }
  // The shards, in file-name order (model-00001-of-00004 first).
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  // Every tensor: shard by shard, within a shard in byte order.
  const std::vector<const SafetensorsTensor*>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  // The shard holding `tensor`, or null when it is not one of tensors().
  const SafetensorsFile* ShardOf(const SafetensorsTensor& tensor) const;

 private:
  SafetensorsCheckpoint() = default;
  std::string dir_;
  std::vector<SafetensorsFile> shards_;
  std::vector<const SafetensorsTensor*> tensors_;
  std::map<std::string, std::pair<size_t, const SafetensorsTensor*>, std::less<>> by_name_;
};

// Whether `dir` looks like a checkpoint folder (a directory holding
// config.json), so commands can tell it from a GGUF file.
bool IsCheckpointDir(const std::string& path);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_CHECKPOINT_H_
