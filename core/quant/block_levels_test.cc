#include "core/quant/block_levels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/quant/reference_kernels.h"

namespace quantfleet {
namespace {

const GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,   GgmlType::kQ5_1,
                           GgmlType::kQ8_0, GgmlType::kQ2_K, GgmlType::kQ3_K,   GgmlType::kQ4_K,
                           GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

// Blocks the type's own quantizer wrote, from weights with outliers.
std::vector<uint8_t> QuantizedBlocks(GgmlType type, int blocks, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  const int64_t n = BlockSize(type) * blocks;
  std::vector<float> x(static_cast<size_t>(n)), imatrix(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[i] = normal(gen) * (i % 37 == 0 ? 8.0f : 1.0f);
    imatrix[i] = 0.1f + std::abs(normal(gen)) * 50;
  }
  std::vector<uint8_t> out(RowSize(type, n));
  QuantizeRows(type, x.data(), out.data(), 1, n, seed % 2 == 0 ? imatrix.data() : nullptr);
  return out;
}

TEST(BlockLevels, WritingEveryLevelBackGivesTheSameBytes) {
  for (GgmlType type : kTypes) {
    ASSERT_TRUE(HasBlockLevels(type));
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const std::vector<uint8_t> blocks = QuantizedBlocks(type, 4, seed);
      std::vector<uint8_t> rebuilt = blocks;
      const int n = static_cast<int>(BlockSize(type));
      for (size_t b = 0; b < blocks.size(); b += TypeSize(type)) {
        // Scramble the levels, then put each one back.
        for (int e = 0; e < n; ++e) SetLevel(type, rebuilt.data() + b, e, LevelsOf(type).hi - e % 3);
        for (int e = 0; e < n; ++e) SetLevel(type, rebuilt.data() + b, e, GetLevel(type, blocks.data() + b, e));
      }
      EXPECT_EQ(rebuilt, blocks) << TypeName(type) << " seed " << seed;
    }
  }
}

TEST(BlockLevels, TheAffineFormAgreesWithTheDequantizer) {
  for (GgmlType type : kTypes) {
    const std::vector<uint8_t> blocks = QuantizedBlocks(type, 2, 7);
    const int n = static_cast<int>(BlockSize(type));
    std::vector<float> want(blocks.size() / TypeSize(type) * n);
    DequantizeToFloat(type, blocks.data(), want.data(), static_cast<int64_t>(want.size()));
    int distinct_levels = 0;
    for (size_t b = 0, i = 0; b < blocks.size(); b += TypeSize(type)) {
      const BlockAffine a = AffineOf(type, blocks.data() + b);
      for (int e = 0; e < n; ++e, ++i) {
        const int level = GetLevel(type, blocks.data() + b, e);
        distinct_levels += level != GetLevel(type, blocks.data() + b, 0) ? 1 : 0;
        const double got = a.scale[e] * LevelValue(type, level) + a.offset[e];
        EXPECT_NEAR(got, want[i], 1e-6 + 1e-5 * std::abs(want[i])) << TypeName(type) << " element " << i;
      }
    }
    EXPECT_GT(distinct_levels, 0) << TypeName(type) << ": the test data must use several levels";
  }
}

TEST(BlockLevels, LevelsAreClampedToTheTypesRange) {
  std::vector<uint8_t> block = QuantizedBlocks(GgmlType::kQ4_K, 1, 3);
  SetLevel(GgmlType::kQ4_K, block.data(), 5, 99);
  EXPECT_EQ(GetLevel(GgmlType::kQ4_K, block.data(), 5), 15);
  block = QuantizedBlocks(GgmlType::kQ8_0, 1, 3);
  SetLevel(GgmlType::kQ8_0, block.data(), 0, -1000);
  EXPECT_EQ(GetLevel(GgmlType::kQ8_0, block.data(), 0), -128);
  EXPECT_FALSE(HasBlockLevels(GgmlType::kF16));
}

}  // namespace
}  // namespace quantfleet
