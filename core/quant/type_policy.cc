#include "core/quant/type_policy.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

using FT = FileType;
using GT = GgmlType;

enum class Category {
  kTokenEmbd,
  kAttentionQ,
  kAttentionV,
  kAttentionK,
  kAttentionQkv,
  kAttentionKvB,
  kAttentionOutput,
  kFfnUp,
  kFfnGate,
  kFfnDown,
  kOutput,
  kOther,
};

bool IsTokenEmbd(const std::string& name) {
  return name == "token_embd.weight" || name == "per_layer_token_embd.weight";
}

Category Categorize(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (name == "output.weight") return Category::kOutput;
  if (IsTokenEmbd(name)) return Category::kTokenEmbd;
  if (has("attn_qkv.weight")) return Category::kAttentionQkv;
  if (has("attn_kv_b.weight")) return Category::kAttentionKvB;
  if (has("attn_v.weight")) return Category::kAttentionV;
  if (has("attn_k.weight")) return Category::kAttentionK;
  if (has("attn_q.weight")) return Category::kAttentionQ;
  if (has("attn_output.weight")) return Category::kAttentionOutput;
  if (has("ffn_up")) return Category::kFfnUp;
  if (has("ffn_gate")) return Category::kFfnGate;
  if (has("ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

bool IsAttnVLike(Category c) {
  return c == Category::kAttentionV || c == Category::kAttentionQkv || c == Category::kAttentionKvB;
}

// sscanf(name, "blk.%d.", &layer) == 1
bool ParseLayer(const std::string& name, int* layer) {
  if (name.rfind("blk.", 0) != 0) return false;
  size_t i = 4;
  while (i < name.size() && std::isspace(static_cast<unsigned char>(name[i]))) ++i;
  bool neg = false;
  if (i < name.size() && (name[i] == '+' || name[i] == '-')) neg = name[i++] == '-';
  const size_t digits_start = i;
  long long v = 0;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) {
    v = v * 10 + (name[i] - '0');
    if (v > (1ll << 40)) v = 1ll << 40;  // far past any layer count
    ++i;
  }
  if (i == digits_start) return false;
  *layer = static_cast<int>(neg ? -v : v);
  return true;
}

bool UseMoreBits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

bool RequiresImatrix(const std::string& name, GT type, FT ftype) {
  if (IsTokenEmbd(name) || name == "output.weight") return false;
  switch (type) {
    case GT::kIQ3_XXS:
    case GT::kIQ2_XXS:
    case GT::kIQ2_XS:
    case GT::kIQ2_S:
    case GT::kIQ1_M:
    case GT::kIQ1_S:
      return true;
    case GT::kQ2_K:
      return ftype == FT::kQ2_K_S;
    default:
      return false;
  }
}

// Mutable counters of one Decide pass, as llama.cpp's quantize state.
struct Counters {
  int n_attention_wv = 0;
  int i_attention_wv = 0;
  int n_ffn_down = 0, i_ffn_down = 0;
  int n_ffn_gate = 0, i_ffn_gate = 0;
  int n_ffn_up = 0, i_ffn_up = 0;
  bool has_tied_embeddings = true;
};

bool IsFt(FT f, std::initializer_list<FT> set) { return std::find(set.begin(), set.end(), f) != set.end(); }

}  // namespace

absl::StatusOr<ModelFacts> ReadModelFacts(const std::vector<GgufKv>& kv, const std::vector<GgufKv>& overrides) {
  auto find = [&](const std::string& key) -> const GgufKv* {
    if (const GgufKv* o = FindKv(overrides, key)) return o;
    return FindKv(kv, key);
  };
  ModelFacts facts;
  const GgufKv* arch = find("general.architecture");
  if (!arch || !arch->GetString()) {
    return absl::InvalidArgumentError("the model has no string key 'general.architecture'");
  }
  facts.arch = *arch->GetString();
  const std::string prefix = facts.arch + ".";
  const GgufKv* blocks = find(prefix + "block_count");
  if (!blocks || !blocks->GetU32()) {
    return absl::InvalidArgumentError(absl::StrFormat("the model has no u32 key '%sblock_count'", prefix));
  }
  facts.n_layer = *blocks->GetU32();
  if (facts.n_layer == 0 || facts.n_layer > 512) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%sblock_count' is %d; it must be in [1, 512]", prefix, facts.n_layer));
  }
  if (const GgufKv* heads = find(prefix + "attention.head_count")) {
    facts.n_head = static_cast<uint32_t>(heads->GetIntElement(0).value_or(0));
  }
  facts.n_head_kv = facts.n_head;
  if (const GgufKv* heads_kv = find(prefix + "attention.head_count_kv")) {
    facts.n_head_kv = static_cast<uint32_t>(heads_kv->GetIntElement(0).value_or(0));
  }
  if (const GgufKv* experts = find(prefix + "expert_count")) {
    facts.n_expert = experts->GetU32().value_or(0);
  }
  facts.is_70b = facts.arch == "llama" && facts.n_expert != 8 && facts.n_layer == 80 && facts.n_head != facts.n_head_kv;
  return facts;
}

