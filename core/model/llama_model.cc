#include "core/model/llama_model.h"

#include <cstring>
#include <map>
#include <tuple>

#include "absl/strings/str_format.h"
#include "core/quant/half.h"
#include "core/quant/reference_kernels.h"

namespace quantfleet {
namespace {

class Reader {
 public:
  Reader(const GgufModel& model, const std::string& path) : model_(model), path_(path) {
    for (const ModelTensor& t : model.tensors()) by_name_[t.info.name] = &t;
  }

  const ModelTensor* Find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  absl::StatusOr<uint32_t> U32(const std::string& key, std::optional<uint32_t> fallback = std::nullopt) const {
    const GgufKv* kv = FindKv(model_.kv(), key);
    if (kv != nullptr) {
      if (std::optional<int64_t> v = kv->GetIntElement(0); v && !kv->is_array && *v >= 0)
        return static_cast<uint32_t>(*v);
      return absl::InvalidArgumentError(absl::StrFormat("%s: %s must be an unsigned integer", path_, key));
    }
    if (fallback) return *fallback;
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s is missing", path_, key));
  }

  float F32(const std::string& key, float fallback) const {
    const GgufKv* kv = FindKv(model_.kv(), key);
    if (kv == nullptr || kv->is_array || kv->type != GgufValueType::kFloat32 || kv->raw.size() != 4) return fallback;
    float v;
    std::memcpy(&v, kv->raw.data(), 4);
    return v;
  }

  // The tensor as F32, checking its shape (ne0, ne1).
  absl::StatusOr<std::vector<float>> Floats(const std::string& name, int64_t ne0, int64_t ne1, GgmlType* type,
                                            bool optional = false) const {
    const ModelTensor* t = Find(name);
    if (t == nullptr) {
      if (optional) return std::vector<float>();
      return absl::InvalidArgumentError(absl::StrFormat("%s: tensor %s is missing", path_, name));
    }
    if (t->info.ne[0] != ne0 || t->info.ne[1] != ne1 || t->info.ne[2] != 1 || t->info.ne[3] != 1) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: tensor %s is [%d, %d, %d], expected [%d, %d]", path_, name,
                                                        t->info.ne[0], t->info.ne[1], t->info.ne[2], ne0, ne1));
    }
    const int64_t n = ne0 * ne1;
    std::vector<float> out(static_cast<size_t>(n));
    switch (t->info.type) {
      case GgmlType::kF32:
        std::memcpy(out.data(), t->data, static_cast<size_t>(n) * 4);
        break;
      case GgmlType::kF16:
      case GgmlType::kBF16: {
        const bool f16 = t->info.type == GgmlType::kF16;
        for (int64_t i = 0; i < n; ++i) {
          uint16_t h;
          std::memcpy(&h, t->data + 2 * i, 2);
          out[static_cast<size_t>(i)] = f16 ? HalfToFloat(h) : BFloat16ToFloat(h);
        }
        break;
      }
      default:
        return absl::UnimplementedError(absl::StrFormat(
            "%s: tensor %s is %s; calibration needs F32, F16 or BF16 weights", path_, name, TypeName(t->info.type)));
    }
    if (type != nullptr) *type = t->info.type;
    return out;
  }

  absl::StatusOr<Linear> Matrix(const std::string& name, int n_in, int n_out, bool with_bias = false,
                                int n_mat = 1) const {
    Linear l;
    l.name = name + ".weight";
    l.n_in = n_in;
    l.n_out = n_out;
    l.n_mat = n_mat;
    const ModelTensor* t = Find(l.name);
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrFormat("%s: tensor %s is missing", path_, l.name));
    if (t->info.ne[0] != n_in || t->info.ne[1] != n_out || t->info.ne[2] != n_mat || t->info.ne[3] != 1) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: tensor %s is [%d, %d, %d], expected [%d, %d, %d]", path_,
                                                        l.name, t->info.ne[0], t->info.ne[1], t->info.ne[2], n_in,
                                                        n_out, n_mat));
    }
    if (!CanDequantize(t->info.type)) {
      return absl::UnimplementedError(absl::StrFormat(
          "%s: tensor %s is %s, which calibration cannot read (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
          "Q2_K to Q6_K, IQ4_NL and IQ4_XS can be)",
          path_, l.name, TypeName(t->info.type)));
    }
    l.source_type = t->info.type;
    l.data = t->data;
    if (with_bias) {
      absl::StatusOr<std::vector<float>> b = Floats(name + ".bias", n_out, 1, nullptr);
      if (!b.ok()) return b.status();
      l.bias = *std::move(b);
    }
    return l;
  }

 private:
  const GgufModel& model_;
  const std::string& path_;
  std::map<std::string, const ModelTensor*> by_name_;
};

}  // namespace

