#include "core/model/activation_rounding.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/quant/half.h"

namespace quantfleet {
namespace {

TEST(ActivationRounding, FloatWeightsSeeTheirInputsUnchanged) {
  std::vector<float> x = {1.0001f, -3.3333f, 1e-9f};
  const std::vector<float> before = x;
  RoundActivationsFor(GgmlType::kF32, x.data(), 1, 3);
  EXPECT_EQ(x, before);
}

TEST(ActivationRounding, HalfWeightsSeeHalfInputs) {
  std::vector<float> x = {1.0001f, -3.3333f};
  RoundActivationsFor(GgmlType::kF16, x.data(), 1, 2);
  EXPECT_EQ(x[0], HalfToFloat(FloatToHalf(1.0001f)));
  EXPECT_EQ(x[1], HalfToFloat(FloatToHalf(-3.3333f)));
  EXPECT_NE(x[0], 1.0001f);
}

// A block whose largest magnitude is 127 has scale 1: values round half
// to even, as the AVX2 code's _MM_ROUND_NEAREST does.
TEST(ActivationRounding, Q8_0BlocksRoundHalfToEven) {
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kIQ4_NL}) {
    std::vector<float> x(64, 0.0f);
    x[0] = 127;
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = 0.49f;
    // The second block: scale 2/127, kept as F16.
    x[32] = 2.0f;
    x[33] = 1.0f;
    RoundActivationsFor(t, x.data(), 2, 32);
    EXPECT_EQ(x[0], 127);
    EXPECT_EQ(x[1], 2);
    EXPECT_EQ(x[2], 4);
    EXPECT_EQ(x[3], -2);
    EXPECT_EQ(x[4], 0);
    const float d = HalfToFloat(FloatToHalf(2.0f / 127.f));
    EXPECT_EQ(x[32], 127 * d) << TypeName(t);
    EXPECT_EQ(x[33], 64 * d) << "63.5 rounds to even";
    EXPECT_NE(x[32], 2.0f) << "the F16 scale is not exact";
  }
}

// Q8_K: the scale comes from the signed extreme and stays F32.
TEST(ActivationRounding, Q8_KBlocksScaleByTheSignedExtreme) {
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS}) {
    std::vector<float> x(512, 0.0f);
    x[0] = -127;
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[256] = 1.0f;  // second block: extreme +1, scale -1/127
    x[257] = -0.5f;
    RoundActivationsFor(t, x.data(), 1, 512);
    EXPECT_EQ(x[0], -127);
    EXPECT_EQ(x[1], 2);
    EXPECT_EQ(x[2], 4);
    const float iscale = -127.f / 1.0f;
    EXPECT_EQ(x[256], -127 * (1 / iscale)) << TypeName(t);
    EXPECT_EQ(x[257], 64 * (1 / iscale)) << "-0.5 * -127 = 63.5 rounds to even";
  }
  std::vector<float> zeros(256, 0.0f);
  RoundActivationsFor(GgmlType::kQ4_K, zeros.data(), 1, 256);
  for (float v : zeros) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace quantfleet
