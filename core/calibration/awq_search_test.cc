// AWQ on the trained model in ../shared/models/pystdlib-tiny: folding the
// searched scales leaves the model's function unchanged (its logits before
// quantization), and the search lowers the groups' output error after
// quantization below no scaling on most groups.
#include "core/calibration/awq_search.h"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace quantfleet
