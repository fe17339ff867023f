// Where each weight's integer level sits in a quantized block, for the
// ggml types whose weights are an affine function of a level's value:
// value = scale * LevelValue(level) + offset, with scale and offset fixed
// by the block's header (its scales and mins), the level in [lo, hi], and
// LevelValue the level itself or, for IQ4_NL and IQ4_XS, their table of
// sixteen non-linear values.
//
// Methods that choose levels themselves (GPTQ) keep the header that the
// type's own quantizer wrote and replace the levels; the block stays a
// block of that type, read by any loader of it. SetLevel(GetLevel(e)) for
// every element gives back the same bytes, and AffineOf agrees with the
// type's dequantizer (both tested for every type here).
//
// Thread-safety: pure functions over caller-owned bytes.
#ifndef QUANTFLEET_CORE_QUANT_BLOCK_LEVELS_H_
#define QUANTFLEET_CORE_QUANT_BLOCK_LEVELS_H_

#include <cstdint>
#include <vector>

#include "core/quant/ggml_type.h"

namespace quantfleet {

struct LevelRange {
  int lo = 0;
  int hi = 0;
};

// True for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL and IQ4_XS.
bool HasBlockLevels(GgmlType type);
// False for the IQ4 types, whose level values are a table.
bool HasLinearLevels(GgmlType type);
int LevelValue(GgmlType type, int level);

// Preconditions below: HasBlockLevels(type); `block` is one block of the
// type; 0 <= element < BlockSize(type).
LevelRange LevelsOf(GgmlType type);
int GetLevel(GgmlType type, const uint8_t* block, int element);
// `level` is clamped to LevelsOf(type).
void SetLevel(GgmlType type, uint8_t* block, int element, int level);

// Per element of `block`: the value of level L is
// scale[e] * LevelValue(type, L) + offset[e] (as the dequantizer computes
// it, up to float rounding).
struct BlockAffine {
  std::vector<double> scale;
  std::vector<double> offset;
};
BlockAffine AffineOf(GgmlType type, const uint8_t* block);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_BLOCK_LEVELS_H_
