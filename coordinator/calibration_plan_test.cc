#include "coordinator/calibration_plan.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

// Eight layers of 100 bytes, an embedding of 30 and a head of 50: 880.
ModelFootprint Eight() {
  ModelFootprint f;
  f.embedding = 30;
  f.layers.assign(8, 100);
  f.head = 50;
  return f;
}

// Checks the stages cut the layers in order and each fits the budget of
// the worker it was sized for (largest first).
void ExpectFits(const ModelFootprint& f, const std::vector<int>& ends, std::vector<uint64_t> budgets) {
  std::sort(budgets.rbegin(), budgets.rend());
  ASSERT_FALSE(ends.empty());
  EXPECT_EQ(ends.back(), static_cast<int>(f.layers.size()));
  for (size_t s = 0; s < ends.size(); ++s) {
    const int first = s == 0 ? 0 : ends[s - 1];
    EXPECT_LT(first, ends[s]);
    EXPECT_LE(f.StageBytes(first, ends[s]), budgets[s]) << "stage " << s;
  }
}

TEST(CalibrationPlan, FootprintCountsEmbeddingLayersAndHead) {
  const ModelFootprint f = Eight();
  EXPECT_EQ(f.Total(), 880u);
  EXPECT_EQ(f.StageBytes(0, 2), 230u);
  EXPECT_EQ(f.StageBytes(2, 5), 300u);
  EXPECT_EQ(f.StageBytes(5, 8), 350u);
}

TEST(CalibrationPlan, OneStageWhenAWorkerHoldsTheModel) {
  EXPECT_EQ(*PlanStages(Eight(), {500, 880}), std::vector<int>{8});
  EXPECT_EQ(*PlanStages(Eight(), {500, 0}), std::vector<int>{8}) << "0 is no limit";
  EXPECT_EQ(*PlanStages(Eight(), {60, 2000, 60}), std::vector<int>{8}) << "the small workers sit it out";
}

TEST(CalibrationPlan, EqualWorkersGetEqualShares) {
  const std::optional<std::vector<int>> two = PlanStages(Eight(), {600, 600});
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(*two, (std::vector<int>{4, 8}));
  const std::optional<std::vector<int>> four = PlanStages(Eight(), {300, 300, 300, 300});
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(*four, (std::vector<int>{2, 4, 6, 8}));
  ExpectFits(Eight(), *four, {300, 300, 300, 300});
}

TEST(CalibrationPlan, SharesFollowMemoryAndNeverOverflowIt) {
  const std::vector<uint64_t> budgets = {300, 700};
  const std::optional<std::vector<int>> ends = PlanStages(Eight(), budgets);
  ASSERT_TRUE(ends.has_value());
  EXPECT_EQ(ends->size(), 2u);
  EXPECT_GE(ends->at(0), 6) << "the larger worker takes the larger share";
  ExpectFits(Eight(), *ends, budgets);
  // Budgets with no byte to spare still get a plan.
  const std::vector<uint64_t> tight = {460, 450};
  ASSERT_TRUE(PlanStages(Eight(), tight).has_value());
  ExpectFits(Eight(), *PlanStages(Eight(), tight), tight);
}

// The embeddings take memory but no work; the head takes both: with room
// to spare, the first stage takes more layers than the last.
TEST(CalibrationPlan, StagesBalanceWorkNotBytes) {
  ModelFootprint f;
  f.embedding = 250;
  f.layers.assign(4, 100);
  f.head = 250;
  const std::optional<std::vector<int>> ends = PlanStages(f, {800, 800});
  ASSERT_TRUE(ends.has_value());
  EXPECT_EQ(*ends, (std::vector<int>{3, 4})) << "work 300 and 350, not 200 and 450";
  ExpectFits(f, *ends, {800, 800});
}

TEST(CalibrationPlan, NoPlanWhenTheWorkersCannotHoldTheModelTogether) {
  EXPECT_FALSE(PlanStages(Eight(), {400, 400}).has_value());
  EXPECT_FALSE(PlanStages(Eight(), {}).has_value());
  // A layer bigger than any worker can never be placed.
  ModelFootprint f = Eight();
  f.layers[3] = 900;
  EXPECT_FALSE(PlanStages(f, {800, 800, 800}).has_value());
}

TEST(CalibrationPlan, AtMostOneStagePerLayer) {
  ModelFootprint f;
  f.layers.assign(2, 100);
  const std::optional<std::vector<int>> ends = PlanStages(f, {150, 150, 150, 150});
  ASSERT_TRUE(ends.has_value());
  EXPECT_EQ(*ends, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace quantfleet