void Linear::RowsToFloat(int64_t first, int64_t count, float* out) const {
  DequantizeToFloat(source_type, data + static_cast<size_t>(first) * RowSize(source_type, n_in), out, count * n_in);
}

absl::StatusOr<LlamaModel> LlamaModel::Load(const GgufModel& model, const std::string& path) {
  Reader r(model, path);
  LlamaModel m;
  LlamaHparams& hp = m.hp_;
  const GgufKv* arch = FindKv(model.kv(), "general.architecture");
  hp.arch = arch != nullptr && arch->GetString() ? *arch->GetString() : "";
  if (hp.arch != "llama" && hp.arch != "qwen2" && hp.arch != "qwen3" && hp.arch != "qwen3moe") {
    return absl::UnimplementedError(absl::StrFormat(
        "%s: architecture '%s' is not supported for calibration yet (llama, qwen2, qwen3, qwen3moe)", path, hp.arch));
  }
  const bool qk_norm = hp.arch == "qwen3" || hp.arch == "qwen3moe";
  const std::string a = hp.arch + ".";
  auto get = [&](const std::string& key, std::optional<uint32_t> fallback = std::nullopt) -> absl::StatusOr<int> {
    absl::StatusOr<uint32_t> v = r.U32(a + key, fallback);
    if (!v.ok()) return v.status();
    return static_cast<int>(*v);
  };
#define QF_GET(field, ...)                    \
  do {                                        \
    absl::StatusOr<int> v = get(__VA_ARGS__); \
    if (!v.ok()) return v.status();           \
    hp.field = *v;                            \
  } while (0)
  QF_GET(n_layer, "block_count");
  QF_GET(n_embd, "embedding_length");
  QF_GET(n_ff, "feed_forward_length", hp.arch == "qwen3moe" ? std::optional<uint32_t>(0) : std::nullopt);
  QF_GET(n_head, "attention.head_count");
  QF_GET(n_head_kv, "attention.head_count_kv", static_cast<uint32_t>(hp.n_head));
  if (hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d heads cannot share %d key/value heads", path, hp.n_head, hp.n_head_kv));
  }
  QF_GET(head_dim, "attention.key_length", static_cast<uint32_t>(hp.n_embd / hp.n_head));
  QF_GET(n_rot, "rope.dimension_count", static_cast<uint32_t>(hp.head_dim));
#undef QF_GET
  if (FindKv(model.kv(), a + "expert_count") != nullptr || hp.arch == "qwen3moe") {
    if (hp.arch != "llama" && hp.arch != "qwen3moe") {
      return absl::UnimplementedError(absl::StrFormat(
          "%s: mixtures of experts are supported for llama (Mixtral) and qwen3moe, not %s", path, hp.arch));
    }
    absl::StatusOr<int> n = get("expert_count");
    absl::StatusOr<int> used = get("expert_used_count");
    if (!n.ok()) return n.status();
    if (!used.ok()) return used.status();
    hp.n_expert = *n;
    hp.n_expert_used = *used;
    if (hp.n_expert < 1 || hp.n_expert_used < 1 || hp.n_expert_used > hp.n_expert) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %d experts with %d used per token", path, hp.n_expert, hp.n_expert_used));
    }
    // Experts may be narrower than a dense block (qwen3moe).
    absl::StatusOr<int> n_ff_exp = get("expert_feed_forward_length", 0);
    if (!n_ff_exp.ok()) return n_ff_exp.status();
    if (*n_ff_exp > 0) {
      hp.n_ff = *n_ff_exp;
    } else if (hp.arch == "qwen3moe") {
      hp.n_ff /= hp.n_expert_used;
    }
  }
  hp.rms_eps = r.F32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  hp.rope_base = r.F32(a + "rope.freq_base", 10000.0f);
  const float factor = r.F32(a + "rope.scaling.factor", 0.0f);
  const GgufKv* scaling = FindKv(model.kv(), a + "rope.scaling.type");
  if (factor > 0 && scaling != nullptr && scaling->GetString() == std::optional<std::string>("linear")) {
    hp.rope_freq_scale = 1.0f / factor;
  }

  const ModelTensor* embd = r.Find("token_embd.weight");
  if (embd == nullptr)
    return absl::InvalidArgumentError(absl::StrFormat("%s: tensor token_embd.weight is missing", path));
  hp.n_vocab = static_cast<int>(embd->info.ne[1]);
  absl::StatusOr<Linear> e = r.Matrix("token_embd", hp.n_embd, hp.n_vocab);
  if (!e.ok()) return e.status();
  m.token_embd_ = *std::move(e);
  absl::StatusOr<std::vector<float>> on = r.Floats("output_norm.weight", hp.n_embd, 1, nullptr);
  if (!on.ok()) return on.status();
  m.output_norm_ = *std::move(on);
  if (r.Find("output.weight") != nullptr) {
    absl::StatusOr<Linear> out = r.Matrix("output", hp.n_embd, hp.n_vocab);
    if (!out.ok()) return out.status();
    m.output_ = *std::move(out);
  } else {  // tied: the embedding matrix doubles as the output (and keeps its name)
    m.output_ = m.token_embd_;
  }
  absl::StatusOr<std::vector<float>> freqs = r.Floats("rope_freqs.weight", hp.n_rot / 2, 1, nullptr, true);
  if (!freqs.ok()) return freqs.status();
  m.rope_freqs_ = *std::move(freqs);

  const bool qkv_bias = hp.arch == "qwen2";
  const int q_dim = hp.n_head * hp.head_dim;
  const int kv_dim = hp.n_head_kv * hp.head_dim;
  for (int i = 0; i < hp.n_layer; ++i) {
    const std::string p = absl::StrFormat("blk.%d.", i);
    LlamaLayer l;
    auto floats = [&](const std::string& name, int n, std::vector<float>* out, bool optional = false) {
      absl::StatusOr<std::vector<float>> v = r.Floats(p + name, n, 1, nullptr, optional);
      if (v.ok()) *out = *std::move(v);
      return v.status();
    };
    auto matrix = [&](const std::string& name, int n_in, int n_out, Linear* out, bool bias = false) {
      absl::StatusOr<Linear> v = r.Matrix(p + name, n_in, n_out, bias);
      if (v.ok()) *out = *std::move(v);
      return v.status();
    };
    for (absl::Status s :
         {floats("attn_norm.weight", hp.n_embd, &l.attn_norm), floats("ffn_norm.weight", hp.n_embd, &l.ffn_norm),
          floats("attn_q_norm.weight", hp.head_dim, &l.q_norm, !qk_norm),
          floats("attn_k_norm.weight", hp.head_dim, &l.k_norm, !qk_norm),
          matrix("attn_q", hp.n_embd, q_dim, &l.wq, qkv_bias), matrix("attn_k", hp.n_embd, kv_dim, &l.wk, qkv_bias),
          matrix("attn_v", hp.n_embd, kv_dim, &l.wv, qkv_bias), matrix("attn_output", q_dim, hp.n_embd, &l.wo)}) {
      if (!s.ok()) return s;
    }
    const std::string e = hp.n_expert > 0 ? "_exps" : "";
    const int n_mat = hp.n_expert > 0 ? hp.n_expert : 1;
    for (auto [name, n_in, n_out, out] :
         {std::tuple{"ffn_gate", hp.n_embd, hp.n_ff, &l.gate}, std::tuple{"ffn_up", hp.n_embd, hp.n_ff, &l.up},
          std::tuple{"ffn_down", hp.n_ff, hp.n_embd, &l.down}}) {
      absl::StatusOr<Linear> v = r.Matrix(p + name + e, n_in, n_out, false, n_mat);
      if (!v.ok()) return v.status();
      *out = *std::move(v);
    }
    if (hp.n_expert > 0) {
      absl::StatusOr<Linear> router = r.Matrix(p + "ffn_gate_inp", hp.n_embd, hp.n_expert);
      if (!router.ok()) return router.status();
      l.router = *std::move(router);
    }
    m.layers_.push_back(std::move(l));
  }
  return m;
}

bool LlamaModel::ReplaceMatrix(const std::string& name, GgmlType type, const uint8_t* data) {
  bool found = false;
  auto replace = [&](Linear& l) {
    if (l.name != name) return;
    l.source_type = type;
    l.data = data;
    found = true;
  };
  replace(token_embd_);
  replace(output_);
  for (LlamaLayer& layer : layers_) {
    for (Linear* l : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.gate, &layer.up, &layer.down}) replace(*l);
  }
  return found;
}

bool LlamaModel::ReplaceNorm(const std::string& name, std::vector<float> values) {
  for (size_t l = 0; l < layers_.size(); ++l) {
    for (auto [which, norm] :
         {std::make_pair("attn_norm", &layers_[l].attn_norm), std::make_pair("ffn_norm", &layers_[l].ffn_norm)}) {
      if (name != absl::StrFormat("blk.%d.%s.weight", l, which)) continue;
      if (values.size() != norm->size()) return false;
      *norm = std::move(values);
      return true;
    }
  }
  return false;
}

}  // namespace quantfleet
