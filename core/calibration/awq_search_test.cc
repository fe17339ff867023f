// AWQ on the trained model in ../shared/models/pystdlib-tiny: folding the
// searched scales leaves the model's function unchanged (its logits before
// quantization), and the search lowers the groups' output error after
// quantization below no scaling on most groups; the clipping search lowers
// it further, and says exactly what it measured.
#include "core/calibration/awq_search.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/calibration/awq_clip.h"
#include "core/calibration/int_grid_quantizer.h"
#include "core/model/forward_pass.h"
#include "tests/tools/trained_llama.h"

namespace quantfleet {
namespace {

TEST(Awq, FoldedScalesKeepTheModelsFunctionAndLowerTheGroupsError) {
  TrainedLlama* t = TrainedLlama::Get();
  ASSERT_TRUE(t->model != nullptr) << "the trained model in ../shared/models/pystdlib-tiny did not load";
  const LlamaModel& llama = t->model->llama;
  ChannelAbsMeans means;
  for (const std::vector<TokenId>& chunk : t->chunks) ASSERT_TRUE(RunForward(llama, chunk, &means, nullptr).ok());

  LlamaModel folded = llama;
  std::vector<LayerFloats> kept(llama.layers().size());  // the folded weights the model points at
  int lowered = 0, groups = 0;
  for (size_t l = 0; l < llama.layers().size(); ++l) {
    const LlamaLayer& layer = llama.layers()[l];
    LayerFloats& f = kept[l];
    f.n_embd = llama.hparams().n_embd;
    f.attn_norm = layer.attn_norm;
    f.ffn_norm = layer.ffn_norm;
    f.wq = LinearFloats(layer.wq), f.wk = LinearFloats(layer.wk), f.wv = LinearFloats(layer.wv),
    f.wo = LinearFloats(layer.wo);
    f.gate = LinearFloats(layer.gate), f.up = LinearFloats(layer.up), f.down = LinearFloats(layer.down);
    auto search = [&](const std::string& entry, std::vector<std::pair<const std::vector<float>*, int64_t>> members,
                      std::vector<int64_t> shared = {}) {
      const std::vector<double> h = t->hessians.Hessian(entry);
      AwqGroup group;
      group.hessian = &h;
      group.x_mean = means.Mean(entry);
      group.columns = static_cast<int64_t>(group.x_mean.size());
      group.shared = std::move(shared);
      for (auto [w, rows] : members) group.members.push_back({w->data(), rows, GgmlType::kQ4_K, nullptr});
      absl::StatusOr<AwqScales> s = SearchAwqScales(group);
      EXPECT_TRUE(s.ok()) << s.status();
      if (!s.ok()) return std::vector<float>();
      EXPECT_LE(s->loss, s->unscaled_loss) << entry;
      ++groups;
      lowered += s->loss < s->unscaled_loss ? 1 : 0;
      return s->ratio < 0 ? std::vector<float>() : s->s;
    };
    const std::string blk = "blk." + std::to_string(l) + ".";
    LayerScales scales;
    scales.qkv = search(blk + "attn_qkv", {{&f.wq, layer.wq.n_out}, {&f.wk, layer.wk.n_out}, {&f.wv, layer.wv.n_out}});
    // Grouped-query attention (this model: 4 heads, 2 kv heads): the heads
    // of one kv head share the scales of the v rows they read.
    f.head_dim = llama.hparams().head_dim;
    f.heads_per_kv = layer.wo.n_in / layer.wv.n_out;
    ASSERT_GT(f.heads_per_kv, 1);
    scales.o =
        search(layer.wo.name, {{&f.wo, layer.wo.n_out}}, SharedByKvHead(layer.wo.n_in, f.head_dim, f.heads_per_kv));
    scales.gate_up = search(blk + "ffn_gate_up", {{&f.gate, layer.gate.n_out}, {&f.up, layer.up.n_out}});
    scales.down = search(layer.down.name, {{&f.down, layer.down.n_out}});
    FoldAwqScales(scales, f);
    const std::vector<std::pair<const Linear*, const std::vector<float>*>> matrices = {
        {&layer.wq, &f.wq},     {&layer.wk, &f.wk}, {&layer.wv, &f.wv},    {&layer.wo, &f.wo},
        {&layer.gate, &f.gate}, {&layer.up, &f.up}, {&layer.down, &f.down}};
    for (auto [linear, values] : matrices) {
      ASSERT_TRUE(folded.ReplaceMatrix(linear->name, GgmlType::kF32, reinterpret_cast<const uint8_t*>(values->data())));
    }
    ASSERT_TRUE(folded.ReplaceNorm(blk + "attn_norm.weight", f.attn_norm));
    ASSERT_TRUE(folded.ReplaceNorm(blk + "ffn_norm.weight", f.ffn_norm));
  }
  std::printf("AWQ lowered the Q4_K output error of %d of %d groups\n", lowered, groups);
  EXPECT_GE(lowered, groups / 2);

  std::vector<float> before, after;
  ASSERT_TRUE(RunForward(llama, t->chunks[0], nullptr, &before).ok());
  ASSERT_TRUE(RunForward(folded, t->chunks[0], nullptr, &after).ok());
  ASSERT_EQ(before.size(), after.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(before[i] - after[i])));
    largest = std::max(largest, static_cast<double>(std::fabs(before[i])));
  }
  std::printf("folded model: largest logit difference %.3g of logits up to %.3g\n", worst, largest);
  EXPECT_LT(worst, 1e-3 * largest) << "folding must not change what the model computes";
}

