#include "core/util/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace quantfleet {
namespace {

TEST(Crc32c, KnownValues) {
  // The standard check value of CRC-32C over "123456789".
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720, 32 zero bytes
}

TEST(Crc32c, ThreeStreamPathAgreesWithTheTableOnEveryLengthAroundItsBlocks) {
  // Lengths around multiples of the 12 KiB three-stream block, at odd
  // alignments, with and without a running CRC.
  std::mt19937 gen(11);
  std::string data(3 * 12288 + 64, '\0');
  for (char& c : data) c = static_cast<char>(gen());
  for (size_t len : {12287u, 12288u, 12289u, 24575u, 24576u, 24583u, 36864u + 63u}) {
    for (size_t offset : {0u, 1u, 7u}) {
      if (offset + len > data.size()) continue;
      const char* p = data.data() + offset;
      EXPECT_EQ(Crc32cExtend(0x12345678u, p, len), Crc32cExtendPortable(0x12345678u, p, len)) << len << "+" << offset;
      EXPECT_EQ(Crc32c(p, len), Crc32cExtendPortable(0, p, len)) << len << "+" << offset;
    }
  }
}

TEST(Crc32c, HardwareAndTableAgreeAndExtendingEqualsWhole) {
  std::mt19937 gen(5);
  std::string data(10007, '\0');
  for (char& c : data) c = static_cast<char>(gen());
  const uint32_t whole = Crc32c(data.data(), data.size());
  EXPECT_EQ(whole, Crc32cExtendPortable(0, data.data(), data.size()));
  uint32_t parts = 0;
  for (size_t at = 0; at < data.size(); at += 777) {
    parts = Crc32cExtend(parts, data.data() + at, std::min<size_t>(777, data.size() - at));
  }
  EXPECT_EQ(parts, whole);
}

}  // namespace
}  // namespace quantfleet
