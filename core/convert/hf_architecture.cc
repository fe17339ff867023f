#include "core/convert/hf_architecture.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/convert/hf_vocab.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

using Json = nlohmann::json;

// The first of `keys` config.json has (even when its value is null), as
// the converter's find_hparam looks them up; null when none.
const Json& FindParam(const Json& hparams, std::initializer_list<const char*> keys) {
  static const Json kNull;
  for (const char* key : keys) {
    if (auto it = hparams.find(key); it != hparams.end()) return *it;
  }
  return kNull;
}

// The per-layer tensors every family has, and those only some have.
const std::map<std::string, std::string>& LayerNames(HfFamily family) {
  static const std::map<std::string, std::string> kDense = {
      {"input_layernorm", "attn_norm"}, {"self_attn.q_proj", "attn_q"},      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},   {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},           {"mlp.down_proj", "ffn_down"}};
  static const std::map<std::string, std::string> kMixtral = {{"input_layernorm", "attn_norm"},
                                                              {"self_attn.q_proj", "attn_q"},
                                                              {"self_attn.k_proj", "attn_k"},
                                                              {"self_attn.v_proj", "attn_v"},
                                                              {"self_attn.o_proj", "attn_output"},
                                                              {"post_attention_layernorm", "ffn_norm"},
                                                              {"block_sparse_moe.gate", "ffn_gate_inp"},
                                                              {"experts.w1", "ffn_gate_exps"},
                                                              {"experts.w2", "ffn_down_exps"},
                                                              {"experts.w3", "ffn_up_exps"}};
  static const std::map<std::string, std::string> kQwen3 = [] {
    std::map<std::string, std::string> m = kDense;
    m["self_attn.q_norm"] = "attn_q_norm";
    m["self_attn.k_norm"] = "attn_k_norm";
    return m;
  }();
  static const std::map<std::string, std::string> kQwen3Moe = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},         {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},    {"self_attn.q_norm", "attn_q_norm"},
      {"self_attn.k_norm", "attn_k_norm"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate", "ffn_gate_inp"},           {"experts.gate_proj", "ffn_gate_exps"},
      {"experts.down_proj", "ffn_down_exps"}, {"experts.up_proj", "ffn_up_exps"}};
  switch (family) {
    case HfFamily::kMixtral:
      return kMixtral;
    case HfFamily::kQwen3:
      return kQwen3;
    case HfFamily::kQwen3Moe:
      return kQwen3Moe;
    default:
      return kDense;
  }
}

void SetU32(MetadataList& meta, const std::string& key, const Json& v) {
  if (v.is_number_integer()) meta.Set(GgufKv::U32(key, v.get<uint32_t>()));
}
void SetF32(MetadataList& meta, const std::string& key, const Json& v) {
  if (v.is_number()) meta.Set(GgufKv::F32(key, static_cast<float>(v.get<double>())));
}

}  // namespace

absl::StatusOr<HfArchitecture> ArchitectureOf(const Json& config, const std::string& dir) {
  std::string name;
  if (const Json& arches = FindParam(config, {"architectures"}); arches.is_array() && !arches.empty()) {
    if (arches[0].is_string()) name = arches[0].get<std::string>();
  }
  if (config.contains("text_config") && config["text_config"].is_object()) {
    const Json& inner = FindParam(config["text_config"], {"architectures"});
    if (inner.is_array() && !inner.empty() && inner[0].is_string()) name = inner[0].get<std::string>();
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s/config.json: no \"architectures\" names the model", dir));
  }
  HfArchitecture arch;
  arch.hf_name = name;
  if (name == "LlamaForCausalLM" || name == "MistralForCausalLM") {
    arch.gguf_arch = "llama";
    arch.family = HfFamily::kLlama;
    arch.permutes_qk = true;
  } else if (name == "MixtralForCausalLM") {
    arch.gguf_arch = "llama";
    arch.family = HfFamily::kMixtral;
    arch.permutes_qk = true;
    arch.expert_projections = {"w1", "w2", "w3"};
  } else if (name == "Qwen2ForCausalLM") {
    arch.gguf_arch = "qwen2";
    arch.family = HfFamily::kQwen2;
  } else if (name == "Qwen3ForCausalLM") {
    arch.gguf_arch = "qwen3";
    arch.family = HfFamily::kQwen3;
  } else if (name == "Qwen3MoeForCausalLM") {
    arch.gguf_arch = "qwen3moe";
    arch.family = HfFamily::kQwen3Moe;
    arch.expert_projections = {"down_proj", "gate_proj", "up_proj"};
  } else {
    return absl::UnimplementedError(absl::StrFormat(
        "%s/config.json: architecture '%s' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
        "MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM)",
        dir, name));
  }
  return arch;
}

