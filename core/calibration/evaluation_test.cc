// EvalAccumulator against values worked out by hand: identical models,
// and a two-token vocabulary whose KL divergence has a closed form; the
// positions' wire codec, whose replay must give the same report.
#include "core/calibration/evaluation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace quantfleet {
namespace {

TEST(EvalAccumulator, IdenticalModels_HaveNoDivergence) {
  EvalAccumulator acc;
  const float logits[3][4] = {{1, 2, 3, 4}, {0, -1, 5, 2}, {3, 3, 1, 0}};
  for (int i = 0; i < 3; ++i) acc.Add(logits[i], logits[i], 4, i);
  const EvalReport r = acc.Report(1);
  EXPECT_EQ(r.positions, 3);
  EXPECT_NEAR(r.kld.value, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.ppl.value, r.ppl_base.value);
  EXPECT_DOUBLE_EQ(r.ppl_ratio.value, 1.0);
  EXPECT_DOUBLE_EQ(r.same_top.value, 1.0);
  EXPECT_DOUBLE_EQ(r.delta_p.value, 0.0);
}

TEST(EvalAccumulator, TwoTokens_MatchTheClosedForm) {
  // Base: p = softmax(0, ln 3) = (1/4, 3/4); quantized: q = (1/2, 1/2).
  const float base[2] = {0.0f, std::log(3.0f)};
  const float quant[2] = {0.0f, 0.0f};
  EvalAccumulator acc;
  acc.Add(base, quant, 2, 1);  // the true next token is 1
  const EvalReport r = acc.Report(1);
  const double kld = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR(r.kld.value, kld, 1e-6);
  EXPECT_NEAR(r.kld_max, kld, 1e-6);
  EXPECT_NEAR(r.ppl.value, 2.0, 1e-6);             // exp(-ln(1/2))
  EXPECT_NEAR(r.ppl_base.value, 4.0 / 3.0, 1e-6);  // exp(-ln(3/4))
  EXPECT_NEAR(r.delta_p.value, 0.5 - 0.75, 1e-6);
  // argmax of (0, 0) is the first token; of the base, the second.
  EXPECT_DOUBLE_EQ(r.same_top.value, 0.0);
}

TEST(EvalAccumulator, Percentiles_InterpolateAsLlamaPerplexity) {
  EvalAccumulator acc;
  const float base[2] = {0.0f, 0.0f};
  // KLD of q = softmax(0, x) from uniform grows with |x|: 11 distinct values.
  for (int i = 0; i <= 10; ++i) {
    const float quant[2] = {0.0f, static_cast<float>(i)};
    acc.Add(base, quant, 2, 0);
  }
  const EvalReport r = acc.Report(1);
  auto kld_at = [](double x) {
    const double q1 = 1 / (1 + std::exp(x)), q2 = 1 - q1;
    return 0.5 * std::log(0.5 / q1) + 0.5 * std::log(0.5 / q2);
  };
  EXPECT_NEAR(r.kld_median, kld_at(5), 1e-6);
  EXPECT_NEAR(r.kld_p90, kld_at(9), 1e-6);
  EXPECT_NEAR(r.kld_p95, 0.5 * (kld_at(9) + kld_at(10)), 1e-6);
  EXPECT_NEAR(r.kld_max, kld_at(10), 1e-6);
}

TEST(EvalPositions, RoundTripAndReplayToTheSameReport) {
  EvalAccumulator direct, replayed;
  std::vector<EvalPosition> scored;
  const float base[3][3] = {{1, 0, -1}, {0.5f, 2, 0}, {-3, 1, 1}};
  const float quant[3][3] = {{0.9f, 0.1f, -1}, {0.4f, 2, 0.2f}, {-3, 1.2f, 0.9f}};
  for (int i = 0; i < 3; ++i) {
    direct.Add(base[i], quant[i], 3, i);
    scored.push_back(ScorePosition(base[i], quant[i], 3, i));
  }
  const std::string wire = EncodeEvalPositions(scored);
  ASSERT_EQ(wire.size(), 3 * kEvalPositionBytes);
  absl::StatusOr<std::vector<EvalPosition>> decoded = DecodeEvalPositions(wire, 3);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  for (const EvalPosition& p : *decoded) replayed.Add(p);
  const EvalReport a = direct.Report(1), b = replayed.Report(1);
  EXPECT_EQ(a.kld.value, b.kld.value);
  EXPECT_EQ(a.ppl.value, b.ppl.value);
  EXPECT_EQ(a.kld_max, b.kld_max);
  EXPECT_EQ(a.same_top.value, b.same_top.value);
  EXPECT_GT(a.kld.value, 0);
}

TEST(EvalPositions, RefusesTheWrongSizeAndValuesNoModelGives) {
  const std::string wire = EncodeEvalPositions(std::vector<EvalPosition>{{1.0, 2.0, 0.5, true}});
  EXPECT_FALSE(DecodeEvalPositions(wire, 2).ok());
  EXPECT_FALSE(DecodeEvalPositions(wire.substr(1), 1).ok());
  std::string negative = EncodeEvalPositions(std::vector<EvalPosition>{{-1.0, 2.0, 0.5, true}});
  absl::StatusOr<std::vector<EvalPosition>> bad = DecodeEvalPositions(negative, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("position 0"), std::string::npos) << bad.status();
  std::string flag = wire;
  flag[24] = 7;  // same_top must be 0 or 1
  EXPECT_FALSE(DecodeEvalPositions(flag, 1).ok());
}

}  // namespace
}  // namespace quantfleet
