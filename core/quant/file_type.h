// Model file types (llama.cpp's "ftype"): the named mixtures a user asks
// for, such as Q4_K_M, with the numeric ids stored in general.file_type.
//
// Thread-safety: immutable tables.
#ifndef QUANTFLEET_CORE_QUANT_FILE_TYPE_H_
#define QUANTFLEET_CORE_QUANT_FILE_TYPE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/quant/ggml_type.h"

namespace quantfleet {

// Ids as stored in general.file_type (llama.cpp's llama_ftype).
enum class FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ2_XXS = 19,
  kIQ2_XS = 20,
  kQ2_K_S = 21,
  kIQ3_XS = 22,
  kIQ3_XXS = 23,
  kIQ1_S = 24,
  kIQ4_NL = 25,
  kIQ3_S = 26,
  kIQ3_M = 27,
  kIQ2_S = 28,
  kIQ2_M = 29,
  kIQ4_XS = 30,
  kIQ1_M = 31,
  kBF16 = 32,
  kTQ1_0 = 36,
  kTQ2_0 = 37,
  kMXFP4_MOE = 38,
  kNVFP4 = 39,
  kQ1_0 = 40,
  kQ2_0 = 41,
};

// Bit set in general.file_type when the type was guessed from tensors.
inline constexpr uint32_t kFileTypeGuessed = 1024;

struct FileTypeOption {
  std::string_view name;  // as the user types it, e.g. "Q4_K_M"
  FileType type;
  std::string_view description;
  bool supported;  // this project can produce it
  bool copy_only;  // COPY: tensors copied unchanged
};

// Every option in llama-quantize's order (the order matters for parsing by
// number: the first match wins, so COPY never shadows F32).
const std::vector<FileTypeOption>& FileTypeOptions();

// Parses a name (case-insensitive) or a numeric id, as llama-quantize does.
std::optional<FileTypeOption> ParseFileType(std::string_view text);

// The tensor type a file type uses by default.
GgmlType DefaultTensorType(FileType type);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_FILE_TYPE_H_
