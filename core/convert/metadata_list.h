// GGUF metadata in the order it is set, where setting a key again replaces
// its value in place (as llama.cpp's converter's writer does), and the
// JSON files of a Hugging Face checkpoint folder read for it.
//
// Thread-safety: a value type; no shared state. ReadJsonFile is a pure
// function of the file.
#ifndef QUANTFLEET_CORE_CONVERT_METADATA_LIST_H_
#define QUANTFLEET_CORE_CONVERT_METADATA_LIST_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_value.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

class MetadataList {
 public:
  void Set(GgufKv kv);
  void Remove(std::string_view key);
  const GgufKv* Find(std::string_view key) const { return FindKv(kvs_, key); }
  const std::vector<GgufKv>& kvs() const { return kvs_; }

 private:
  std::vector<GgufKv> kvs_;
};

// `dir`/`name` parsed as JSON; nullopt when there is no such regular
// file; INVALID_ARGUMENT naming the file when it is not JSON.
absl::StatusOr<std::optional<nlohmann::json>> ReadJsonFile(const std::string& dir, std::string_view name);

// Whether `dir`/`name` is a regular file.
bool HasFile(const std::string& dir, std::string_view name);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_METADATA_LIST_H_