bool TensorAllowsQuantization(const std::string& name, int n_dims, const TypePolicyOptions& options) {
  if (options.only_copy) return false;
  if (n_dims < 2) return false;
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  bool quantize = name.rfind("weight") == name.size() - 6;
  quantize &= !has("_norm.weight");
  quantize &= options.quantize_output_tensor || name != "output.weight";
  for (const char* s : {"ffn_gate_inp.weight",
                        "ffn_gate_tid2eid.weight",
                        "altup",
                        "laurel",
                        "per_layer_model_proj",
                        "ssm_conv1d",
                        "shortconv.conv.weight",
                        "indexer.k_proj.weight",
                        "indexer.q_proj.weight",
                        "time_mix_first.weight",
                        "time_mix_w0.weight",
                        "time_mix_w1.weight",
                        "time_mix_w2.weight",
                        "time_mix_v0.weight",
                        "time_mix_v1.weight",
                        "time_mix_v2.weight",
                        "time_mix_a0.weight",
                        "time_mix_a1.weight",
                        "time_mix_a2.weight",
                        "time_mix_g1.weight",
                        "time_mix_g2.weight",
                        "time_mix_decay_w1.weight",
                        "time_mix_decay_w2.weight",
                        "time_mix_lerp_fused.weight",
                        "attn_rel_b.weight",
                        ".position_embd",
                        "sam.pos_embd",
                        "sam.neck.",
                        "sam.net_",
                        ".rel_pos",
                        ".patch_embd",
                        ".patch_merger",
                        "a.rvq.codebook",
                        "mm.a.code_embd"}) {
    quantize &= !has(s);
  }
  quantize &= name != "position_embd.weight";
  quantize &= name != "token_types.weight";
  return quantize;
}

bool LlamaTensorOrderLess(const std::string& a, const std::string& b) {
  int la = -1, lb = -1;
  ParseLayer(a, &la);
  ParseLayer(b, &lb);
  if (la != lb) return la < lb;
  return a < b;
}

TypePolicy::TypePolicy(ModelFacts facts, TypePolicyOptions options)
    : facts_(std::move(facts)), options_(std::move(options)) {
  for (const TensorTypeOverride& o : options_.tensor_types) patterns_.emplace_back(std::regex(o.pattern), o.type);
}

