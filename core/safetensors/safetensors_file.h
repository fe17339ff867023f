// One .safetensors file, memory-mapped and validated: an 8-byte
// little-endian header length N, N bytes of JSON (an object of tensor
// entries {"dtype", "shape", "data_offsets"} and an optional
// "__metadata__" object of strings), then the byte buffer the entries'
// offsets index.
//
// The header is untrusted: Open and Parse refuse, naming the file, the
// tensor and what is wrong, a header length past the file or over 100 MB,
// JSON that is not an object of well-formed entries (duplicate names,
// unknown fields, unknown dtypes, negative or overflowing shapes), byte
// ranges that do not match their shape, lie outside the buffer, overlap,
// or leave a hole (the format requires the buffer to be fully indexed).
// Tensor data is never copied.
//
// Thread-safety: immutable after Open; share freely.
#ifndef QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_FILE_H_
#define QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_FILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/mapped_file.h"

namespace quantfleet {

enum class SafetensorsDtype {
  kBool,
  kU8,
  kI8,
  kF8_E4M3,
  kF8_E5M2,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kI64,
  kU64,
  kF64,
};

// The dtype a header names ("BF16"), or nullopt.
std::optional<SafetensorsDtype> ParseSafetensorsDtype(std::string_view name);
std::string_view SafetensorsDtypeName(SafetensorsDtype dtype);
size_t SafetensorsDtypeBytes(SafetensorsDtype dtype);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;  // outermost first, as the header lists it
  uint64_t offset = 0;         // within the file (header included)
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping (null for Parse)

  int64_t elements() const;
};

// The largest header the format allows.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

class SafetensorsFile {
 public:
  static absl::StatusOr<SafetensorsFile> Open(const std::string& path);
  // Validates `bytes` (a whole file's contents, named `path` in errors)
  // without mapping anything; tensors' `data` point into `bytes`.
  static absl::StatusOr<SafetensorsFile> Parse(const std::string& path, std::string_view bytes);

  const std::string& path() const { return path_; }
  // In the order of their bytes in the file.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The mapping the tensors point into (null for Parse).
  const std::shared_ptr<const MappedFile>& mapping() const { return file_; }
  // Tells the kernel a tensor's pages will not be read again soon.
  void Drop(const SafetensorsTensor& tensor) const;

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;  // null for Parse
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_SAFETENSORS_SAFETENSORS_FILE_H_
