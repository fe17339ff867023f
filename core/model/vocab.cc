#include "core/model/vocab.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

std::optional<bool> GetBool(const std::vector<GgufKv>& kv, std::string_view key) {
  const GgufKv* v = FindKv(kv, key);
  if (v == nullptr || v->is_array || v->type != GgufValueType::kBool || v->raw.size() != 1) return std::nullopt;
  return v->raw[0] != 0;
}

std::optional<TokenId> GetId(const std::vector<GgufKv>& kv, std::string_view key) {
  const GgufKv* v = FindKv(kv, key);
  if (v == nullptr || v->is_array) return std::nullopt;
  std::optional<int64_t> id = v->GetIntElement(0);
  if (!id) return std::nullopt;
  return static_cast<TokenId>(*id);
}

uint32_t AttributesOf(TokenType type) {
  switch (type) {
    case TokenType::kUnknown:
      return kAttrUnknown;
    case TokenType::kNormal:
      return kAttrNormal;
    case TokenType::kControl:
      return kAttrControl;
    case TokenType::kUserDefined:
      return kAttrUserDefined;
    case TokenType::kUnused:
      return kAttrUnused;
    case TokenType::kByte:
      return kAttrByte;
    case TokenType::kUndefined:
      return 0;
  }
  return 0;
}

// Texts llama.cpp treats as control tokens whatever their type says (end of
// turn or generation, fill-in-the-middle), so the tokenizer does too.
constexpr const char* kEndOfGeneration[] = {"<|eot_id|>",
                                            "<|im_end|>",
                                            "<|end|>",
                                            "<|return|>",
                                            "<|call|>",
                                            "<|flush|>",
                                            "<|calls|>",
                                            "<end_of_turn>",
                                            "<|endoftext|>",
                                            "</s>",
                                            "<|eom_id|>",
                                            "<EOT>",
                                            "_<EOT>",
                                            "[EOT]",
                                            "[EOS]",
                                            "<|end_of_text|>",
                                            "<end_of_utterance>",
                                            "<eos>",
                                            "<turn|>",
                                            "<|tool_response>",
                                            "<｜end▁of▁sentence｜>",
                                            "[e~["};
