// The input Hessians of GPTQ against the importance matrix the same forward
// pass gives: diag(H) = 2 * sums / counts for every weight (dense and per
// expert), shared entries for matrices that read the same input, symmetric
// sums, and merging in chunk order.
#include "core/calibration/hessian_collector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "core/calibration/imatrix_collector.h"
#include "core/gguf/gguf_model.h"
#include "core/model/llama_model.h"
#include "core/model/tee_sink.h"
#include "tests/tools/generated_llama.h"

namespace quantfleet {
namespace {

class HessianTest : public ::testing::TestWithParam<int> {  // experts (0: dense)
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<GeneratedLlama>> llama = GeneratedLlama::Create(
        ::testing::TempDir() + "/hessian-" + std::to_string(::getpid()) + "-" + std::to_string(GetParam()), 2,
        GetParam());
    ASSERT_TRUE(llama.ok()) << llama.status();
    llama_ = *std::move(llama);
  }
  std::vector<TokenId> Chunk(int seed) const { return llama_->Tokens(40, seed); }

  std::unique_ptr<GeneratedLlama> llama_;
};

TEST_P(HessianTest, DiagonalIsTwiceTheImportanceMatrixForEveryWeight) {
  ImatrixCollector imatrix(/*process_output=*/true);
  HessianCollector hessians(/*process_output=*/true);
  TeeSink both(&imatrix, &hessians);
  ASSERT_TRUE(RunForward(llama_->model(), Chunk(5), &both, nullptr).ok());
  ASSERT_FALSE(imatrix.entries().empty());
  int checked = 0;
  for (const auto& [name, entry] : imatrix.entries()) {
    std::string shared_with;
    std::string key = HessianCollector::EntryOf(name, &shared_with);
    if (key.empty()) key = shared_with;  // k, v, up: the entry their group's first member fills
    ASSERT_TRUE(hessians.entries().count(key)) << name << " -> " << key;
    const HessianCollector::Entry& h = hessians.entries().at(key);
    const int64_t columns = static_cast<int64_t>(entry.sums.size() / entry.counts.size());
    ASSERT_EQ(h.columns, columns) << name;
    ASSERT_EQ(h.counts, entry.counts) << name;
    for (size_t m = 0; m < entry.counts.size(); ++m) {
      const std::vector<double> hm = hessians.Hessian(key, static_cast<int>(m));
      if (entry.counts[m] == 0) {
        EXPECT_TRUE(hm.empty()) << name << " expert " << m << " saw no token";
        continue;
      }
      ASSERT_EQ(hm.size(), static_cast<size_t>(columns * columns));
      for (int64_t j = 0; j < columns; ++j) {
        const double want = 2.0 * entry.sums[m * columns + j] / static_cast<double>(entry.counts[m]);
        const double got = hm[static_cast<size_t>(j * columns + j)];
        EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::fabs(want))) << name << " matrix " << m << " column " << j;
        for (int64_t k = 0; k < j; ++k) {
          ASSERT_EQ(hm[static_cast<size_t>(j * columns + k)], hm[static_cast<size_t>(k * columns + j)]);
        }
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 4);
  // q, k and v share one entry, gate and up another.
  EXPECT_TRUE(hessians.entries().count("blk.0.attn_qkv"));
  EXPECT_FALSE(hessians.entries().count("blk.0.attn_k.weight"));
  EXPECT_TRUE(hessians.entries().count(GetParam() > 0 ? "blk.1.ffn_gate_up_exps" : "blk.1.ffn_gate_up"));
}

TEST_P(HessianTest, ChunksMergedInOrderEqualTheSumOfTheirParts) {
  HessianCollector a(false), b(false), total(false);
  ASSERT_TRUE(RunForward(llama_->model(), Chunk(5), &a, nullptr).ok());
  ASSERT_TRUE(RunForward(llama_->model(), Chunk(11), &b, nullptr).ok());
  total.Merge(a);
  total.Merge(b);
  for (const auto& [key, e] : total.entries()) {
    const HessianCollector::Entry& ea = a.entries().at(key);
    const HessianCollector::Entry& eb = b.entries().at(key);
    for (size_t m = 0; m < e.counts.size(); ++m) EXPECT_EQ(e.counts[m], ea.counts[m] + eb.counts[m]) << key;
    for (size_t i = 0; i < e.sums.size(); i += 97) EXPECT_EQ(e.sums[i], ea.sums[i] + eb.sums[i]) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, HessianTest, ::testing::Values(0, 4), [](const ::testing::TestParamInfo<int>& info) {
  return info.param == 0 ? std::string("Dense") : "Experts" + std::to_string(info.param);
});

}  // namespace
}  // namespace quantfleet
