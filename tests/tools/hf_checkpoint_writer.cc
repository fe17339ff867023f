#include "tests/tools/hf_checkpoint_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/half.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/tools/safetensors_writer.h"

namespace quantfleet {
namespace {

using Json = nlohmann::ordered_json;

// Llama 3's and Qwen2's pre-tokenizer patterns as their tokenizer.json
// files give them.
constexpr char kLlama3Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kQwen2Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const GgufKv* Kv(const GgufModel& m, const std::string& key) { return FindKv(m.kv(), key); }

std::optional<int64_t> Int(const GgufModel& m, const std::string& key) {
  const GgufKv* kv = Kv(m, key);
  return kv ? kv->GetIntElement(0) : std::nullopt;
}

std::optional<float> Float(const GgufModel& m, const std::string& key) {
  const GgufKv* kv = Kv(m, key);
  if (!kv || kv->type != GgufValueType::kFloat32 || kv->is_array) return std::nullopt;
  float v;
  std::memcpy(&v, kv->raw.data(), 4);
  return v;
}

std::vector<float> Values(const ModelTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.info.n_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h;
    switch (t.info.type) {
      case GgmlType::kF32:
        std::memcpy(&v[i], t.data + 4 * i, 4);
        break;
      case GgmlType::kF16:
        std::memcpy(&h, t.data + 2 * i, 2);
        v[i] = HalfToFloat(h);
        break;
      default:
        std::memcpy(&h, t.data + 2 * i, 2);
        v[i] = BFloat16ToFloat(h);
        break;
    }
  }
  return v;
}

std::string Encode(const std::vector<float>& v, const std::string& dtype) {
  std::string out;
  if (dtype == "F32") {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  out.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = dtype == "F16" ? FloatToHalf(v[i]) : FloatToBFloat16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

// GGUF row order to the checkpoint's rotary order (undoes the converter's
// permutation).
std::vector<float> UnpermuteRows(const std::vector<float>& v, int64_t rows, int64_t cols, int heads) {
  std::vector<float> out(v.size());
  const int64_t d = rows / heads;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < d / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t gguf_row = h * d + 2 * i + j, hf_row = h * d + j * (d / 2) + i;
        std::memcpy(&out[static_cast<size_t>(hf_row * cols)], &v[static_cast<size_t>(gguf_row * cols)],
                    static_cast<size_t>(cols) * sizeof(float));
      }
    }
  }
  return out;
}

const std::map<std::string, std::string> kLayerNames = {
    {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"}};

// The SentencePiece model of the GGUF's "llama" vocabulary.
std::string SentencePieceModel(const GgufModel& m) {
  auto varint = [](uint64_t v, std::string* out) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      if (v) b |= 0x80;
      out->push_back(static_cast<char>(b));
    } while (v);
  };
  auto field = [&](int number, int wire, std::string* out) { varint(static_cast<uint64_t>(number) << 3 | wire, out); };
  auto bytes = [&](int number, const std::string& s, std::string* out) {
    field(number, 2, out);
    varint(s.size(), out);
    *out += s;
  };
  const GgufKv* tokens = Kv(m, "tokenizer.ggml.tokens");
  const GgufKv* scores = Kv(m, "tokenizer.ggml.scores");
  const GgufKv* types = Kv(m, "tokenizer.ggml.token_type");
  std::string model;
  for (size_t i = 0; i < tokens->strings.size(); ++i) {
    std::string piece;
    bytes(1, tokens->strings[i], &piece);
    field(2, 5, &piece);
    piece.append(reinterpret_cast<const char*>(scores->raw.data()) + 4 * i, 4);
    int32_t type;
    std::memcpy(&type, types->raw.data() + 4 * i, 4);
    field(3, 0, &piece);
    varint(static_cast<uint64_t>(type), &piece);
    bytes(1, piece, &model);
  }
  std::string trainer;
  field(3, 0, &trainer), varint(2, &trainer);  // BPE
  field(4, 0, &trainer), varint(tokens->strings.size(), &trainer);
  field(35, 0, &trainer), varint(1, &trainer);  // byte fallback
  field(40, 0, &trainer), varint(0, &trainer);
  field(41, 0, &trainer), varint(1, &trainer);
  field(42, 0, &trainer), varint(2, &trainer);
  field(43, 0, &trainer), varint(static_cast<uint64_t>(int64_t{-1}), &trainer);
  bytes(2, trainer, &model);
  std::string normalizer;
  bytes(1, "identity", &normalizer);
  field(3, 0, &normalizer), varint(1, &normalizer);
  field(4, 0, &normalizer), varint(0, &normalizer);
  field(5, 0, &normalizer), varint(1, &normalizer);
  bytes(3, normalizer, &model);
  return model;
}

