// The pieces of a SentencePiece model file (`tokenizer.model`): a
// serialized `ModelProto` whose field 1 repeats `SentencePiece {piece = 1,
// score = 2, type = 3}`. Only the pieces are read; every other field is
// skipped by its wire type.
//
// The file is untrusted: truncated varints, lengths past the end, wire
// types that do not exist and piece types outside 1..6 are refused, naming
// the file and the byte offset.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_CORE_CONVERT_SENTENCEPIECE_MODEL_H_
#define QUANTFLEET_CORE_CONVERT_SENTENCEPIECE_MODEL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace quantfleet {

// SentencePiece's piece types (the enum of its model format).
enum class PieceType : int {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SentencePiece {
  std::string piece;
  float score = 0.f;
  PieceType type = PieceType::kNormal;
};

// The pieces of `bytes`, in id order. `path` only appears in errors.
absl::StatusOr<std::vector<SentencePiece>> ParseSentencePieceModel(std::string_view bytes, std::string_view path);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CONVERT_SENTENCEPIECE_MODEL_H_
