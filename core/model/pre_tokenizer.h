// Splits text into the words a byte-pair vocabulary merges within, with
// the regular expression of its pre-tokenizer (GPT-2, Llama 3, Qwen2),
// evaluated by PCRE2 on code points. UTF-8 is decoded as llama.cpp does:
// each byte that does not start a well-formed sequence becomes U+FFFD.
//
// Thread-safety: Split is const and may be called from several threads
// (each call uses its own match data).
#ifndef QUANTFLEET_CORE_MODEL_PRE_TOKENIZER_H_
#define QUANTFLEET_CORE_MODEL_PRE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/vocab.h"

namespace quantfleet {

// Code points of `utf8`; malformed bytes become U+FFFD one byte at a time.
std::vector<uint32_t> DecodeUtf8Lenient(std::string_view utf8);
void AppendUtf8(uint32_t code_point, std::string* out);

class PreTokenizerRegex {
 public:
  static absl::StatusOr<std::shared_ptr<const PreTokenizerRegex>> Create(PreTokenizer kind);
  ~PreTokenizerRegex();

  // The words of `text`, as UTF-8, in order; together they are `text`
  // (with malformed bytes replaced).
  std::vector<std::string> Split(std::string_view text) const;

 private:
  explicit PreTokenizerRegex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_32
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_PRE_TOKENIZER_H_
