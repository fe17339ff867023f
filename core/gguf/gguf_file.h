// Parsing and strict validation of one GGUF file held in memory (mmap).
//
// GgufFile::Parse reads the header, the metadata and the tensor infos of
// GGUF version 2 or 3, and checks everything a reader can check before
// trusting the file: sizes against the bytes that exist, counts against
// allocation caps, names, shapes, type ids, block multiples, overflow,
// alignment and the exact offset of every tensor (no gaps, no overlaps,
// nothing past the end). Tensor data is never copied: infos hold offsets
// into the caller's buffer. A zero-element tensor is valid.
//
// Thread-safety: a parsed GgufFile is immutable.
#ifndef QUANTFLEET_CORE_GGUF_GGUF_FILE_H_
#define QUANTFLEET_CORE_GGUF_GGUF_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_value.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr size_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxNameBytes = 63;  // ggml names are char[64]
inline constexpr int kGgufMaxDims = 4;
inline constexpr char kGgufAlignmentKey[] = "general.alignment";

struct GgufTensorInfo {
  std::string name;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  size_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  // Dimensions after dropping trailing ones (at least 1), as ggml counts them.
  int n_dims() const;
};

// Byte size of a tensor of `type` with shape `ne` (no overflow checks).
size_t TensorBytes(GgmlType type, const int64_t ne[kGgufMaxDims]);

struct GgufParseLimits {
  uint64_t max_string_bytes = 1ull << 30;
  uint64_t max_array_elements = 1ull << 30;
};

class GgufFile {
 public:
  // Parses `size` bytes at `data`. `file_name` only appears in errors.
  // Errors: INVALID_ARGUMENT naming the file, the byte offset and what is
  // wrong (bad magic, unsupported version, truncated header, bad key, bad
  // type, bad shape, misplaced tensor, ...).
  static absl::StatusOr<GgufFile> Parse(const uint8_t* data, size_t size, std::string_view file_name,
                                        const GgufParseLimits& limits = {});

  uint32_t version() const { return version_; }
  const std::vector<GgufKv>& kv() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  size_t alignment() const { return alignment_; }
  // Absolute file offset of the data section.
  size_t data_offset() const { return data_offset_; }

 private:
  uint32_t version_ = 0;
  std::vector<GgufKv> kv_;
  std::vector<GgufTensorInfo> tensors_;
  size_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_GGUF_GGUF_FILE_H_
