#include "core/safetensors/safetensors_writer.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "core/io/atomic_file.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

absl::Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint64_t> sizes;
  uint64_t at = 0;
  for (const SafetensorsEntry& e : entries) {
    uint64_t n = SafetensorsDtypeBytes(e.dtype);
    for (int64_t d : e.shape) n *= static_cast<uint64_t>(d);
    header[e.name] = {
        {"dtype", std::string(SafetensorsDtypeName(e.dtype))}, {"shape", e.shape}, {"data_offsets", {at, at + n}}};
    sizes.push_back(n);
    at += n;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[static_cast<size_t>(i)] = static_cast<char>(uint64_t{text.size()} >> (8 * i));
  prefix += text;
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path, /*overwrite=*/true));
  QF_RETURN_IF_ERROR(file->PWrite(prefix.data(), prefix.size(), 0));
  uint64_t offset = prefix.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    QF_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, entries[i].produce());
    if (bytes.size() != sizes[i]) {
      return absl::InternalError(
          absl::StrFormat("%s: tensor '%s' came out %d bytes, not %d", path, entries[i].name, bytes.size(), sizes[i]));
    }
    QF_RETURN_IF_ERROR(file->PWrite(bytes.data(), bytes.size(), offset));
    offset += bytes.size();
  }
  QF_RETURN_IF_ERROR(file->Truncate(offset));
  return file->Commit();
}

}  // namespace quantfleet