std::optional<ExpertPart> ExpertPartOf(const HfArchitecture& arch, const std::string& name) {
  if (arch.expert_projections.empty()) return std::nullopt;
  // model.layers.B.block_sparse_moe.experts.E.w1.weight / model.layers.B.mlp.experts.E.up_proj.weight
  std::vector<std::string> parts = absl::StrSplit(name, '.');
  const char* container = arch.family == HfFamily::kMixtral ? "block_sparse_moe" : "mlp";
  if (parts.size() != 8 || parts[0] != "model" || parts[1] != "layers" || parts[3] != container ||
      parts[4] != "experts" || parts[7] != "weight") {
    return std::nullopt;
  }
  ExpertPart part;
  if (!absl::SimpleAtoi(parts[2], &part.layer) || !absl::SimpleAtoi(parts[5], &part.expert)) return std::nullopt;
  for (const std::string& p : arch.expert_projections) {
    if (p == parts[6]) {
      part.projection = p;
      return part;
    }
  }
  return std::nullopt;
}

std::string MergedExpertName(int layer, const std::string& projection) {
  return absl::StrFormat("model.layers.%d.experts.%s.weight", layer, projection);
}

absl::StatusOr<std::string> GgufTensorName(const HfArchitecture& arch, const std::string& name) {
  auto refuse = [&] {
    return absl::InvalidArgumentError(
        absl::StrFormat("tensor '%s': no %s tensor has this name (%s)", name, arch.gguf_arch, arch.hf_name));
  };
  std::string base = name, suffix;
  if (absl::EndsWith(name, ".weight")) {
    base = name.substr(0, name.size() - 7);
    suffix = ".weight";
  } else if (absl::EndsWith(name, ".bias")) {
    base = name.substr(0, name.size() - 5);
    suffix = ".bias";
  } else {
    return refuse();
  }
  if (base == "model.embed_tokens") return "token_embd" + suffix;
  if (base == "model.norm") return "output_norm" + suffix;
  if (base == "lm_head") return "output" + suffix;
  std::vector<std::string> parts = absl::StrSplit(base, absl::MaxSplits('.', 3));
  int layer = 0;
  if (parts.size() != 4 || parts[0] != "model" || parts[1] != "layers" || !absl::SimpleAtoi(parts[2], &layer)) {
    return refuse();
  }
  const auto& names = LayerNames(arch.family);
  auto it = names.find(parts[3]);
  if (it == names.end()) return refuse();
  return absl::StrFormat("blk.%d.%s%s", layer, it->second, suffix);
}

