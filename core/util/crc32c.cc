#include "core/util/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <cstring>

namespace quantfleet {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

// One instruction per 8 bytes has a latency of three cycles but a
// throughput of one, so three independent streams over three consecutive
// segments of kSegment bytes run about three times as fast; their registers
// are then combined with "shift by kSegment zero bytes", a linear map on 32
// bits kept as four byte tables.
constexpr size_t kSegment = 4096;

struct ShiftTables {
  uint32_t by_byte[4][256];
};

__attribute__((target("sse4.2"))) uint32_t ShiftSlow(uint32_t c, size_t zero_bytes) {
  uint64_t r = c;
  for (size_t i = 0; i < zero_bytes / 8; ++i) r = _mm_crc32_u64(r, 0);
  return static_cast<uint32_t>(r);
}

__attribute__((target("sse4.2"))) ShiftTables MakeShiftTables() {
  ShiftTables t;
  for (int j = 0; j < 4; ++j) {
    for (uint32_t b = 0; b < 256; ++b) t.by_byte[j][b] = ShiftSlow(b << (8 * j), kSegment);
  }
  return t;
}

uint32_t Shift(const ShiftTables& t, uint32_t c) {
  return t.by_byte[0][c & 0xFF] ^ t.by_byte[1][(c >> 8) & 0xFF] ^ t.by_byte[2][(c >> 16) & 0xFF] ^
         t.by_byte[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const uint8_t* p, size_t n) {
  static const ShiftTables* shift = new ShiftTables(MakeShiftTables());
  uint64_t c = ~crc;
  while (n >= 3 * kSegment) {
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < kSegment; i += 8) {
      uint64_t va, vb, vd;
      std::memcpy(&va, p + i, 8);
      std::memcpy(&vb, p + kSegment + i, 8);
      std::memcpy(&vd, p + 2 * kSegment + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vd);
    }
    // crc(c, A B D) = shift2(crc(c, A)) ^ shift(crc(0, B)) ^ crc(0, D)
    const uint32_t ab = Shift(*shift, static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b);
    c = Shift(*shift, ab) ^ static_cast<uint32_t>(d);
    p += 3 * kSegment;
    n -= 3 * kSegment;
  }
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

}  // namespace

uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < size; ++i) c = kTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
  static const bool have_sse42 = __builtin_cpu_supports("sse4.2");
  if (have_sse42) return ExtendHardware(crc, static_cast<const uint8_t*>(data), size);
  return Crc32cExtendPortable(crc, data, size);
}

}  // namespace quantfleet