// Fill-in-the-middle texts by the metadata key that, when present, names
// the token instead.
const std::vector<std::pair<const char*, std::vector<const char*>>>& FillInTheMiddle() {
  static const auto* table = new std::vector<std::pair<const char*, std::vector<const char*>>>{
      {"tokenizer.ggml.fim_pre_token_id",
       {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
        "<|prefix|>"}},
      {"tokenizer.ggml.fim_suf_token_id",
       {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
        "<|suffix|>"}},
      {"tokenizer.ggml.fim_mid_token_id",
       {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
        "<|middle|>"}},
      {"tokenizer.ggml.fim_pad_token_id", {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
      {"tokenizer.ggml.fim_rep_token_id", {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {"tokenizer.ggml.fim_sep_token_id", {"<|file_sep|>"}},
  };
  return *table;
}

}  // namespace

void Vocab::AdjustAttributes(const std::vector<GgufKv>& kv) {
  auto promote = [this](const std::string& text) {
    if (TokenId id = Find(text); id != kNoToken) attrs_[static_cast<size_t>(id)] |= kAttrControl;
  };
  for (const char* text : kEndOfGeneration) promote(text);
  for (const auto& [key, texts] : FillInTheMiddle()) {
    if (FindKv(kv, key) != nullptr) continue;
    for (const char* text : texts) promote(text);
  }
  // Chat-format markers that are always rendered (gpt-oss).
  for (const char* text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    if (TokenId id = Find(text); id != kNoToken) attrs_[static_cast<size_t>(id)] = kAttrUserDefined;
  }
  // Where "<|end|>" only ends a message (gpt-oss, solar-open), it is text.
  const bool ends_message =
      Find("<|end|>") != kNoToken && ((Find("<|return|>") != kNoToken && Find("<|call|>") != kNoToken) ||
                                      (Find("<|calls|>") != kNoToken && Find("<|flush|>") != kNoToken));
  if (ends_message) attrs_[static_cast<size_t>(Find("<|end|>"))] = kAttrUserDefined;
}

void Vocab::AdjustStripping(const std::vector<GgufKv>& kv) {
  const GgufKv* name_kv = FindKv(kv, "general.name");
  std::string name = name_kv != nullptr && name_kv->GetString() ? *name_kv->GetString() : "";
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  // Phi-3 drops the white space after its special tokens, except these.
  for (TokenId id : special_) attrs_[static_cast<size_t>(id)] |= kAttrRightStrip;
  if (TokenId id = Find("</s>"); id != kNoToken) attrs_[static_cast<size_t>(id)] |= kAttrRightStrip;
  for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) {
    if (TokenId id = Find(text); id != kNoToken) attrs_[static_cast<size_t>(id)] &= ~kAttrRightStrip;
  }
}

absl::StatusOr<Vocab> Vocab::FromGguf(const std::vector<GgufKv>& kv, std::string_view file) {
  auto bad = [&](std::string_view key, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s %s", file, key, what));
  };
  Vocab v;
  const GgufKv* model = FindKv(kv, "tokenizer.ggml.model");
  if (model == nullptr || !model->GetString())
    return bad("tokenizer.ggml.model", "is missing (no tokenizer in this file)");
  const std::string model_name = *model->GetString();
  const GgufKv* pre = FindKv(kv, "tokenizer.ggml.pre");
  const std::string pre_name = pre != nullptr && pre->GetString() ? *pre->GetString() : "";

  const GgufKv* tokens = FindKv(kv, "tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array || tokens->type != GgufValueType::kString || tokens->strings.empty()) {
    return bad("tokenizer.ggml.tokens", "is missing or not an array of strings");
  }
  v.tokens_ = tokens->strings;
  const size_t n = v.tokens_.size();
  if (const GgufKv* scores = FindKv(kv, "tokenizer.ggml.scores"); scores != nullptr) {
    if (!scores->is_array || scores->type != GgufValueType::kFloat32 || scores->size() != n) {
      return bad("tokenizer.ggml.scores", absl::StrFormat("must be %d float32 values", n));
    }
    v.scores_.resize(n);
    std::memcpy(v.scores_.data(), scores->raw.data(), n * sizeof(float));
  }
  v.attrs_.assign(n, kAttrNormal);
  if (const GgufKv* types = FindKv(kv, "tokenizer.ggml.token_type"); types != nullptr) {
    if (!types->is_array || types->size() != n) {
      return bad("tokenizer.ggml.token_type", absl::StrFormat("must be %d integers", n));
    }
    for (size_t i = 0; i < n; ++i) {
      std::optional<int64_t> t = types->GetIntElement(i);
      if (!t || *t < 0 || *t > 6) return bad("tokenizer.ggml.token_type", absl::StrFormat("has a bad type at %d", i));
      v.attrs_[i] = AttributesOf(static_cast<TokenType>(*t));
    }
  }
  for (size_t i = 0; i < n; ++i) v.by_text_[v.tokens_[i]] = static_cast<TokenId>(i);  // the last one wins

  if (model_name == "llama") {
    v.type_ = VocabType::kSentencePiece;
    v.bos_ = 1;
    v.eos_ = 2;
    v.add_bos_ = true;
    v.add_space_prefix_ = true;
  } else if (model_name == "gpt2") {
    v.type_ = VocabType::kBytePairs;
    v.bos_ = 11;
    v.eos_ = 11;
    if (pre_name.empty() || pre_name == "default" || pre_name == "gpt-2") {
      v.pre_ = PreTokenizer::kGpt2;
    } else if (pre_name == "llama-bpe" || pre_name == "llama3" || pre_name == "llama-v3") {
      v.pre_ = PreTokenizer::kLlama3;
      v.ignore_merges_ = true;
      v.add_bos_ = true;
    } else if (pre_name == "qwen2") {
      v.pre_ = PreTokenizer::kQwen2;
    } else {
      return absl::UnimplementedError(absl::StrFormat(
          "%s: pre-tokenizer '%s' is not supported yet (supported: default, gpt-2, llama-bpe, qwen2)", file, pre_name));
    }
    const GgufKv* merges = FindKv(kv, "tokenizer.ggml.merges");
    if (merges == nullptr || !merges->is_array || merges->type != GgufValueType::kString) {
      return bad("tokenizer.ggml.merges", "is missing or not an array of strings");
    }
    for (size_t i = 0; i < merges->strings.size(); ++i) {
      const std::string& m = merges->strings[i];
      const size_t space = m.find(' ', 1);
      std::pair<std::string, std::string> pair;
      if (space != std::string::npos) pair = {m.substr(0, space), m.substr(space + 1)};
      v.merge_ranks_.emplace(std::move(pair), static_cast<int>(i));  // the first one wins
    }
  } else {
    return absl::UnimplementedError(
        absl::StrFormat("%s: tokenizer model '%s' is not supported yet (supported: llama, gpt2)", file, model_name));
  }

  if (std::optional<TokenId> id = GetId(kv, "tokenizer.ggml.bos_token_id")) v.bos_ = *id;
  if (std::optional<TokenId> id = GetId(kv, "tokenizer.ggml.eos_token_id")) v.eos_ = *id;
  if (std::optional<bool> b = GetBool(kv, "tokenizer.ggml.add_bos_token")) v.add_bos_ = *b;
  if (std::optional<bool> b = GetBool(kv, "tokenizer.ggml.add_eos_token")) v.add_eos_ = *b;
  if (v.type_ == VocabType::kSentencePiece) {
    if (std::optional<bool> b = GetBool(kv, "tokenizer.ggml.add_space_prefix")) v.add_space_prefix_ = *b;
  }
  for (TokenId id : {v.bos_, v.eos_}) {
    if (id != kNoToken && (id < 0 || static_cast<size_t>(id) >= n)) {
      return bad("tokenizer.ggml.bos_token_id/eos_token_id", absl::StrFormat("names token %d of %d", id, n));
    }
  }
  if (v.add_bos_ && v.bos_ == kNoToken) return bad("tokenizer.ggml.add_bos_token", "is set but there is no BOS token");
  if (v.add_eos_ && v.eos_ == kNoToken) return bad("tokenizer.ggml.add_eos_token", "is set but there is no EOS token");

  v.AdjustAttributes(kv);
  for (size_t i = 0; i < n; ++i) {
    if (v.attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_.push_back(static_cast<TokenId>(i));
  }
  std::stable_sort(v.special_.begin(), v.special_.end(),
                   [&v](TokenId a, TokenId b) { return v.text(a).size() > v.text(b).size(); });
  v.AdjustStripping(kv);
  return v;
}

TokenId Vocab::Find(std::string_view text) const {
  auto it = by_text_.find(std::string(text));
  return it == by_text_.end() ? kNoToken : it->second;
}

int Vocab::MergeRank(const std::string& left, const std::string& right) const {
  auto it = merge_ranks_.find({left, right});
  return it == merge_ranks_.end() ? -1 : it->second;
}

}  // namespace quantfleet