absl::Status AddHyperparameters(const HfArchitecture& arch, const Json& hparams, uint32_t file_type,
                                const std::string& dir, MetadataList& meta) {
  const std::string a = arch.gguf_arch;
  SetU32(meta, a + ".block_count", FindParam(hparams, {"n_layers", "num_hidden_layers", "n_layer", "num_layers"}));
  SetU32(meta, a + ".context_length",
         FindParam(hparams, {"max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length",
                             "model_max_length"}));
  SetU32(meta, a + ".embedding_length", FindParam(hparams, {"hidden_size", "n_embd", "dim"}));
  SetU32(meta, a + ".feed_forward_length",
         FindParam(hparams, {"prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size",
                             "n_inner", "hidden_dim"}));
  SetU32(meta, a + ".attention.head_count", FindParam(hparams, {"num_attention_heads", "n_head", "n_heads"}));
  SetU32(meta, a + ".attention.head_count_kv", FindParam(hparams, {"num_key_value_heads", "n_kv_heads"}));
  if (const Json& causal = FindParam(hparams, {"is_causal"}); causal.is_boolean() && !causal.get<bool>()) {
    meta.Set(GgufKv::Bool(a + ".attention.causal", false));
  }
  // rope_parameters (or rope_scaling), completed from the top-level keys.
  Json rope = FindParam(hparams, {"rope_parameters"});
  if (!hparams.contains("rope_parameters")) rope = FindParam(hparams, {"rope_scaling"});
  if (!rope.is_object()) rope = Json::object();
  if (rope.contains("full_attention") || rope.contains("sliding_attention") ||
      !FindParam(hparams,
                 {"local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"})
           .is_null() ||
      hparams.contains("mrope_section") || rope.contains("mrope_section")) {
    return absl::UnimplementedError(
        absl::StrFormat("%s/config.json: per-attention-type or multimodal rope parameters are not supported", dir));
  }
  const Json& theta = FindParam(
      hparams, {"global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"});
  if (!rope.contains("rope_theta") && !theta.is_null()) rope["rope_theta"] = theta;
  if (!rope.contains("rope_type") && rope.contains("type") && !rope["type"].is_null()) rope["rope_type"] = rope["type"];
  if (const Json& type = FindParam(rope, {"rope_type"}); type.is_string()) {
    const std::string t = type.get<std::string>();
    const Json& factor = FindParam(rope, {"factor"});
    if (t == "linear" && !factor.is_null()) {
      meta.Set(GgufKv::Str(a + ".rope.scaling.type", "linear"));
      SetF32(meta, a + ".rope.scaling.factor", factor);
    } else if (t == "yarn" && !factor.is_null()) {
      meta.Set(GgufKv::Str(a + ".rope.scaling.type", "yarn"));
      SetF32(meta, a + ".rope.scaling.factor", factor);
      Json original = FindParam(rope, {"original_max_position_embeddings"});
      if (original.is_null()) original = FindParam(hparams, {"original_max_position_embeddings"});
      SetU32(meta, a + ".rope.scaling.original_context_length", original);
      SetF32(meta, a + ".rope.scaling.yarn_ext_factor", FindParam(rope, {"extrapolation_factor"}));
      Json attn = FindParam(rope, {"attention_factor"});
      if (!rope.contains("attention_factor")) attn = FindParam(rope, {"attn_factor"});
      SetF32(meta, a + ".rope.scaling.yarn_attn_factor", attn);
      SetF32(meta, a + ".rope.scaling.yarn_beta_fast", FindParam(rope, {"beta_fast"}));
      SetF32(meta, a + ".rope.scaling.yarn_beta_slow", FindParam(rope, {"beta_slow"}));
    } else if (t == "su" || t == "longrope") {
      meta.Set(GgufKv::Str(a + ".rope.scaling.type", "longrope"));
    }
  }
  SetF32(meta, a + ".rope.freq_base", FindParam(rope, {"rope_theta"}));
  SetF32(meta, a + ".attention.layer_norm_rms_epsilon", FindParam(hparams, {"rms_norm_eps", "norm_eps"}));
  SetF32(meta, a + ".attention.layer_norm_epsilon",
         FindParam(hparams, {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}));
  SetU32(meta, a + ".expert_count", FindParam(hparams, {"num_local_experts", "num_experts", "n_routed_experts"}));
  SetU32(meta, a + ".expert_used_count",
         FindParam(hparams, {"num_experts_per_tok", "num_experts_per_token", "top_k_experts"}));
  SetU32(meta, a + ".expert_group_count", FindParam(hparams, {"n_group"}));
  SetU32(meta, a + ".expert_group_used_count", FindParam(hparams, {"topk_group"}));
  const Json& gating = FindParam(hparams, {"score_function", "scoring_func", "score_func", "moe_router_activation",
                                           "moe_router_activation_func", "expert_selection_fn"});
  if (!gating.is_null()) {
    static const std::map<std::string, uint32_t> kGating = {{"softmax", 1}, {"sigmoid", 2}, {"sqrtsoftplus", 3}};
    auto it = gating.is_string() ? kGating.find(gating.get<std::string>()) : kGating.end();
    if (it == kGating.end()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s/config.json: unsupported expert gating function %s", dir, gating.dump()));
    }
    meta.Set(GgufKv::U32(a + ".expert_gating_func", it->second));
  }
  if (const Json& head_dim = FindParam(hparams, {"head_dim"}); !head_dim.is_null()) {
    SetU32(meta, a + ".attention.key_length", head_dim);
    SetU32(meta, a + ".attention.value_length", head_dim);
  }
  meta.Set(GgufKv::U32("general.file_type", file_type));

  switch (arch.family) {
    case HfFamily::kLlama:
    case HfFamily::kMixtral: {
      SetU32(meta, a + ".vocab_size", FindParam(hparams, {"vocab_size"}));
      Json rope_dim = FindParam(hparams, {"head_dim"});
      if (rope_dim.is_null()) {
        const Json& hidden = FindParam(hparams, {"hidden_size"});
        const Json& heads = FindParam(hparams, {"num_attention_heads"});
        if (!hidden.is_number_integer() || !heads.is_number_integer() || heads.get<int64_t>() <= 0) {
          return absl::InvalidArgumentError(
              absl::StrFormat("%s/config.json: needs hidden_size and num_attention_heads", dir));
        }
        rope_dim = hidden.get<int64_t>() / heads.get<int64_t>();
      }
      SetU32(meta, a + ".rope.dimension_count", rope_dim);
      break;
    }
    case HfFamily::kQwen2:
    case HfFamily::kQwen3:
      if (HasFile(dir, "modules.json")) {
        return absl::UnimplementedError(
            absl::StrFormat("%s/modules.json: sentence-transformers embedding models are not supported", dir));
      }
      break;
    case HfFamily::kQwen3Moe:
      SetU32(meta, a + ".expert_feed_forward_length", FindParam(hparams, {"moe_intermediate_size"}));
      SetU32(meta, a + ".expert_shared_feed_forward_length", FindParam(hparams, {"shared_expert_intermediate_size"}));
      break;
  }
  return absl::OkStatus();
}