TEST(Awq, ClippingLowersTheOutputErrorOfTheTrainedMatricesAndOnlyShrinksWeights) {
  TrainedLlama* t = TrainedLlama::Get();
  ASSERT_TRUE(t->model != nullptr) << "the trained model in ../shared/models/pystdlib-tiny did not load";
  const LlamaLayer& layer = t->model->llama.layers()[0];
  constexpr int64_t kGroup = 64;
  const AwqRound round = [](const float* w, int64_t rows, int64_t columns, float* back) {
    std::vector<float> values;
    RoundToAwqGrid(w, rows, columns, kGroup, 4, &values);
    std::copy(values.begin(), values.end(), back);
  };
  for (const auto& [linear, entry] :
       {std::pair{&layer.wo, layer.wo.name}, std::pair{&layer.gate, std::string("blk.0.ffn_gate_up")},
        std::pair{&layer.down, layer.down.name}}) {
    const std::vector<double> h = t->hessians.Hessian(entry);
    const int64_t rows = linear->n_out, columns = linear->n_in;
    ASSERT_EQ(static_cast<int64_t>(h.size()), columns * columns) << entry;
    const std::vector<float> original = LinearFloats(*linear);
    std::vector<float> w = original;
    const AwqClipReport report = ClipAwqGroups(w.data(), rows, columns, kGroup, h, round);

    // The loss it reports is the output error of what the grid makes of
    // the clipped weights, d^T H_g d summed over the row groups.
    std::vector<float> back(w.size());
    round(w.data(), rows, columns, back.data());
    double loss = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t first = 0; first < columns; first += kGroup) {
        for (int64_t j = first; j < first + kGroup; ++j) {
          for (int64_t k = first; k < first + kGroup; ++k) {
            loss += (double{back[r * columns + j]} - original[r * columns + j]) * h[j * columns + k] *
                    (double{back[r * columns + k]} - original[r * columns + k]);
          }
        }
      }
    }
    EXPECT_NEAR(report.loss, loss, 1e-9 * loss) << entry;
    std::printf("%s: clipping %lld of %lld row groups lowers the output error %.4g -> %.4g (%.3fx)\n",
                linear->name.c_str(), static_cast<long long>(report.clipped), static_cast<long long>(report.groups),
                report.unclipped, report.loss, report.loss / report.unclipped);
    EXPECT_EQ(report.groups, rows * columns / kGroup);
    EXPECT_GT(report.clipped, 0) << entry;
    EXPECT_LT(report.loss, 0.97 * report.unclipped) << entry;
    // Clipping only moves weights toward zero, by at most half the group's
    // largest magnitude.
    for (size_t i = 0; i < w.size(); ++i) {
      ASSERT_LE(std::fabs(w[i]), std::fabs(original[i])) << entry << " " << i;
      ASSERT_GE(w[i] * original[i], 0.0f) << entry << " " << i;
    }
  }
}

}  // namespace
}  // namespace quantfleet
