// Writes a .safetensors file: the 8-byte header length, the JSON header
// (an optional "__metadata__" of strings, then each tensor's dtype, shape
// and data_offsets, in the order given, padded with spaces to a multiple
// of 8 bytes), then the tensors' bytes back to back. Tensors are produced
// one at a time by their callback, so no more than one is held; the file
// is written atomically (nothing at the path on error).
//
// Thread-safety: one call writes one file; callbacks run on the caller's
// thread.
#ifndef QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_WRITER_H_
#define QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/safetensors/safetensors_file.h"

namespace quantfleet {

struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  // Returns exactly elements x dtype bytes.
  std::function<absl::StatusOr<std::vector<uint8_t>>()> produce;
};

absl::Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_WRITER_H_