// tokenizer.json for the GGUF's "gpt2" vocabulary (Llama 3 or Qwen2 style).
Json BytePairTokenizer(const GgufModel& m, bool llama3) {
  const GgufKv* tokens = Kv(m, "tokenizer.ggml.tokens");
  const GgufKv* types = Kv(m, "tokenizer.ggml.token_type");
  const GgufKv* merges = Kv(m, "tokenizer.ggml.merges");
  Json vocab = Json::object(), added = Json::array();
  for (size_t i = 0; i < tokens->strings.size(); ++i) {
    int32_t type;
    std::memcpy(&type, types->raw.data() + 4 * i, 4);
    if (type == 3 || type == 4) {
      added.push_back({{"id", i},
                       {"content", tokens->strings[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == 3}});
    } else {
      vocab[tokens->strings[i]] = i;
    }
  }
  Json merge_list = Json::array();
  for (const std::string& merge : merges->strings) {
    if (llama3) {
      std::vector<std::string> pair = absl::StrSplit(merge, absl::MaxSplits(' ', 1));
      merge_list.push_back(pair);
    } else {
      merge_list.push_back(merge);
    }
  }
  Json pre = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"},
                 {"pattern", {{"Regex", llama3 ? kLlama3Pattern : kQwen2Pattern}}},
                 {"behavior", "Isolated"},
                 {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  Json post;
  if (llama3) {
    const std::string bos = tokens->strings[static_cast<size_t>(*Int(m, "tokenizer.ggml.bos_token_id"))];
    const int64_t bos_id = *Int(m, "tokenizer.ggml.bos_token_id");
    auto special = [&bos](int type_id) { return Json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}}; };
    auto sequence = [](const char* id, int type_id) { return Json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
    Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    Json bos_entry = {{"id", bos}, {"ids", Json::array({bos_id})}, {"tokens", Json::array({bos})}};
    Json template_processing = {{"type", "TemplateProcessing"},
                                {"single", Json::array({special(0), sequence("A", 0)})},
                                {"pair", Json::array({special(0), sequence("A", 0), special(1), sequence("B", 1)})},
                                {"special_tokens", Json::object({{bos, bos_entry}})}};
    post = {{"type", "Sequence"}, {"processors", Json::array({byte_level, template_processing})}};
  } else {
    post = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", llama3 ? Json(nullptr) : Json({{"type", "NFC"}})},
          {"pre_tokenizer", pre},
          {"post_processor", post},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", llama3},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return out.good() ? absl::OkStatus() : absl::InternalError(absl::StrFormat("cannot write %s", path));
}

}  // namespace

absl::Status WriteHfCheckpoint(const std::string& gguf_path, const std::string& dir, const HfCheckpointSpec& spec) {
  QF_ASSIGN_OR_RETURN(GgufModel m, GgufModel::Open(gguf_path));
  const std::string arch = *Kv(m, "general.architecture")->GetString();
  auto key = [&arch](const char* k) { return arch + "." + k; };
  const int64_t n_head = Int(m, key("attention.head_count")).value_or(0);
  const int64_t n_head_kv = Int(m, key("attention.head_count_kv")).value_or(n_head);
  const int64_t n_expert = Int(m, key("expert_count")).value_or(0);
  const bool permute = arch == "llama";
  std::vector<TestSafetensor> tensors;
  for (const ModelTensor& t : m.tensors()) {
    std::string name = t.info.name;
    if (spec.drop_output && name == "output.weight") continue;
    std::vector<float> values = Values(t);
    std::vector<int64_t> shape;
    for (int d = t.info.n_dims() - 1; d >= 0; --d) shape.push_back(t.info.ne[d]);
    std::string suffix = absl::EndsWith(name, ".bias") ? ".bias" : ".weight";
    std::string base = name.substr(0, name.size() - suffix.size());
    std::string hf;
    if (base == "token_embd") {
      hf = "model.embed_tokens";
    } else if (base == "output_norm") {
      hf = "model.norm";
    } else if (base == "output") {
      hf = "lm_head";
    } else {
      std::vector<std::string> parts = absl::StrSplit(base, absl::MaxSplits('.', 2));
      const std::string layer = "model.layers." + parts[1] + ".";
      const std::string kind = parts[2];
      if (kind == "ffn_gate_inp") {
        hf = layer + (arch == "llama" ? "block_sparse_moe.gate" : "mlp.gate");
      } else if (absl::EndsWith(kind, "_exps")) {
        const std::string proj = kind.substr(4, kind.size() - 9);  // gate, up, down
        const std::map<std::string, std::string> mixtral = {{"gate", "w1"}, {"down", "w2"}, {"up", "w3"}};
        const int64_t rows = t.info.ne[1], cols = t.info.ne[0];
        for (int64_t e = 0; e < n_expert; ++e) {
          std::vector<float> one(values.begin() + e * rows * cols, values.begin() + (e + 1) * rows * cols);
          const std::string expert_name =
              arch == "llama" ? absl::StrFormat("%sblock_sparse_moe.experts.%d.%s.weight", layer, e, mixtral.at(proj))
                              : absl::StrFormat("%smlp.experts.%d.%s_proj.weight", layer, e, proj);
          tensors.push_back({expert_name, spec.dtype, {rows, cols}, Encode(one, spec.dtype)});
        }
        continue;
      } else {
        auto it = kLayerNames.find(kind);
        if (it == kLayerNames.end()) return absl::InvalidArgumentError("no checkpoint name for " + name);
        hf = layer + it->second;
      }
      if (permute && (kind == "attn_q" || kind == "attn_k")) {
        const int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1;
        values = UnpermuteRows(values, rows, cols, static_cast<int>(kind == "attn_q" ? n_head : n_head_kv));
      }
    }
    // Biases stay F32 as checkpoints usually keep them; the rest follows the dtype.
    const std::string dtype = suffix == ".bias" ? "F32" : spec.dtype;
    tensors.push_back({hf + suffix, dtype, shape, Encode(values, dtype)});
  }

  std::string architecture = spec.architecture;
  if (architecture.empty()) {
    if (arch == "llama") architecture = n_expert > 1 ? "MixtralForCausalLM" : "LlamaForCausalLM";
    if (arch == "qwen2") architecture = "Qwen2ForCausalLM";
    if (arch == "qwen3") architecture = "Qwen3ForCausalLM";
    if (arch == "qwen3moe") architecture = "Qwen3MoeForCausalLM";
  }
  const int64_t n_embd = *Int(m, key("embedding_length"));
  const GgufKv* tokens = Kv(m, "tokenizer.ggml.tokens");
  Json config = {{"architectures", {architecture}},
                 {"model_type", arch == "llama" ? (n_expert > 1 ? "mixtral" : "llama") : arch},
                 {"hidden_size", n_embd},
                 {"intermediate_size", *Int(m, key("feed_forward_length"))},
                 {"num_attention_heads", n_head},
                 {"num_hidden_layers", *Int(m, key("block_count"))},
                 {"num_key_value_heads", n_head_kv},
                 {"max_position_embeddings", Int(m, key("context_length")).value_or(2048)},
                 {"rms_norm_eps", Float(m, key("attention.layer_norm_rms_epsilon")).value_or(1e-5f)},
                 {"rope_theta", Float(m, key("rope.freq_base")).value_or(10000.f)},
                 {"vocab_size", tokens->strings.size()},
                 {"tie_word_embeddings", spec.drop_output},
                 {"hidden_act", "silu"},
                 {"torch_dtype", spec.dtype == "BF16"  ? "bfloat16"
                                 : spec.dtype == "F16" ? "float16"
                                                       : "float32"},
                 {"transformers_version", "4.46.0"}};
  if (arch == "qwen3" || arch == "qwen3moe") config["head_dim"] = n_embd / n_head;
  if (n_expert > 1) {
    config[arch == "llama" ? "num_local_experts" : "num_experts"] = n_expert;
    config["num_experts_per_tok"] = Int(m, key("expert_used_count")).value_or(2);
    if (arch == "qwen3moe") config["moe_intermediate_size"] = *Int(m, key("feed_forward_length"));
  }
  if (spec.llama3_rope) {
    config["rope_scaling"] = {{"factor", 8.0},
                              {"high_freq_factor", 4.0},
                              {"low_freq_factor", 1.0},
                              {"original_max_position_embeddings", 8192},
                              {"rope_type", "llama3"}};
    config["rope_theta"] = 500000.0;
  }
  if (std::optional<int64_t> bos = Int(m, "tokenizer.ggml.bos_token_id")) config["bos_token_id"] = *bos;
  if (std::optional<int64_t> eos = Int(m, "tokenizer.ggml.eos_token_id")) config["eos_token_id"] = *eos;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  QF_RETURN_IF_ERROR(WriteTestCheckpoint(dir, config.dump(2), tensors, spec.shards));

  const std::string model = *Kv(m, "tokenizer.ggml.model")->GetString();
  Json tokenizer_config = Json::object();
  auto token_text = [&](const char* k) -> Json {
    std::optional<int64_t> id = Int(m, k);
    return id ? Json(tokens->strings[static_cast<size_t>(*id)]) : Json(nullptr);
  };
  if (model == "llama") {
    QF_RETURN_IF_ERROR(WriteFile(dir + "/tokenizer.model", SentencePieceModel(m)));
    tokenizer_config = {{"add_bos_token", true},
                        {"add_eos_token", false},
                        {"bos_token", token_text("tokenizer.ggml.bos_token_id")},
                        {"eos_token", token_text("tokenizer.ggml.eos_token_id")},
                        {"unk_token", token_text("tokenizer.ggml.unknown_token_id")},
                        {"legacy", false},
                        {"tokenizer_class", "LlamaTokenizer"}};
  } else {
    const bool llama3 = *Kv(m, "tokenizer.ggml.pre")->GetString() == "llama-bpe";
    QF_RETURN_IF_ERROR(WriteFile(dir + "/tokenizer.json", BytePairTokenizer(m, llama3).dump(2)));
    tokenizer_config = {{"bos_token", llama3 ? token_text("tokenizer.ggml.bos_token_id") : Json(nullptr)},
                        {"eos_token", token_text("tokenizer.ggml.eos_token_id")},
                        {"clean_up_tokenization_spaces", true},
                        {"model_max_length", 131072},
                        {"tokenizer_class", llama3 ? "PreTrainedTokenizerFast" : "Qwen2Tokenizer"}};
    if (!llama3) tokenizer_config["pad_token"] = token_text("tokenizer.ggml.eos_token_id");
  }
  if (spec.chat_template) {
    tokenizer_config["chat_template"] =
        "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}";
  }
  QF_RETURN_IF_ERROR(WriteFile(dir + "/tokenizer_config.json", tokenizer_config.dump(2)));
  if (!spec.model_card.empty()) QF_RETURN_IF_ERROR(WriteFile(dir + "/README.md", spec.model_card));
  if (spec.generation_config) {
    Json generation = {{"bos_token_id", config.value("bos_token_id", 1)},
                       {"do_sample", true},
                       {"temperature", 0.6},
                       {"top_p", 0.9},
                       {"transformers_version", "4.46.0"}};
    QF_RETURN_IF_ERROR(WriteFile(dir + "/generation_config.json", generation.dump(2)));
  }
  return absl::OkStatus();
}

}  // namespace quantfleet
