// Each type's level positions, read off its dequantizer in
// reference_kernels.cc. See block_levels.h.
#include "core/quant/block_levels.h"

#include <algorithm>
#include <cstring>

#include "core/quant/blocks.h"
#include "core/quant/reference_kernels.h"

namespace quantfleet {

namespace {

// A run of `bits` bits at bit `shift` of byte `at`.
struct Field {
  int at;
  int shift;
  int bits;
};

int Read(const uint8_t* b, Field f) { return (b[f.at] >> f.shift) & ((1 << f.bits) - 1); }

void Write(uint8_t* b, Field f, int v) {
  const int mask = ((1 << f.bits) - 1) << f.shift;
  b[f.at] = static_cast<uint8_t>((b[f.at] & ~mask) | ((v << f.shift) & mask));
}

// A level is a low field plus, for some types, a high field above it.
struct Split {
  Field low;
  bool has_high = false;
  Field high{0, 0, 0};
};

Split Locate(GgmlType type, int e) {
  Split s;
  switch (type) {
    case GgmlType::kQ4_0:  // d, then 16 bytes: element j low nibble, j + 16 high nibble
      s.low = {2 + e % 16, (e / 16) * 4, 4};
      break;
    case GgmlType::kQ4_1:  // d, m, then as Q4_0
      s.low = {4 + e % 16, (e / 16) * 4, 4};
      break;
    case GgmlType::kQ5_0:  // d, qh[4] (bit e: element e's fifth bit), qs as Q4_0
      s.low = {6 + e % 16, (e / 16) * 4, 4};
      s.has_high = true;
      s.high = {2 + e / 8, e % 8, 1};
      break;
    case GgmlType::kQ5_1:  // d, m, qh[4], qs
      s.low = {8 + e % 16, (e / 16) * 4, 4};
      s.has_high = true;
      s.high = {4 + e / 8, e % 8, 1};
      break;
    case GgmlType::kQ8_0:  // d, then one signed byte per element
      s.low = {2 + e, 0, 8};
      break;
    case GgmlType::kQ2_K: {  // scales[16], qs[64]: 2 bits, four planes per 32 bytes
      const int n = e / 128, r = e % 128;
      s.low = {16 + n * 32 + r % 32, (r / 32) * 2, 2};
      break;
    }
    case GgmlType::kQ3_K: {  // hmask[32], qs[64] as Q2_K; the third bit in hmask
      const int n = e / 128, r = e % 128;
      s.low = {32 + n * 32 + r % 32, (r / 32) * 2, 2};
      s.has_high = true;
      s.high = {r % 32, n * 4 + r / 32, 1};
      break;
    }
    case GgmlType::kQ4_K: {  // d, dmin, scales[12], qs[128]: 64 elements per 32 bytes
      const int g = e / 64, r = e % 64;
      s.low = {16 + g * 32 + r % 32, (r / 32) * 4, 4};
      break;
    }
    case GgmlType::kQ5_K: {  // d, dmin, scales[12], qh[32], qs[128]
      const int g = e / 64, r = e % 64;
      s.low = {48 + g * 32 + r % 32, (r / 32) * 4, 4};
      s.has_high = true;
      s.high = {16 + r % 32, 2 * g + r / 32, 1};
      break;
    }
    case GgmlType::kQ6_K: {  // ql[128], qh[64], scales[16], d
      const int n = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
      s.low = {n * 64 + l + (quarter & 1) * 32, (quarter >> 1) * 4, 4};
      s.has_high = true;
      s.high = {128 + n * 32 + l, quarter * 2, 2};
      break;
    }
    case GgmlType::kIQ4_NL:  // d, then as Q4_0
      s.low = {2 + e % 16, (e / 16) * 4, 4};
      break;
    case GgmlType::kIQ4_XS: {  // d, scales_h, scales_l[4], then 16 bytes per 32 elements
      const int r = e % 32;
      s.low = {8 + (e / 32) * 16 + r % 16, (r / 16) * 4, 4};
      break;
    }
    default:
      break;
  }
  return s;
}

}  // namespace

bool HasBlockLevels(GgmlType type) {
  switch (type) {
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

bool HasLinearLevels(GgmlType type) { return type != GgmlType::kIQ4_NL && type != GgmlType::kIQ4_XS; }

int LevelValue(GgmlType type, int level) { return HasLinearLevels(type) ? level : kIQ4NLValues[level]; }

LevelRange LevelsOf(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0:
      return {-128, 127};
    case GgmlType::kQ2_K:
      return {0, 3};
    case GgmlType::kQ3_K:
      return {0, 7};
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ5_K:
      return {0, 31};
    case GgmlType::kQ6_K:
      return {0, 63};
    default:
      return {0, 15};
  }
}

int GetLevel(GgmlType type, const uint8_t* block, int element) {
  const Split s = Locate(type, element);
  int v = Read(block, s.low);
  if (s.has_high) v |= Read(block, s.high) << s.low.bits;
  if (type == GgmlType::kQ8_0) v = static_cast<int8_t>(static_cast<uint8_t>(v));
  return v;
}

void SetLevel(GgmlType type, uint8_t* block, int element, int level) {
  const LevelRange range = LevelsOf(type);
  level = std::clamp(level, range.lo, range.hi);
  const Split s = Locate(type, element);
  const int bits = level & 0xFF;  // Q8_0: the byte of the signed level
  Write(block, s.low, bits);
  if (s.has_high) Write(block, s.high, bits >> s.low.bits);
}

BlockAffine AffineOf(GgmlType type, const uint8_t* block) {
  const int n = static_cast<int>(BlockSize(type));
  const LevelRange range = LevelsOf(type);
  std::vector<uint8_t> probe(block, block + TypeSize(type));
  std::vector<float> at_lo(n), at_next(n);
  for (int e = 0; e < n; ++e) SetLevel(type, probe.data(), e, range.lo);
  DequantizeToFloat(type, probe.data(), at_lo.data(), n);
  for (int e = 0; e < n; ++e) SetLevel(type, probe.data(), e, range.lo + 1);
  DequantizeToFloat(type, probe.data(), at_next.data(), n);
  BlockAffine a;
  a.scale.resize(n);
  a.offset.resize(n);
  const double lo = LevelValue(type, range.lo), step = LevelValue(type, range.lo + 1) - lo;
  for (int e = 0; e < n; ++e) {
    a.scale[e] = (static_cast<double>(at_next[e]) - at_lo[e]) / step;
    a.offset[e] = at_lo[e] - a.scale[e] * lo;
  }
  return a;
}

}  // namespace quantfleet
