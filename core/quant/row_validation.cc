#include "core/quant/row_validation.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_format.h"
#include "core/quant/blocks.h"
#include "core/quant/half.h"

namespace quantfleet {
namespace {

absl::Status Bad(const char* what, size_t index) {
  return absl::InvalidArgumentError(absl::StrFormat("found %s value at block %d", what, index));
}

absl::Status CheckHalf(uint16_t h, size_t index) {
  if (HalfIsInf(h)) return Bad("inf", index);
  if (HalfIsNaN(h)) return Bad("nan", index);
  return absl::OkStatus();
}

// Checks the half-precision fields at `offsets` in each block.
absl::Status CheckBlockHalves(const void* data, size_t nbytes, size_t block_bytes,
                              std::initializer_list<size_t> offsets) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < nbytes / block_bytes; ++i) {
    for (size_t off : offsets) {
      uint16_t h;
      std::memcpy(&h, p + i * block_bytes + off, sizeof(h));
      if (absl::Status s = CheckHalf(h, i); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRowData(GgmlType type, const void* data, size_t nbytes) {
  switch (type) {
    case GgmlType::kF32: {
      const auto* p = static_cast<const uint8_t*>(data);
      for (size_t i = 0; i < nbytes / 4; ++i) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        if (std::isinf(f)) return Bad("inf", i);
        if (std::isnan(f)) return Bad("nan", i);
      }
      return absl::OkStatus();
    }
    case GgmlType::kF16:
      return CheckBlockHalves(data, nbytes, 2, {0});
    case GgmlType::kBF16: {
      const auto* p = static_cast<const uint8_t*>(data);
      for (size_t i = 0; i < nbytes / 2; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        const float f = BFloat16ToFloat(h);
        if (std::isinf(f)) return Bad("inf", i);
        if (std::isnan(f)) return Bad("nan", i);
      }
      return absl::OkStatus();
    }
    case GgmlType::kQ4_0:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ4_0), {offsetof(BlockQ4_0, d)});
    case GgmlType::kQ4_1:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ4_1), {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)});
    case GgmlType::kQ5_0:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ5_0), {offsetof(BlockQ5_0, d)});
    case GgmlType::kQ5_1:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ5_1), {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)});
    case GgmlType::kQ8_0:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ8_0), {offsetof(BlockQ8_0, d)});
    case GgmlType::kQ2_K:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ2_K), {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)});
    case GgmlType::kQ3_K:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ3_K), {offsetof(BlockQ3_K, d)});
    case GgmlType::kQ4_K:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ4_K), {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)});
    case GgmlType::kQ5_K:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ5_K), {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)});
    case GgmlType::kQ6_K:
      return CheckBlockHalves(data, nbytes, sizeof(BlockQ6_K), {offsetof(BlockQ6_K, d)});
    case GgmlType::kIQ4_NL:
      return CheckBlockHalves(data, nbytes, sizeof(BlockIQ4_NL), {offsetof(BlockIQ4_NL, d)});
    case GgmlType::kIQ4_XS:
      return CheckBlockHalves(data, nbytes, sizeof(BlockIQ4_XS), {offsetof(BlockIQ4_XS, d)});
    default:
      return absl::OkStatus();
  }
}

}  // namespace quantfleet
