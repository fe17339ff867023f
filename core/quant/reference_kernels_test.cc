#include "core/quant/reference_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/quant/half.h"
#include "core/quant/row_validation.h"

namespace quantfleet {
namespace {

const GgmlType kAllTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,   GgmlType::kQ4_1,
                              GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ2_K,   GgmlType::kQ3_K,
                              GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

std::vector<float> RandomRows(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<float> RoundTrip(GgmlType type, const std::vector<float>& x, int64_t n_per_row, const float* imatrix) {
  const int64_t nrows = static_cast<int64_t>(x.size()) / n_per_row;
  std::vector<uint8_t> q(RowSize(type, n_per_row) * nrows);
  EXPECT_EQ(QuantizeRows(type, x.data(), q.data(), nrows, n_per_row, imatrix), q.size());
  EXPECT_TRUE(ValidateRowData(type, q.data(), q.size()).ok());
  std::vector<float> y(x.size());
  DequantizeToFloat(type, q.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

double RelativeRmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  return std::sqrt(num / den);
}

// Bits per weight bound the error: each type must stay within a loose
// ceiling of its known quality on Gaussian data.
double ErrorCeiling(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 0.0;
    case GgmlType::kF16:
      return 1e-3;
    case GgmlType::kBF16:
      return 5e-3;
    case GgmlType::kQ8_0:
      return 0.01;
    case GgmlType::kQ6_K:
      return 0.03;
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ5_K:
      return 0.06;
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ4_K:
    case GgmlType::kIQ4_NL:
    case GgmlType::kIQ4_XS:
      return 0.12;
    case GgmlType::kQ3_K:
      return 0.25;
    case GgmlType::kQ2_K:
      return 0.45;
    default:
      return 0.0;
  }
}

TEST(ReferenceKernels, EveryType_RoundTripsWithinItsErrorBound) {
  const int64_t n_per_row = 512;
  const std::vector<float> x = RandomRows(4 * n_per_row, 1);
  std::vector<float> imatrix(n_per_row);
  for (int64_t i = 0; i < n_per_row; ++i) imatrix[i] = 0.5f + (i % 7);
  for (GgmlType type : kAllTypes) {
    for (const float* w : std::vector<const float*>{nullptr, imatrix.data()}) {
      const double err = RelativeRmse(x, RoundTrip(type, x, n_per_row, w));
      EXPECT_LE(err, ErrorCeiling(type)) << TypeName(type) << (w ? " with imatrix" : "");
      if (type != GgmlType::kF32) {
        EXPECT_GT(err, 0.0) << TypeName(type);
      }
    }
  }
}

TEST(ReferenceKernels, RowsAreIndependent_SameBytesOneRowAtATime) {
  const int64_t n_per_row = 256;
  const int64_t nrows = 5;
  const std::vector<float> x = RandomRows(nrows * n_per_row, 2);
  std::vector<float> imatrix(n_per_row, 1.0f);
  for (GgmlType type : kAllTypes) {
    for (const float* w : std::vector<const float*>{nullptr, imatrix.data()}) {
      const size_t row = RowSize(type, n_per_row);
      std::vector<uint8_t> all(row * nrows), one(row * nrows);
      QuantizeRows(type, x.data(), all.data(), nrows, n_per_row, w);
      for (int64_t r = 0; r < nrows; ++r) {
        QuantizeRows(type, x.data() + r * n_per_row, one.data() + r * row, 1, n_per_row, w);
      }
      EXPECT_EQ(all, one) << TypeName(type);
    }
  }
}

TEST(ReferenceKernels, AllZeroRows_QuantizeToZero) {
  const int64_t n_per_row = 256;
  const std::vector<float> x(2 * n_per_row, 0.0f);
  for (GgmlType type : kAllTypes) {
    const std::vector<float> y = RoundTrip(type, x, n_per_row, nullptr);
    for (float v : y) ASSERT_EQ(v, 0.0f) << TypeName(type);
  }
}

TEST(ReferenceKernels, HugeValues_GiveNonFiniteScalesThatValidationCatches) {
  const int64_t n_per_row = 256;
  std::vector<float> x = RandomRows(n_per_row, 3);
  x[17] = 1e30f;
  std::vector<uint8_t> q(RowSize(GgmlType::kQ8_0, n_per_row));
  QuantizeRows(GgmlType::kQ8_0, x.data(), q.data(), 1, n_per_row, nullptr);
  const absl::Status s = ValidateRowData(GgmlType::kQ8_0, q.data(), q.size());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("inf"), std::string::npos);
}

TEST(ReferenceKernels, Validation_FindsNanInSourceRows) {
  std::vector<float> x(64, 1.0f);
  x[40] = std::nanf("");
  const absl::Status s = ValidateRowData(GgmlType::kF32, x.data(), x.size() * 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("nan value at block 40"), std::string::npos) << s.message();
}

// An independent float -> half conversion in double precision, rounding
// to nearest-even with std::nearbyint.
uint16_t IndependentHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isinf(f) || a >= 65520.0) return sign | 0x7c00;
  if (a == 0.0) return sign;
  int e2;
  std::frexp(a, &e2);
  int e = e2 - 1;  // a in [2^e, 2^(e+1))
  if (e < -14)
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0));  // subnormal (or rounds up to 0x400)
  double q = std::nearbyint(std::ldexp(a, 10 - e));                       // in [1024, 2048]
  if (q == 2048.0) {
    q = 1024.0;
    ++e;
  }
  if (e + 15 >= 31) return sign | 0x7c00;
  return sign | static_cast<uint16_t>(((e + 15) << 10) | (static_cast<int>(q) - 1024));
}

TEST(Half, MatchesAnIndependentConversionForSampledInputs) {
  std::mt19937 gen(4);
  for (int i = 0; i < 4000000; ++i) {
    const uint32_t bits = gen();
    const float f = BitsToFloat(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), IndependentHalf(f)) << std::hex << bits;
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f, 2.9802322e-8f, 6.1e-5f,
                  6.097555e-5f, INFINITY, -INFINITY}) {
    EXPECT_EQ(FloatToHalf(f), IndependentHalf(f)) << f;
  }
}

TEST(Half, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (HalfIsNaN(static_cast<uint16_t>(h))) continue;
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(Half, NanBecomesCanonicalQuietNan) {
  EXPECT_EQ(FloatToHalf(std::nanf("")), 0x7E00);
  EXPECT_EQ(FloatToBFloat16(BitsToFloat(0x7f800001u)) & 0x7fc0, 0x7fc0);
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(BitsToFloat(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(FloatToBFloat16(BitsToFloat(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBFloat16(BitsToFloat(0x3f808001u)), 0x3f81);
}

}  // namespace
}  // namespace quantfleet
