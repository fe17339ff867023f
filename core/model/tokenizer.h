// Turns text into token ids exactly as llama.cpp's llama_tokenize does for
// the same vocabulary: special tokens matched in the raw text first, then
// SentencePiece-style merging by score (with byte fallback) or byte-level
// BPE merging by rank within pre-tokenized words, and BOS/EOS as the
// vocabulary asks.
//
// Thread-safety: Tokenize is const and may be called from several threads.
#ifndef QUANTFLEET_CORE_MODEL_TOKENIZER_H_
#define QUANTFLEET_CORE_MODEL_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/pre_tokenizer.h"
#include "core/model/vocab.h"

namespace quantfleet {

class Tokenizer {
 public:
  static absl::StatusOr<Tokenizer> Create(std::shared_ptr<const Vocab> vocab);

  // `add_special`: BOS/EOS where the vocabulary adds them. `parse_special`:
  // control tokens written in the text ("<|eot_id|>") become those tokens;
  // otherwise they are plain text (user-defined tokens always match).
  std::vector<TokenId> Tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The text token `id` stands for: GPT-2 byte encoding undone, U+2581
  // back to a space, <0xXX> to its byte; control tokens as written.
  std::string Piece(TokenId id) const;

  const Vocab& vocab() const { return *vocab_; }

 private:
  Tokenizer(std::shared_ptr<const Vocab> vocab, std::shared_ptr<const PreTokenizerRegex> regex)
      : vocab_(std::move(vocab)), regex_(std::move(regex)) {}

  void SentencePiece(const std::string& text, std::vector<TokenId>* out) const;
  void BytePairs(std::string_view text, std::vector<TokenId>* out) const;

  std::shared_ptr<const Vocab> vocab_;
  std::shared_ptr<const PreTokenizerRegex> regex_;  // byte-pair vocabularies only
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_TOKENIZER_H_