absl::StatusOr<std::vector<TensorDecision>> TypePolicy::Decide(const std::vector<PolicyTensor>& tensors) const {
  const FT ftype = options_.file_type;
  const GT default_type = DefaultTensorType(ftype);
  const ModelFacts& hp = facts_;
  Counters qs;
  std::vector<Category> categories;
  categories.reserve(tensors.size());
  for (const PolicyTensor& t : tensors) {
    const Category c = Categorize(t.name);
    categories.push_back(c);
    if (IsAttnVLike(c)) ++qs.n_attention_wv;
    if (c == Category::kOutput) qs.has_tied_embeddings = false;
  }
  qs.n_ffn_down = qs.n_ffn_gate = qs.n_ffn_up = static_cast<int>(hp.n_layer);
  const int n_expert = std::max<int>(1, static_cast<int>(hp.n_expert));

  // Resolves the (layer, layer count) pair for FFN rules; expert models
  // interleave experts, so the layer comes from the name there.
  auto layer_info = [&](int i_layer, int n_layer, const std::string& name) -> absl::StatusOr<std::pair<int, int>> {
    if (n_expert > 1) {
      if (!ParseLayer(name, &i_layer)) {
        return absl::InvalidArgumentError(absl::StrFormat("cannot determine the layer of tensor '%s'", name));
      }
      if (i_layer < 0 || i_layer >= n_layer) {
        return absl::InvalidArgumentError(
            absl::StrFormat("tensor '%s' is in layer %d but the model has %d layers", name, i_layer, n_layer));
      }
    }
    return std::make_pair(i_layer, n_layer);
  };

  // llama_tensor_get_type_impl: the mixture rules.
  auto mixture = [&](GT new_type, const PolicyTensor& t, Category category) -> absl::StatusOr<GT> {
    const std::string& name = t.name;
    const bool falcon = hp.arch == "falcon";
    if (category == Category::kOutput || (qs.has_tied_embeddings && category == Category::kTokenEmbd)) {
      if (options_.output_tensor_type) {
        new_type = *options_.output_tensor_type;
      } else {
        const int64_t nx = t.ne0;
        const int64_t qk_k = BlockSize(new_type);
        if (ftype == FT::kMXFP4_MOE) {
          new_type = GT::kQ8_0;
        } else if (falcon || nx % qk_k != 0) {
          new_type = GT::kQ8_0;
        } else if (IsFt(ftype,
                        {FT::kIQ2_XXS, FT::kIQ2_XS, FT::kIQ3_XXS, FT::kIQ1_S, FT::kIQ2_S, FT::kIQ2_M, FT::kIQ1_M})) {
          new_type = GT::kQ5_K;
        } else if (new_type != GT::kQ8_0) {
          new_type = GT::kQ6_K;
        }
      }
    } else if (ftype == FT::kMXFP4_MOE) {
      new_type = t.ne2 > 1 ? GT::kMXFP4 : GT::kQ8_0;
    } else if (category == Category::kTokenEmbd) {
      if (options_.token_embedding_type) {
        new_type = *options_.token_embedding_type;
      } else if (IsFt(ftype, {FT::kIQ2_XXS, FT::kIQ2_XS, FT::kIQ1_S, FT::kIQ1_M})) {
        new_type = GT::kQ2_K;
      } else if (IsFt(ftype, {FT::kIQ2_S, FT::kIQ2_M, FT::kIQ3_XXS})) {
        new_type = GT::kIQ3_S;
      } else if (IsFt(ftype, {FT::kTQ1_0, FT::kTQ2_0, FT::kQ2_0})) {
        new_type = GT::kQ4_K;
      }
    } else if (IsFt(ftype, {FT::kIQ2_XXS, FT::kIQ2_XS, FT::kIQ1_S, FT::kIQ2_S, FT::kIQ2_M, FT::kIQ1_M})) {
      const bool iq2sm = IsFt(ftype, {FT::kIQ2_S, FT::kIQ2_M});
      if (IsAttnVLike(category)) {
        if (hp.n_gqa() >= 4 || hp.n_expert >= 4)
          new_type = GT::kQ4_K;
        else
          new_type = iq2sm ? GT::kIQ3_S : GT::kQ2_K;
        ++qs.i_attention_wv;
      } else if (hp.n_expert == 8 && category == Category::kAttentionK) {
        new_type = GT::kQ4_K;
      } else if (category == Category::kFfnDown) {
        if (qs.i_ffn_down < qs.n_ffn_down / 8) new_type = iq2sm ? GT::kIQ3_S : GT::kQ2_K;
        ++qs.i_ffn_down;
      } else if (category == Category::kAttentionOutput) {
        if (hp.n_expert == 8) {
          new_type = GT::kQ5_K;
        } else if (IsFt(ftype, {FT::kIQ1_S, FT::kIQ1_M})) {
          new_type = GT::kIQ2_XXS;
        } else if (iq2sm) {
          new_type = GT::kIQ3_S;
        }
      }
    } else if (IsAttnVLike(category)) {
      if (ftype == FT::kQ2_K) {
        new_type = hp.n_gqa() >= 4 ? GT::kQ4_K : GT::kQ3_K;
      } else if (ftype == FT::kQ2_K_S && hp.n_gqa() >= 4) {
        new_type = GT::kQ4_K;
      } else if (ftype == FT::kIQ3_XXS) {
        new_type = hp.n_gqa() >= 4 ? GT::kQ4_K : !options_.has_imatrix ? GT::kIQ3_S : GT::kIQ3_XXS;
      } else if (IsFt(ftype, {FT::kIQ3_XS, FT::kIQ3_S}) && hp.n_gqa() >= 4) {
        new_type = GT::kQ4_K;
      } else if (ftype == FT::kIQ3_M) {
        new_type = GT::kQ4_K;
      } else if (ftype == FT::kQ3_K_M) {
        new_type = qs.i_attention_wv < 2 ? GT::kQ5_K : GT::kQ4_K;
      } else if (ftype == FT::kQ3_K_L) {
        new_type = GT::kQ5_K;
      } else if (IsFt(ftype, {FT::kIQ4_NL, FT::kIQ4_XS}) && hp.n_gqa() >= 4) {
        new_type = GT::kQ5_K;
      } else if (IsFt(ftype, {FT::kQ4_K_M, FT::kQ5_K_M}) && UseMoreBits(qs.i_attention_wv, qs.n_attention_wv)) {
        new_type = GT::kQ6_K;
      } else if (ftype == FT::kQ4_K_S && qs.i_attention_wv < 4) {
        new_type = GT::kQ5_K;
      }
      if (hp.is_70b && (new_type == GT::kQ3_K || new_type == GT::kQ4_K)) new_type = GT::kQ5_K;
      if (hp.n_expert == 8) new_type = GT::kQ8_0;
      ++qs.i_attention_wv;
    } else if (category == Category::kAttentionK) {
      if (hp.n_expert == 8) {
        new_type = GT::kQ8_0;
      } else if (ftype == FT::kIQ3_XS) {
        new_type = GT::kIQ3_XXS;
      } else if (ftype == FT::kIQ3_XXS) {
        new_type = GT::kIQ2_S;
      }
    } else if (category == Category::kAttentionQ) {
      if (ftype == FT::kIQ3_XS) {
        new_type = GT::kIQ3_XXS;
      } else if (ftype == FT::kIQ3_XXS) {
        new_type = GT::kIQ2_S;
      }
    } else if (category == Category::kFfnDown) {
      auto info = layer_info(qs.i_ffn_down, qs.n_ffn_down, name);
      if (!info.ok()) return info.status();
      const int i_layer = info->first, n_layer = info->second;
      if (ftype == FT::kQ2_K) {
        new_type = GT::kQ3_K;
      } else if (ftype == FT::kQ2_K_S) {
        if (i_layer < n_layer / 8) new_type = GT::kQ4_K;
      } else if (ftype == FT::kIQ3_XXS && !options_.has_imatrix) {
        new_type = i_layer < n_layer / 8 ? GT::kQ4_K : GT::kQ3_K;
      } else if (ftype == FT::kQ3_K_M) {
        new_type = i_layer < n_layer / 16                     ? GT::kQ5_K
                   : !falcon || UseMoreBits(i_layer, n_layer) ? GT::kQ4_K
                                                              : GT::kQ3_K;
      } else if (ftype == FT::kIQ3_M &&
                 (i_layer < n_layer / 8 || (hp.n_expert == 8 && UseMoreBits(i_layer, n_layer)))) {
        new_type = GT::kQ4_K;
      } else if (ftype == FT::kQ3_K_L) {
        new_type = falcon ? GT::kQ4_K : GT::kQ5_K;
      } else if (ftype == FT::kQ4_K_M) {
        if (falcon) {
          new_type = i_layer < n_layer / 16 ? GT::kQ6_K : UseMoreBits(i_layer, n_layer) ? GT::kQ5_K : GT::kQ4_K;
        } else if (UseMoreBits(i_layer, n_layer)) {
          new_type = GT::kQ6_K;
        }
      } else if (i_layer < n_layer / 8 && IsFt(ftype, {FT::kIQ4_NL, FT::kIQ4_XS}) && !options_.has_imatrix) {
        new_type = GT::kQ5_K;
      } else if (ftype == FT::kQ5_K_M && UseMoreBits(i_layer, n_layer)) {
        new_type = GT::kQ6_K;
      } else if (ftype == FT::kQ4_K_S && !falcon && i_layer < n_layer / 8) {
        new_type = GT::kQ5_K;
      } else if (IsFt(ftype, {FT::kQ4_0, FT::kQ5_0}) && options_.has_imatrix && i_layer < n_layer / 8) {
        new_type = ftype == FT::kQ4_0 ? GT::kQ4_1 : GT::kQ5_1;
      }
      ++qs.i_ffn_down;
    } else if (category == Category::kAttentionOutput) {
      if (!falcon) {
        if (hp.n_expert == 8) {
          if (IsFt(ftype, {FT::kQ2_K, FT::kIQ3_XS, FT::kIQ3_XXS, FT::kQ3_K_S, FT::kQ3_K_M, FT::kIQ4_NL, FT::kQ4_K_S,
                           FT::kQ4_K_M, FT::kIQ3_S, FT::kIQ3_M, FT::kIQ4_XS})) {
            new_type = GT::kQ5_K;
          }
        } else {
          if (ftype == FT::kQ2_K)
            new_type = GT::kQ3_K;
          else if (ftype == FT::kIQ3_XXS)
            new_type = GT::kIQ3_S;
          else if (ftype == FT::kQ3_K_M)
            new_type = GT::kQ4_K;
          else if (ftype == FT::kQ3_K_L)
            new_type = GT::kQ5_K;
          else if (ftype == FT::kIQ3_M)
            new_type = GT::kQ4_K;
        }
      } else if (ftype == FT::kQ3_K_L) {
        new_type = GT::kQ4_K;
      }
    } else if (category == Category::kAttentionQkv) {
      if (IsFt(ftype, {FT::kQ3_K_M, FT::kQ3_K_L, FT::kIQ3_M}))
        new_type = GT::kQ4_K;
      else if (ftype == FT::kQ4_K_M)
        new_type = GT::kQ5_K;
      else if (ftype == FT::kQ5_K_M)
        new_type = GT::kQ6_K;
    } else if (category == Category::kFfnGate || category == Category::kFfnUp) {
      int& i_ffn = category == Category::kFfnGate ? qs.i_ffn_gate : qs.i_ffn_up;
      const int n_ffn = category == Category::kFfnGate ? qs.n_ffn_gate : qs.n_ffn_up;
      auto info = layer_info(i_ffn, n_ffn, name);
      if (!info.ok()) return info.status();
      const int i_layer = info->first, n_layer = info->second;
      if (ftype == FT::kIQ3_XS && (i_layer >= n_layer / 8 && i_layer < 7 * n_layer / 8)) new_type = GT::kIQ3_XXS;
      ++i_ffn;
    }
    return new_type;
  };

  // tensor_type_fallback: rows that are not a multiple of the block size.
  auto fallback = [&](const PolicyTensor& t, GT target, bool* fell_back) -> absl::StatusOr<GT> {
    const int64_t qk = BlockSize(target);
    if (t.ne0 % qk == 0) return target;
    *fell_back = true;
    GT ret = target;
    switch (target) {
      case GT::kIQ1_S:
      case GT::kIQ1_M:
      case GT::kIQ2_XXS:
      case GT::kIQ2_XS:
      case GT::kIQ2_S:
      case GT::kIQ3_XXS:
      case GT::kIQ3_S:
      case GT::kIQ4_XS:
        ret = GT::kIQ4_NL;
        break;
      case GT::kQ2_0:
      case GT::kQ2_K:
      case GT::kQ3_K:
      case GT::kTQ1_0:
      case GT::kTQ2_0:
        ret = GT::kQ4_0;
        break;
      case GT::kQ4_K:
        ret = GT::kQ5_0;
        break;
      case GT::kQ5_K:
        ret = GT::kQ5_1;
        break;
      case GT::kQ6_K:
        ret = GT::kQ8_0;
        break;
      default:
        if (qk > 32) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "no tensor type fallback is defined for type %s (tensor '%s')", TypeName(target), t.name));
        }
        break;
    }
    if (t.ne0 % BlockSize(ret) != 0) ret = GT::kF16;
    return ret;
  };

  // llama_tensor_get_type for a tensor that may be quantized.
  auto decide_one = [&](const PolicyTensor& t, Category category, bool* fell_back) -> absl::StatusOr<GT> {
    if (options_.token_embedding_type && category == Category::kTokenEmbd) {
      // per_layer_token_embd is a large separate table: an explicit
      // --tensor-type may name it instead.
      bool named = false;
      if (t.name == "per_layer_token_embd.weight") {
        for (const auto& [re, type] : patterns_) {
          if (std::regex_search(t.name, re)) {
            named = true;
            break;
          }
        }
      }
      if (!named) return *options_.token_embedding_type;
    }
    if (options_.output_tensor_type && category == Category::kOutput) return *options_.output_tensor_type;
    GT new_type = default_type;
    if (!IsQuantized(default_type)) return new_type;
    bool manual = false;
    for (const auto& [re, type] : patterns_) {
      if (std::regex_search(t.name, re)) {
        new_type = type;
        manual = true;
        break;
      }
    }
    if (!manual && !options_.pure) {
      absl::StatusOr<GT> m = mixture(new_type, t, category);
      if (!m.ok()) return m.status();
      new_type = *m;
    }
    return fallback(t, new_type, fell_back);
  };

  std::vector<TensorDecision> out;
  out.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PolicyTensor& t = tensors[i];
    const Category category = categories[i];
    TensorDecision d;
    d.allows_quantization = TensorAllowsQuantization(t.name, t.n_dims, options_);
    d.type = t.type;
    if (d.allows_quantization) {
      absl::StatusOr<GT> type = decide_one(t, category, &d.fell_back);
      if (!type.ok()) return type.status();
      d.type = *type;
    }
    d.requires_imatrix = RequiresImatrix(t.name, d.type, ftype);
    out.push_back(d);
  }
  return out;
}

}  // namespace quantfleet
