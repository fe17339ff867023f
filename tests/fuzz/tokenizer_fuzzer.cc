// libFuzzer target: the tokenizers on arbitrary bytes (malformed UTF-8,
// control-token look-alikes, long runs), under ASan/UBSan. The vocabularies
// are GGUF files named in QUANTFLEET_FUZZ_VOCABS (colon-separated; the
// oracle's llama.cpp/models/ggml-vocab-*.gguf in scripts/test.sh), which
// cover SentencePiece and the byte-level BPE pre-tokenizers. The first input
// byte picks the vocabulary and the flags; every id returned must be in the
// vocabulary, and every piece of it printable back to bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/gguf/gguf_model.h"
#include "core/model/tokenizer.h"

namespace {

std::vector<quantfleet::Tokenizer>* tokenizers = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* list = std::getenv("QUANTFLEET_FUZZ_VOCABS");
  if (list == nullptr || *list == '\0') {
    std::fprintf(stderr, "tokenizer_fuzzer: set QUANTFLEET_FUZZ_VOCABS to GGUF vocabulary files (a:b:c)\n");
    std::exit(1);
  }
  tokenizers = new std::vector<quantfleet::Tokenizer>;
  for (absl::string_view path : absl::StrSplit(list, ':', absl::SkipEmpty())) {
    absl::StatusOr<quantfleet::GgufModel> file = quantfleet::GgufModel::Open(std::string(path));
    absl::StatusOr<quantfleet::Vocab> vocab =
        file.ok() ? quantfleet::Vocab::FromGguf(file->kv(), std::string_view(path.data(), path.size()))
                  : absl::StatusOr<quantfleet::Vocab>(file.status());
    absl::StatusOr<quantfleet::Tokenizer> t =
        vocab.ok() ? quantfleet::Tokenizer::Create(std::make_shared<const quantfleet::Vocab>(*std::move(vocab)))
                   : absl::StatusOr<quantfleet::Tokenizer>(vocab.status());
    if (!t.ok()) {
      std::fprintf(stderr, "tokenizer_fuzzer: %s\n", std::string(t.status().message()).c_str());
      std::exit(1);
    }
    tokenizers->push_back(*std::move(t));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const quantfleet::Tokenizer& tokenizer = (*tokenizers)[data[0] % tokenizers->size()];
  const bool add_special = (data[0] & 0x40) != 0;
  const bool parse_special = (data[0] & 0x80) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t n_vocab = tokenizer.vocab().size();
  for (quantfleet::TokenId id : tokenizer.Tokenize(text, add_special, parse_special)) {
    if (id < 0 || static_cast<size_t>(id) >= n_vocab) std::abort();
    (void)tokenizer.Piece(id);
  }
  return 0;
}
