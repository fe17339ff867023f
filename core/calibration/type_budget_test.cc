// AllocateTypes on hand-made costs: it fits the budget, takes the cheapest
// KLD per byte first, uses leftover bytes, and refuses an impossible budget
// with the smallest size.
#include "core/calibration/type_budget.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

TensorCosts Tensor(const std::string& name, std::vector<std::pair<uint64_t, double>> options) {
  TensorCosts t{name, {}};
  for (auto [bytes, kld] : options) t.options.push_back({GgmlType::kQ4_K, bytes, kld});
  return t;
}

uint64_t Bytes(const std::vector<TensorCosts>& t, const std::vector<size_t>& pick) {
  uint64_t total = 0;
  for (size_t i = 0; i < t.size(); ++i) total += t[i].options[pick[i]].bytes;
  return total;
}

double Kld(const std::vector<TensorCosts>& t, const std::vector<size_t>& pick) {
  double total = 0;
  for (size_t i = 0; i < t.size(); ++i) total += t[i].options[pick[i]].kld;
  return total;
}

TEST(AllocateTypes, SpendsBytesWhereTheyLowerTheKldMost) {
  // "a" gains a lot from its bigger option, "b" almost nothing.
  const std::vector<TensorCosts> t = {Tensor("a", {{100, 1.0}, {200, 0.1}}), Tensor("b", {{100, 0.5}, {200, 0.49}})};
  absl::StatusOr<std::vector<size_t>> pick = AllocateTypes(t, 300);
  ASSERT_TRUE(pick.ok()) << pick.status();
  EXPECT_EQ(*pick, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(Bytes(t, *pick), 300u);
  // Room for both upgrades: both taken.
  EXPECT_EQ(*AllocateTypes(t, 400), (std::vector<size_t>{1, 1}));
}

TEST(AllocateTypes, MatchesAnExhaustiveSearchOnSmallCases) {
  const std::vector<TensorCosts> t = {Tensor("a", {{10, 0.9}, {14, 0.5}, {20, 0.1}, {32, 0.01}}),
                                      Tensor("b", {{10, 0.4}, {14, 0.3}, {20, 0.25}, {32, 0.2}}),
                                      Tensor("c", {{30, 2.0}, {42, 0.8}, {60, 0.3}, {96, 0.05}})};
  for (uint64_t budget = 50; budget <= 160; budget += 3) {
    double best = 1e9;
    for (size_t i = 0; i < 4; ++i) {
      for (size_t j = 0; j < 4; ++j) {
        for (size_t k = 0; k < 4; ++k) {
          const std::vector<size_t> p = {i, j, k};
          if (Bytes(t, p) <= budget) best = std::min(best, Kld(t, p));
        }
      }
    }
    absl::StatusOr<std::vector<size_t>> pick = AllocateTypes(t, budget);
    ASSERT_TRUE(pick.ok()) << budget;
    EXPECT_LE(Bytes(t, *pick), budget);
    // Budgets this small are counted in whole bytes: the optimum itself.
    EXPECT_NEAR(Kld(t, *pick), best, 1e-12) << "budget " << budget;
  }
}

TEST(AllocateTypes, ImpossibleBudget_SaysTheSmallestSize) {
  const std::vector<TensorCosts> t = {Tensor("a", {{100, 1.0}}), Tensor("b", {{120, 1.0}})};
  absl::StatusOr<std::vector<size_t>> pick = AllocateTypes(t, 200);
  ASSERT_FALSE(pick.ok());
  EXPECT_EQ(pick.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(pick.status().message().find("at least 220 bytes"), std::string::npos) << pick.status();
}

TEST(CandidateTypes, KQuantsOnlyForWholeSuperBlocks) {
  EXPECT_EQ(CandidateTypes(4096).front(), GgmlType::kQ2_K);
  EXPECT_EQ(CandidateTypes(4096).back(), GgmlType::kQ8_0);
  EXPECT_EQ(CandidateTypes(4160).front(), GgmlType::kQ4_0);
}

}  // namespace
}  // namespace quantfleet
