#include "core/quant/quantize_rows.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/quant/reference_kernels.h"

namespace quantfleet {
namespace {

// Fast paths must give the reference's bytes on every input. The data mix
// stresses the branches the lanes turn into blends: flat groups, zero
// groups, a single spike, tiny and large magnitudes, all-negative groups.
std::vector<float> Mixed(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 9);
  std::vector<float> v(n);
  for (int64_t g = 0; g < n; g += 16) {
    const int k = kind(gen);
    for (int64_t i = g; i < g + 16 && i < n; ++i) {
      float x = normal(gen);
      switch (k) {
        case 0:
          x = 0.0f;
          break;
        case 1:
          x = 0.5f;
          break;
        case 2:
          x = (i == g + 3) ? 40.0f : 0.0f;
          break;
        case 3:
          x *= 1e-30f;
          break;
        case 4:
          x *= 1000.0f;
          break;
        case 5:
          x = -std::fabs(x);
          break;
        case 6:
          x = std::fabs(x) + 2.0f;
          break;
        case 7:
          x = std::round(x * 4.0f) / 4.0f;
          break;
        default:
          break;
      }
      v[i] = x;
    }
  }
  return v;
}

TEST(QuantizeRowsFast, MatchesReferenceBitForBit) {
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS, GgmlType::kIQ4_NL}) {
    for (int64_t n_per_row : {256, 512, 2816, 288}) {
      if (n_per_row % BlockSize(type) != 0) continue;
      const int64_t nrows = 7;
      for (uint32_t seed = 1; seed <= 6; ++seed) {
        const std::vector<float> x = Mixed(nrows * n_per_row, seed * 31 + static_cast<uint32_t>(n_per_row));
        std::vector<float> imatrix(n_per_row);
        std::mt19937 gen(seed);
        for (float& w : imatrix) w = std::generate_canonical<float, 24>(gen) * (seed % 2 ? 10.0f : 0.001f);
        if (seed == 3) imatrix.assign(n_per_row, 0.0f);  // all-zero weights
        for (const float* im : std::vector<const float*>{nullptr, imatrix.data()}) {
          const size_t bytes = RowSize(type, n_per_row) * nrows;
          std::vector<uint8_t> fast(bytes, 1), reference(bytes, 2);
          ASSERT_EQ(QuantizeRowsFast(type, x.data(), fast.data(), nrows, n_per_row, im), bytes);
          ASSERT_EQ(QuantizeRows(type, x.data(), reference.data(), nrows, n_per_row, im), bytes);
          const auto diff = std::mismatch(fast.begin(), fast.end(), reference.begin());
          ASSERT_TRUE(diff.first == fast.end())
              << TypeName(type) << " n_per_row " << n_per_row << " seed " << seed << (im ? " imatrix" : "")
              << ": first different byte " << (diff.first - fast.begin());
        }
      }
    }
  }
}

}  // namespace
}  // namespace quantfleet
