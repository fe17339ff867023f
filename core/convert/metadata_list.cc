#include "core/convert/metadata_list.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/io/mapped_file.h"

namespace quantfleet {

void MetadataList::Set(GgufKv kv) {
  for (GgufKv& existing : kvs_) {
    if (existing.key == kv.key) {
      existing = std::move(kv);
      return;
    }
  }
  kvs_.push_back(std::move(kv));
}

void MetadataList::Remove(std::string_view key) {
  kvs_.erase(std::remove_if(kvs_.begin(), kvs_.end(), [key](const GgufKv& kv) { return kv.key == key; }), kvs_.end());
}

bool HasFile(const std::string& dir, std::string_view name) {
  struct stat st;
  const std::string path = dir + "/" + std::string(name);
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::optional<nlohmann::json>> ReadJsonFile(const std::string& dir, std::string_view name) {
  if (!HasFile(dir, name)) return std::optional<nlohmann::json>();
  const std::string path = dir + "/" + std::string(name);
  absl::StatusOr<std::string> text = ReadRegularFile(path, size_t{1} << 30);
  if (!text.ok()) return text.status();
  nlohmann::json parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError(absl::StrFormat("%s: not valid JSON", path));
  return std::optional<nlohmann::json>(std::move(parsed));
}

}  // namespace quantfleet