absl::Status AddVocabulary(const HfArchitecture& arch, const Json& hparams, const std::string& dir,
                           MetadataList& meta) {
  std::optional<int64_t> vocab_size;
  if (const Json& v = FindParam(hparams, {"vocab_size"}); v.is_number_integer()) vocab_size = v.get<int64_t>();
  if (!HasFile(dir, "tokenizer.model") && !HasFile(dir, "tokenizer.json")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: no tokenizer.model and no tokenizer.json: the tokenizer is part of the GGUF file", dir));
  }
  if (arch.family == HfFamily::kQwen3Moe) return AddBytePairVocab(dir, vocab_size, meta);
  if (arch.family == HfFamily::kLlama || arch.family == HfFamily::kMixtral) {
    QF_ASSIGN_OR_RETURN(std::optional<Json> config, ReadJsonFile(dir, "tokenizer_config.json"));
    if (config && config->is_object()) {
      if (auto it = config->find("add_prefix_space"); it != config->end() && !it->is_null()) {
        meta.Set(GgufKv::Bool("tokenizer.ggml.add_space_prefix", it->is_boolean() ? it->get<bool>() : true));
      }
    }
  }
  const bool llama = arch.family == HfFamily::kLlama || arch.family == HfFamily::kMixtral;
  absl::Status spm = AddSentencePieceVocab(dir, vocab_size, meta);
  if (spm.ok() && llama && vocab_size == 49152) meta.Set(GgufKv::Bool("tokenizer.ggml.add_bos_token", false));
  if (!absl::IsNotFound(spm)) return spm;
  if (llama) {
    // A SentencePiece-style BPE in tokenizer.json (byte fallback) goes
    // through transformers in the converter; not read here yet.
    QF_ASSIGN_OR_RETURN(std::optional<Json> tokenizer, ReadJsonFile(dir, "tokenizer.json"));
    if (tokenizer) {
      const Json& model = (*tokenizer)["model"];
      if (model.is_object() && model.value("type", "") == "BPE" && model.value("byte_fallback", false)) {
        return absl::UnimplementedError(absl::StrFormat(
            "%s/tokenizer.json: a byte-fallback (SentencePiece-style) BPE tokenizer without tokenizer.model is not "
            "supported yet",
            dir));
      }
    }
  }
  QF_RETURN_IF_ERROR(AddBytePairVocab(dir, vocab_size, meta));
  if (llama && vocab_size == 49152) meta.Set(GgufKv::Bool("tokenizer.ggml.add_bos_token", false));
  return absl::OkStatus();
}

}  // namespace quantfleet
