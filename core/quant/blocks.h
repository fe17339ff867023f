// Block layouts of the quantized GGUF types this project produces.
//
// One definition for host and device code: plain structs of fixed-width
// integers (halves are stored as their IEEE binary16 bits), byte-compatible
// with ggml's blocks, sizes static_asserted. Usable from C++ and CUDA.
#ifndef QUANTFLEET_CORE_QUANT_BLOCKS_H_
#define QUANTFLEET_CORE_QUANT_BLOCKS_H_

#include <cstdint>

namespace quantfleet {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK4_NL = 32;
inline constexpr int kQK_K = 256;       // super-block of the K-quants
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales of Q4_K/Q5_K

using half_bits = uint16_t;

struct BlockQ4_0 {
  half_bits d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  half_bits d;
  half_bits m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  half_bits d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  half_bits d;
  half_bits m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  half_bits d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // 4-bit scale | 4-bit min per 16 weights
  uint8_t qs[kQK_K / 4];
  half_bits d;
  half_bits dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];  // sixteen 6-bit scales
  half_bits d;
};
static_assert(sizeof(BlockQ3_K) == 110);

struct BlockQ4_K {
  half_bits d;
  half_bits dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  half_bits d;
  half_bits dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  half_bits d;
};
static_assert(sizeof(BlockQ6_K) == 210);

struct BlockIQ4_NL {
  half_bits d;
  uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

struct BlockIQ4_XS {
  half_bits d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

// The sixteen non-linear levels shared by IQ4_NL and IQ4_XS.
inline constexpr int8_t kIQ4NLValues[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_QUANT_BLOCKS_H_
