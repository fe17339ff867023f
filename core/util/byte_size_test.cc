#include "core/util/byte_size.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

TEST(ByteSize, ParsesUnitsAsPowersOf1024) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4096B"), 4096u);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("24GiB"), 24ull << 30);
  EXPECT_EQ(*ParseByteSize("24gb"), 24ull << 30);
  EXPECT_EQ(*ParseByteSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseByteSize(" 2 TiB "), 2ull << 40);
  EXPECT_EQ(*ParseByteSize("64k"), 64ull << 10);
}

TEST(ByteSize, RefusesWhatIsNotASize) {
  for (const char* text : {"", "GiB", "-5M", "12 apples", "1e3", "5PiB", "99999999999T"}) {
    absl::StatusOr<uint64_t> size = ParseByteSize(text);
    ASSERT_FALSE(size.ok()) << text;
    EXPECT_NE(size.status().message().find(std::string("'") + text), std::string::npos) << size.status();
  }
}

}  // namespace
}  // namespace quantfleet
