// GPU kernels against the CPU reference, bit for bit, on seeded random data
// and boundary shapes. Skips (with the reason) where no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/gpu/gpu_devices.h"
#include "core/quant/reference_kernels.h"

namespace quantfleet {
// gtest prints parameters in test lists and in ctest's names.
void PrintTo(GgmlType t, std::ostream* os) { *os << TypeName(t); }

namespace {

const GgmlType kGpuTypes[] = {GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,   GgmlType::kQ4_1,  GgmlType::kQ5_0,
                              GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ2_K,   GgmlType::kQ3_K,  GgmlType::kQ4_K,
                              GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

std::vector<float> Data(int kind, int64_t nrows, int64_t n_per_row, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(nrows * n_per_row));
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
    float x = normal(gen);
    switch (kind) {
      case 1:
        x *= (i % n_per_row) % 29 == 3 ? 40.0f : 1.0f;
        break;  // outlier columns
      case 2:
        x = (i / n_per_row) % 2 ? x : 0.0f;
        break;  // all-zero rows
      case 3:
        x *= 1e-40f;
        break;  // subnormals
      case 4:
        x *= 3000.0f;
        break;  // large values
      default:
        break;
    }
    v[i] = x;
  }
  return v;
}

class GpuKernels : public ::testing::TestWithParam<GgmlType> {
 protected:
  void SetUp() override {
    if (ListGpus().empty()) GTEST_SKIP() << "no GPU here: " << NoGpuReason();
  }
};

TEST_P(GpuKernels, MatchTheCpuReferenceBitForBit) {
  const GgmlType type = GetParam();
  ASSERT_TRUE(GpuSupports(type));
  struct Shape {
    int64_t nrows, n_per_row;
  };
  uint32_t seed = 1;
  for (const Shape& s : {Shape{1, 256}, Shape{1, 4096}, Shape{3, 768}, Shape{257, 512}, Shape{1000, 4096}}) {
    if (s.n_per_row % BlockSize(type) != 0) continue;
    for (int kind = 0; kind < 5; ++kind) {
      const std::vector<float> x = Data(kind, s.nrows, s.n_per_row, seed++);
      std::vector<float> imatrix(static_cast<size_t>(s.n_per_row));
      std::mt19937 gen(seed);
      for (float& w : imatrix) w = 0.01f + 4.0f * std::generate_canonical<float, 24>(gen);
      for (const float* im : std::vector<const float*>{nullptr, imatrix.data()}) {
        if (!GpuSupports(type, im != nullptr)) continue;
        const size_t bytes = RowSize(type, s.n_per_row) * static_cast<size_t>(s.nrows);
        std::vector<uint8_t> gpu(bytes, 1), cpu(bytes, 2);
        absl::Status st = QuantizeRowsOnGpu(0, type, x.data(), gpu.data(), s.nrows, s.n_per_row, im);
        ASSERT_TRUE(st.ok()) << st;
        QuantizeRows(type, x.data(), cpu.data(), s.nrows, s.n_per_row, im);
        const auto diff = std::mismatch(gpu.begin(), gpu.end(), cpu.begin());
        ASSERT_TRUE(diff.first == gpu.end())
            << TypeName(type) << (im ? " with imatrix " : " ") << s.nrows << "x" << s.n_per_row << " data " << kind
            << ": first different byte " << (diff.first - gpu.begin());
      }
    }
  }
}

// A tight device-memory budget cuts a task into many slices (two in
// flight on two streams); the bits must not change.
TEST_P(GpuKernels, SlicesWithinATightBudgetGiveTheSameBits) {
  const GgmlType type = GetParam();
  const int64_t nrows = 301, n_per_row = 1024;
  const std::vector<float> x = Data(0, nrows, n_per_row, 77);
  const size_t bytes = RowSize(type, n_per_row) * static_cast<size_t>(nrows);
  std::vector<uint8_t> whole(bytes, 1), sliced(bytes, 2);
  ASSERT_TRUE(QuantizeRowsOnGpu(0, type, x.data(), whole.data(), nrows, n_per_row).ok());
  // Room for about 3 rows per slice.
  const uint64_t budget = 2 * 3 * (n_per_row * sizeof(float) + RowSize(type, n_per_row));
  absl::Status st = QuantizeRowsOnGpu(0, type, x.data(), sliced.data(), nrows, n_per_row, nullptr, budget);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(whole == sliced) << TypeName(type);
  // A budget below one row still works, a row at a time.
  std::fill(sliced.begin(), sliced.end(), 3);
  ASSERT_TRUE(QuantizeRowsOnGpu(0, type, x.data(), sliced.data(), nrows, n_per_row, nullptr, 1).ok());
  EXPECT_TRUE(whole == sliced) << TypeName(type);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuKernels, ::testing::ValuesIn(kGpuTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

TEST(GpuDevices, ListingAlwaysAnswers) {
  const std::vector<GpuDevice> gpus = ListGpus();
  if (gpus.empty()) {
    EXPECT_FALSE(NoGpuReason().empty()) << "an empty list must say why";
  } else {
    EXPECT_GT(gpus[0].memory_bytes, 0);
  }
}

}  // namespace
}  // namespace quantfleet
