// A chunk run as pipeline stages (layers [0, a), [a, b), ... each on the
// activations the previous one left) must give the very bits of the chunk
// run whole: the statistics, the perplexity sums, the entries each stage
// owns. This is what lets a pipelined cluster write the local file.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/calibration/chunk_run.h"
#include "core/gguf/gguf_model.h"
#include "core/model/llama_model.h"
#include "tests/tools/generated_llama.h"

namespace quantfleet {
namespace {

class ChunkStages : public ::testing::TestWithParam<int> {  // the parameter: experts (0: dense)
 protected:
  void SetUp() override {
    // One folder per test process: ctest runs these in parallel.
    absl::StatusOr<std::unique_ptr<GeneratedLlama>> llama =
        GeneratedLlama::Create(::testing::TempDir() + "/chunk-stages-" + std::to_string(::getpid()), 4, GetParam());
    ASSERT_TRUE(llama.ok()) << llama.status();
    llama_ = *std::move(llama);
    tokens_ = llama_->Tokens(48, 5);
  }

  std::unique_ptr<GeneratedLlama> llama_;
  std::vector<TokenId> tokens_;
};

TEST_P(ChunkStages, StagesGiveTheBitsOfTheWholeChunk) {
  const ImatrixLayout layout = ImatrixLayoutOf(llama_->file(), /*process_output=*/true);
  absl::StatusOr<ChunkStatistics> whole = RunChunk(llama_->model(), tokens_, true, true);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_GT(whole->predictions, 0);
  absl::StatusOr<std::string> expected = EncodeChunk(*whole, layout);
  ASSERT_TRUE(expected.ok()) << expected.status();
  for (const std::vector<int>& ends : std::vector<std::vector<int>>{{1, 4}, {3, 4}, {1, 3, 4}, {1, 2, 3, 4}}) {
    ChunkStatistics merged(true);
    std::vector<float> hidden;
    size_t entries = 0;
    for (size_t s = 0; s < ends.size(); ++s) {
      const int first = s == 0 ? 0 : ends[s - 1];
      absl::StatusOr<ChunkStatistics> stage =
          RunChunkLayers(llama_->model(), tokens_, first, ends[s], &hidden, true, true);
      ASSERT_TRUE(stage.ok()) << stage.status();
      // A stage yields exactly the entries StageLayout gives it.
      const ImatrixLayout own = StageLayout(layout, first, ends[s], 4);
      EXPECT_TRUE(EncodeChunk(*stage, own).ok()) << "stage " << s;
      EXPECT_EQ(stage->predictions > 0, s + 1 == ends.size()) << "only the last stage predicts";
      entries += own.size();
      merged.Add(*stage);
    }
    EXPECT_EQ(entries, layout.size()) << "the stages' entries must cover the layout once";
    absl::StatusOr<std::string> got = EncodeChunk(merged, layout);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == *expected) << "stages ending at " << ends.size() << " cuts differ from the whole chunk";
  }
}

TEST_P(ChunkStages, BadRangesAndActivationsAreRefused) {
  std::vector<float> hidden(10);
  absl::StatusOr<ChunkStatistics> short_input = RunChunkLayers(llama_->model(), tokens_, 2, 4, &hidden, false, true);
  ASSERT_FALSE(short_input.ok());
  EXPECT_NE(short_input.status().message().find("entering layer 2 hold 10 values"), std::string::npos)
      << short_input.status();
  for (auto [first, end] : std::vector<std::pair<int, int>>{{2, 2}, {3, 1}, {0, 5}, {-1, 2}}) {
    absl::StatusOr<ChunkStatistics> r = RunChunkLayers(llama_->model(), tokens_, first, end, &hidden, false, true);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("not a range of the model's 4"), std::string::npos) << r.status();
  }
}

INSTANTIATE_TEST_SUITE_P(DenseAndMixture, ChunkStages, ::testing::Values(0, 4));

}  // namespace
}  // namespace quantfleet
