#include "core/quant/ggml_type.h"

#include <array>
#include <cctype>

namespace quantfleet {
namespace {

constexpr GgmlTypeInfo kRemoved{"", 0, 0, false};

// Indexed by type id. Sizes are the block structs of ggml; the quantized
// blocks this project implements are static_asserted in blocks.h.
constexpr std::array<GgmlTypeInfo, kGgmlTypeCount> kTypes = {{
    {"f32", 1, 4, false},
    {"f16", 1, 2, false},
    {"q4_0", 32, 18, true},
    {"q4_1", 32, 20, true},
    kRemoved,
    kRemoved,
    {"q5_0", 32, 22, true},
    {"q5_1", 32, 24, true},
    {"q8_0", 32, 34, true},
    {"q8_1", 32, 36, true},
    {"q2_K", 256, 84, true},
    {"q3_K", 256, 110, true},
    {"q4_K", 256, 144, true},
    {"q5_K", 256, 176, true},
    {"q6_K", 256, 210, true},
    {"q8_K", 256, 292, true},
    {"iq2_xxs", 256, 66, true},
    {"iq2_xs", 256, 74, true},
    {"iq3_xxs", 256, 98, true},
    {"iq1_s", 256, 50, true},
    {"iq4_nl", 32, 18, true},
    {"iq3_s", 256, 110, true},
    {"iq2_s", 256, 82, true},
    {"iq4_xs", 256, 136, true},
    {"i8", 1, 1, false},
    {"i16", 1, 2, false},
    {"i32", 1, 4, false},
    {"i64", 1, 8, false},
    {"f64", 1, 8, false},
    {"iq1_m", 256, 56, true},
    {"bf16", 1, 2, false},
    kRemoved,
    kRemoved,
    kRemoved,
    {"tq1_0", 256, 54, true},
    {"tq2_0", 256, 66, true},
    kRemoved,
    kRemoved,
    kRemoved,
    {"mxfp4", 32, 17, true},
    {"nvfp4", 64, 36, true},
    {"q1_0", 128, 18, true},
    {"q2_0", 64, 18, true},
}};

}  // namespace

std::optional<GgmlTypeInfo> LookupGgmlType(uint32_t id) {
  if (id >= kGgmlTypeCount || kTypes[id].block_size == 0) return std::nullopt;
  return kTypes[id];
}

const GgmlTypeInfo& TypeInfo(GgmlType type) { return kTypes[static_cast<uint32_t>(type)]; }

std::string_view TypeName(GgmlType type) { return TypeInfo(type).name; }
bool IsQuantized(GgmlType type) { return TypeInfo(type).is_quantized; }
int64_t BlockSize(GgmlType type) { return TypeInfo(type).block_size; }
size_t TypeSize(GgmlType type) { return TypeInfo(type).type_size; }

size_t RowSize(GgmlType type, int64_t n_per_row) {
  const GgmlTypeInfo& info = TypeInfo(type);
  return info.type_size * static_cast<size_t>(n_per_row / info.block_size);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::optional<GgmlType> ParseGgmlTypeName(std::string_view name) {
  for (uint32_t id = 0; id < kGgmlTypeCount; ++id) {
    if (kTypes[id].block_size != 0 && EqualsIgnoreCase(kTypes[id].name, name)) {
      return static_cast<GgmlType>(id);
    }
  }
  return std::nullopt;
}

bool IsSupportedTargetType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_NL:
    case GgmlType::kIQ4_XS:
      return true;
    default:
      return false;
  }
}

}  // namespace quantfleet
