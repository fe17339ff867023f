// A model's tokenizer vocabulary as its GGUF metadata describes it
// (tokenizer.ggml.*): the tokens with their scores and types, the BPE
// merges, the special tokens and the rules for adding BOS/EOS, with
// llama.cpp's defaults where a key is absent.
//
// Thread-safety: immutable after FromGguf; share freely.
#ifndef QUANTFLEET_CORE_MODEL_VOCAB_H_
#define QUANTFLEET_CORE_MODEL_VOCAB_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_value.h"

namespace quantfleet {

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

enum class VocabType {
  kSentencePiece,  // tokenizer.ggml.model = "llama": scored merges, byte fallback <0xXX>
  kBytePairs,      // tokenizer.ggml.model = "gpt2": ranked merges over GPT-2 byte encoding
};

// The pre-tokenizer (word splitting) a byte-pair vocabulary uses.
enum class PreTokenizer {
  kNone,    // SentencePiece vocabularies
  kGpt2,    // "default", "gpt-2"
  kLlama3,  // "llama-bpe", "llama3", "llama-v3"
  kQwen2,   // "qwen2"
};

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Token attributes as llama.cpp derives them: from the token type, then
// adjusted by its rules for control-looking texts and some model families.
enum TokenAttr : uint32_t {
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLeftStrip = 1u << 7,   // white space before it in the text is dropped
  kAttrRightStrip = 1u << 8,  // white space after it in the text is dropped
};

class Vocab {
 public:
  // Reads the tokenizer from metadata. INVALID_ARGUMENT names `file` and
  // the key for a missing or malformed entry; UNIMPLEMENTED for tokenizer
  // models and pre-tokenizers not supported yet.
  static absl::StatusOr<Vocab> FromGguf(const std::vector<GgufKv>& kv, std::string_view file);

  VocabType type() const { return type_; }
  PreTokenizer pre_tokenizer() const { return pre_; }
  size_t size() const { return tokens_.size(); }
  const std::string& text(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
  float score(TokenId id) const { return scores_.empty() ? 0.0f : scores_[static_cast<size_t>(id)]; }
  uint32_t attributes(TokenId id) const { return attrs_[static_cast<size_t>(id)]; }

  // The token whose text is exactly `text`, or kNoToken.
  TokenId Find(std::string_view text) const;
  // The rank of merging `left` and `right`, or -1 when they do not merge.
  int MergeRank(const std::string& left, const std::string& right) const;

  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // Byte-pair words that are tokens themselves skip the merges (Llama 3).
  bool ignore_merges() const { return ignore_merges_; }
  // Control, user-defined and unknown tokens, longest text first: matched
  // in raw text before tokenizing (control and unknown only when parsing
  // special tokens).
  const std::vector<TokenId>& special_tokens() const { return special_; }

 private:
  void AdjustAttributes(const std::vector<GgufKv>& kv);
  void AdjustStripping(const std::vector<GgufKv>& kv);

  VocabType type_ = VocabType::kSentencePiece;
  PreTokenizer pre_ = PreTokenizer::kNone;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  std::unordered_map<std::string, TokenId> by_text_;
  std::map<std::pair<std::string, std::string>, int> merge_ranks_;
  std::vector<TokenId> special_;
  TokenId bos_ = kNoToken;
  TokenId eos_ = kNoToken;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool ignore_merges_ = false;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_VOCAB_H_
