#include "core/quant/type_policy.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

ModelFacts Llama(uint32_t layers, uint32_t heads = 8, uint32_t heads_kv = 8) {
  ModelFacts f;
  f.arch = "llama";
  f.n_layer = layers;
  f.n_head = heads;
  f.n_head_kv = heads_kv;
  return f;
}

std::vector<PolicyTensor> LlamaTensors(int layers, int64_t ne0, bool tied) {
  std::vector<PolicyTensor> t;
  t.push_back({"output_norm.weight", 1, ne0, 1, GgmlType::kF32});
  if (!tied) t.push_back({"output.weight", 2, ne0, 1, GgmlType::kF16});
  t.push_back({"token_embd.weight", 2, ne0, 1, GgmlType::kF16});
  for (int l = 0; l < layers; ++l) {
    for (const char* n :
         {"attn_k", "attn_norm", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_norm", "ffn_up"}) {
      const bool norm = std::string(n).find("norm") != std::string::npos;
      t.push_back(
          {absl::StrFormat("blk.%d.%s.weight", l, n), norm ? 1 : 2, ne0, 1, norm ? GgmlType::kF32 : GgmlType::kF16});
    }
  }
  std::sort(t.begin(), t.end(),
            [](const PolicyTensor& a, const PolicyTensor& b) { return LlamaTensorOrderLess(a.name, b.name); });
  return t;
}

std::map<std::string, GgmlType> Decide(const ModelFacts& facts, const TypePolicyOptions& options,
                                       const std::vector<PolicyTensor>& tensors) {
  absl::StatusOr<std::vector<TensorDecision>> d = TypePolicy(facts, options).Decide(tensors);
  EXPECT_TRUE(d.ok()) << d.status();
  std::map<std::string, GgmlType> out;
  for (size_t i = 0; i < tensors.size(); ++i) out[tensors[i].name] = (*d)[i].type;
  return out;
}

TEST(TypePolicy, Q4KM_GivesMoreBitsToFirstLastAndEveryThirdFfnDown) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ4_K_M;
  auto types = Decide(Llama(8), o, LlamaTensors(8, 256, false));
  // use_more_bits(i, 8): i < 1, i >= 7, or (i - 1) % 3 == 2.
  for (int l = 0; l < 8; ++l) {
    const bool more = l < 1 || l >= 7 || (l - 1) % 3 == 2;
    EXPECT_EQ(types[absl::StrFormat("blk.%d.ffn_down.weight", l)], more ? GgmlType::kQ6_K : GgmlType::kQ4_K) << l;
    EXPECT_EQ(types[absl::StrFormat("blk.%d.ffn_up.weight", l)], GgmlType::kQ4_K);
  }
  EXPECT_EQ(types["output.weight"], GgmlType::kQ6_K);
  EXPECT_EQ(types["token_embd.weight"], GgmlType::kQ4_K);
  EXPECT_EQ(types["output_norm.weight"], GgmlType::kF32);
  EXPECT_EQ(types["blk.0.attn_norm.weight"], GgmlType::kF32);
}

TEST(TypePolicy, TiedEmbeddings_AreQuantizedLikeTheOutput) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ4_K_M;
  auto types = Decide(Llama(2), o, LlamaTensors(2, 256, /*tied=*/true));
  EXPECT_EQ(types["token_embd.weight"], GgmlType::kQ6_K);
}

TEST(TypePolicy, Q2K_WithGqa_GivesAttentionVFourBits) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ2_K;
  auto gqa = Decide(Llama(2, 8, 2), o, LlamaTensors(2, 256, false));
  EXPECT_EQ(gqa["blk.0.attn_v.weight"], GgmlType::kQ4_K);
  auto mha = Decide(Llama(2, 8, 8), o, LlamaTensors(2, 256, false));
  EXPECT_EQ(mha["blk.0.attn_v.weight"], GgmlType::kQ3_K);
  EXPECT_EQ(mha["blk.0.ffn_down.weight"], GgmlType::kQ3_K);
  EXPECT_EQ(mha["blk.0.attn_output.weight"], GgmlType::kQ3_K);
}

