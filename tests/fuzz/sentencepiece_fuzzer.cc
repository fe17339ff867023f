// libFuzzer target: the SentencePiece model reader (a checkpoint's
// tokenizer.model) on arbitrary bytes, under ASan/UBSan. An accepted model
// has at least one piece, each of a type SentencePiece defines.
//
// QUANTFLEET_FUZZ_WRITE_SEED=FILE writes a small valid model there and
// exits (the corpus seed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/convert/sentencepiece_model.h"
#include "tests/fuzz/fuzz_seed.h"

namespace {

// Three pieces (<unk> unknown, <s> control, "a" normal) and a trainer spec
// field the reader skips.
std::string Seed() {
  auto piece = [](const std::string& text, int type) {
    std::string p = "\x0a" + std::string(1, static_cast<char>(text.size())) + text;
    p += std::string("\x15\x00\x00\x80\xbf", 5);  // score -1.0f
    p += "\x18" + std::string(1, static_cast<char>(type));
    return "\x0a" + std::string(1, static_cast<char>(p.size())) + p;
  };
  return piece("<unk>", 2) + piece("<s>", 3) + piece("a", 1) + std::string("\x12\x02\x18\x02", 4);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quantfleet::WriteSeedIfAsked(Seed);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<quantfleet::SentencePiece>> pieces =
      quantfleet::ParseSentencePieceModel(bytes, "fuzz/tokenizer.model");
  if (!pieces.ok()) return 0;
  if (pieces->empty()) std::abort();
  size_t total = 0;
  for (const quantfleet::SentencePiece& p : *pieces) {
    const int type = static_cast<int>(p.type);
    if (type < 1 || type > 6) std::abort();
    total += p.piece.size();
  }
  if (total > size) std::abort();  // every piece's text came from the input
  return 0;
}
