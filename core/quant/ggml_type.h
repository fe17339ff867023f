// The tensor element types of the GGUF format, with their block geometry.
//
// Type ids, names, block sizes and block byte sizes are those of ggml, which
// defines the GGUF format; a file written by any GGUF tool uses these ids.
// Thread-safety: everything here is immutable and safe to share.
#ifndef QUANTFLEET_CORE_QUANT_GGML_TYPE_H_
#define QUANTFLEET_CORE_QUANT_GGML_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quantfleet {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
  kQ2_0 = 42,
};

// One past the largest id ggml defines; ids at or above it are invalid.
inline constexpr uint32_t kGgmlTypeCount = 43;

struct GgmlTypeInfo {
  std::string_view name;  // ggml's spelling, e.g. "q4_K"
  int64_t block_size;     // elements per block; 0 for removed ids
  size_t type_size;       // bytes per block
  bool is_quantized;
};

// Returns the geometry of `id`, or nullopt for ids outside [0, count) and for
// ids that ggml has removed (they have no block size).
std::optional<GgmlTypeInfo> LookupGgmlType(uint32_t id);

// Same, for a known enum value (never fails for the enumerators above).
const GgmlTypeInfo& TypeInfo(GgmlType type);

std::string_view TypeName(GgmlType type);
bool IsQuantized(GgmlType type);
int64_t BlockSize(GgmlType type);
size_t TypeSize(GgmlType type);

// Bytes of one row of `n_per_row` elements (must be a multiple of the block).
size_t RowSize(GgmlType type, int64_t n_per_row);

// Parses a type name case-insensitively ("q4_k", "Q8_0", "bf16"), as
// llama-quantize does for --output-tensor-type and --tensor-type.
std::optional<GgmlType> ParseGgmlTypeName(std::string_view name);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The types this project can produce: quantize to and dequantize from.
bool IsSupportedTargetType(GgmlType type);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_GGML_TYPE_H_