TEST(TypePolicy, RowsNotMultipleOfBlock_FallBack) {
  struct Case {
    FileType ft;
    int64_t ne0;
    GgmlType expected;
  };
  for (const Case& c : {Case{FileType::kQ4_K_S, 96, GgmlType::kQ5_0}, Case{FileType::kQ6_K, 96, GgmlType::kQ8_0},
                        Case{FileType::kQ5_K_S, 96, GgmlType::kQ5_1}, Case{FileType::kQ2_K, 96, GgmlType::kQ4_0},
                        Case{FileType::kIQ4_XS, 96, GgmlType::kIQ4_NL}, Case{FileType::kQ4_K_S, 48, GgmlType::kF16},
                        Case{FileType::kQ8_0, 48, GgmlType::kF16}}) {
    TypePolicyOptions o;
    o.file_type = c.ft;
    o.pure = true;
    absl::StatusOr<std::vector<TensorDecision>> d =
        TypePolicy(Llama(1), o).Decide({{"blk.0.attn_q.weight", 2, c.ne0, 1, GgmlType::kF32}});
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ((*d)[0].type, c.expected) << static_cast<int>(c.ft) << " " << c.ne0;
    EXPECT_TRUE((*d)[0].fell_back);
  }
}

TEST(TypePolicy, UserOverrides_FirstMatchWinsAndSkipsTheMixture) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ4_K_M;
  o.tensor_types = {{"ffn_down", GgmlType::kQ8_0}, {"blk\\.0\\.", GgmlType::kQ5_0}};
  auto types = Decide(Llama(2), o, LlamaTensors(2, 256, false));
  EXPECT_EQ(types["blk.0.ffn_down.weight"], GgmlType::kQ8_0);
  EXPECT_EQ(types["blk.0.attn_q.weight"], GgmlType::kQ5_0);
  EXPECT_EQ(types["blk.1.attn_q.weight"], GgmlType::kQ4_K);
}

TEST(TypePolicy, LeaveOutputTensor_KeepsItsType) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ4_0;
  o.quantize_output_tensor = false;
  auto types = Decide(Llama(1), o, LlamaTensors(1, 256, false));
  EXPECT_EQ(types["output.weight"], GgmlType::kF16);
}

TEST(TypePolicy, Q2KS_NeedsAnImatrixForItsQ2KTensors) {
  TypePolicyOptions o;
  o.file_type = FileType::kQ2_K_S;
  std::vector<PolicyTensor> t = LlamaTensors(1, 256, false);
  absl::StatusOr<std::vector<TensorDecision>> d = TypePolicy(Llama(1), o).Decide(t);
  ASSERT_TRUE(d.ok());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].name == "blk.0.attn_q.weight") {
      EXPECT_TRUE((*d)[i].requires_imatrix);
    }
    if (t[i].name == "output.weight") {
      EXPECT_FALSE((*d)[i].requires_imatrix);
    }
  }
}

TEST(TypePolicy, NeverQuantized_NormsRoutersAndOneDimensional) {
  TypePolicyOptions o;
  for (const char* name :
       {"blk.0.attn_norm.weight", "blk.0.ffn_gate_inp.weight", "position_embd.weight", "blk.0.attn_q.bias"}) {
    EXPECT_FALSE(TensorAllowsQuantization(name, 2, o)) << name;
  }
  EXPECT_FALSE(TensorAllowsQuantization("blk.0.attn_q.weight", 1, o));
  EXPECT_TRUE(TensorAllowsQuantization("blk.0.attn_q.weight", 2, o));
}

TEST(TypePolicy, TensorOrder_IsByLayerNumberThenName) {
  std::vector<std::string> names = {"blk.10.a", "output.weight", "blk.9.b", "blk.9.a", "token_embd.weight"};
  std::sort(names.begin(), names.end(), LlamaTensorOrderLess);
  EXPECT_EQ(names, (std::vector<std::string>{"output.weight", "token_embd.weight", "blk.9.a", "blk.9.b", "blk.10.a"}));
}

TEST(ModelFacts, OverridesWinAndMissingKeysAreNamed) {
  std::vector<GgufKv> kv = {GgufKv::Str("general.architecture", "llama"), GgufKv::U32("llama.block_count", 4),
                            GgufKv::U32("llama.attention.head_count", 8)};
  absl::StatusOr<ModelFacts> f = ReadModelFacts(kv, {GgufKv::U32("llama.block_count", 80)});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->n_layer, 80u);
  EXPECT_EQ(f->n_head_kv, 8u);
  EXPECT_FALSE(f->is_70b);  // no grouped-query attention
  absl::StatusOr<ModelFacts> missing = ReadModelFacts({GgufKv::Str("general.architecture", "qwen2")}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("qwen2.block_count"), std::string::npos);
}

}  // namespace
}  // namespace quantfleet
