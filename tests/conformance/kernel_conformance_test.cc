// Kernel conformance: QuantizeRows and DequantizeToFloat against ggml's own
// functions in the pinned prebuilt libggml-base (loaded with dlopen), on
// seeded random data and the boundary shapes: one row, one block, many
// rows, outlier columns, all-zero rows, subnormals and large values.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/quant/reference_kernels.h"
#include "tests/conformance/oracle.h"

namespace quantfleet {
namespace {

using QuantizeChunkFn = size_t (*)(int type, const float* src, void* dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float* imatrix);
using DequantizeRowFn = void (*)(const void* x, float* y, int64_t k);

class Ggml {
 public:
  static Ggml& Get() {
    static Ggml* g = new Ggml;
    return *g;
  }
  bool ok() const { return quantize_ != nullptr; }
  const std::string& error() const { return error_; }
  size_t Quantize(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* im) const {
    return quantize_(static_cast<int>(t), src, dst, 0, nrows, n_per_row, im);
  }
  DequantizeRowFn Dequantizer(GgmlType t) const {
    return reinterpret_cast<DequantizeRowFn>(dlsym(handle_, absl::StrFormat("dequantize_row_%s", TypeName(t)).c_str()));
  }

 private:
  Ggml() {
    const std::string path = OracleDir() + "/lib/libggml-base.so";
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      error_ = absl::StrFormat("cannot load %s: %s", path, dlerror());
      return;
    }
    quantize_ = reinterpret_cast<QuantizeChunkFn>(dlsym(handle_, "ggml_quantize_chunk"));
    if (!quantize_) error_ = "ggml_quantize_chunk not found";
  }
  void* handle_ = nullptr;
  QuantizeChunkFn quantize_ = nullptr;
  std::string error_;
};

enum class Data { kGaussian, kOutlierColumns, kZeroRows, kSubnormal, kLarge, kConstant };

std::vector<float> MakeData(Data kind, int64_t nrows, int64_t n_per_row, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(nrows * n_per_row));
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t c = 0; c < n_per_row; ++c) {
      float x = normal(gen);
      switch (kind) {
        case Data::kGaussian:
          break;
        case Data::kOutlierColumns:
          x *= (c % 37 == 5) ? 25.0f : 1.0f;
          break;
        case Data::kZeroRows:
          x = (r % 2 == 0) ? 0.0f : x;
          break;
        case Data::kSubnormal:
          x *= 1e-39f;
          break;
        case Data::kLarge:
          x *= 2000.0f;
          break;
        case Data::kConstant:
          x = 0.75f;
          break;
      }
      v[static_cast<size_t>(r * n_per_row + c)] = x;
    }
  }
  return v;
}

struct Shape {
  int64_t nrows, n_per_row;
};

const GgmlType kTypes[] = {GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,   GgmlType::kQ4_1,  GgmlType::kQ5_0,
                           GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ2_K,   GgmlType::kQ3_K,  GgmlType::kQ4_K,
                           GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

class KernelConformance : public ::testing::TestWithParam<GgmlType> {};

TEST_P(KernelConformance, QuantizeMatchesGgmlBitForBit) {
  Ggml& ggml = Ggml::Get();
  ASSERT_TRUE(ggml.ok()) << ggml.error();
  const GgmlType type = GetParam();
  const int64_t block = BlockSize(type) == 1 ? 32 : BlockSize(type);
  const std::vector<Shape> shapes = {
      {1, block}, {1, 4 * block}, {3, 256 * ((block + 255) / 256)}, {17, 512}, {64, 768}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    if (s.n_per_row % block != 0) continue;
    for (Data kind :
         {Data::kGaussian, Data::kOutlierColumns, Data::kZeroRows, Data::kSubnormal, Data::kLarge, Data::kConstant}) {
      const std::vector<float> x = MakeData(kind, s.nrows, s.n_per_row, seed++);
      std::vector<float> imatrix(static_cast<size_t>(s.n_per_row));
      std::mt19937 gen(seed);
      for (float& w : imatrix) w = 0.01f + 4.0f * std::generate_canonical<float, 24>(gen);
      for (const float* im : std::vector<const float*>{nullptr, imatrix.data()}) {
        const size_t bytes = RowSize(type, s.n_per_row) * static_cast<size_t>(s.nrows);
        std::vector<uint8_t> ours(bytes, 0xAA), ref(bytes, 0x55);
        ASSERT_EQ(QuantizeRows(type, x.data(), ours.data(), s.nrows, s.n_per_row, im), bytes);
        ASSERT_EQ(ggml.Quantize(type, x.data(), ref.data(), s.nrows, s.n_per_row, im), bytes);
        const auto diff = std::mismatch(ours.begin(), ours.end(), ref.begin());
        ASSERT_TRUE(diff.first == ours.end())
            << TypeName(type) << " shape " << s.nrows << "x" << s.n_per_row << " data " << static_cast<int>(kind)
            << (im ? " with imatrix" : "") << ": first different byte " << (diff.first - ours.begin());
      }
    }
  }
}

TEST_P(KernelConformance, DequantizeMatchesGgmlBitForBit) {
  Ggml& ggml = Ggml::Get();
  ASSERT_TRUE(ggml.ok()) << ggml.error();
  const GgmlType type = GetParam();
  if (!IsQuantized(type)) return;  // f16/bf16 conversion is covered by the half tests
  DequantizeRowFn ref_fn = ggml.Dequantizer(type);
  ASSERT_NE(ref_fn, nullptr) << "no dequantize_row_" << TypeName(type) << " in libggml-base";
  const int64_t n_per_row = 512;
  const int64_t nrows = 8;
  const std::vector<float> x = MakeData(Data::kOutlierColumns, nrows, n_per_row, 99);
  std::vector<uint8_t> q(RowSize(type, n_per_row) * nrows);
  QuantizeRows(type, x.data(), q.data(), nrows, n_per_row, nullptr);
  std::vector<float> ours(x.size()), ref(x.size());
  DequantizeToFloat(type, q.data(), ours.data(), static_cast<int64_t>(x.size()));
  ref_fn(q.data(), ref.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(std::memcmp(ours.data(), ref.data(), ours.size() * sizeof(float)), 0) << TypeName(type);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KernelConformance, ::testing::ValuesIn(kTypes),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

}  // namespace
}  // namespace quantfleet
