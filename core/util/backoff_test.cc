#include "core/util/backoff.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

TEST(Backoff, DoublesUpToTheCapAndResets) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
  EXPECT_EQ(b.Next(), absl::Milliseconds(200));
  EXPECT_EQ(b.Next(), absl::Milliseconds(400));
  EXPECT_EQ(b.Next(), absl::Milliseconds(800));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  b.Reset();
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
}

}  // namespace
}  // namespace quantfleet
