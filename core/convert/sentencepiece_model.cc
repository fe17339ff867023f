#include "core/convert/sentencepiece_model.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

// Reads protobuf wire format from a byte range; every read is bounded.
class WireReader {
 public:
  WireReader(std::string_view bytes, size_t base, std::string_view path) : bytes_(bytes), base_(base), path_(path) {}

  bool done() const { return pos_ >= bytes_.size(); }
  size_t offset() const { return base_ + pos_; }

  absl::StatusOr<uint64_t> Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return Error("a varint runs past the end");
      const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return value;
    }
    return Error("a varint is longer than 10 bytes");
  }

  absl::StatusOr<std::string_view> Bytes(size_t n) {
    if (n > bytes_.size() - pos_) return Error(absl::StrFormat("a field of %d bytes runs past the end", n));
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  // Skips the value of a field of `wire_type`.
  absl::Status Skip(uint64_t wire_type) {
    switch (wire_type) {
      case 0:
        return Varint().status();
      case 1:
        return Bytes(8).status();
      case 2: {
        QF_ASSIGN_OR_RETURN(uint64_t n, Varint());
        return Bytes(n).status();
      }
      case 5:
        return Bytes(4).status();
      default:
        return Error(absl::StrFormat("wire type %d is not one protobuf has", wire_type));
    }
  }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a SentencePiece model: at byte %d, %s", path_, base_ + pos_, what));
  }

 private:
  std::string_view bytes_;
  size_t base_;
  std::string_view path_;
  size_t pos_ = 0;
};

absl::StatusOr<SentencePiece> ParsePiece(std::string_view bytes, size_t base, std::string_view path) {
  WireReader r(bytes, base, path);
  SentencePiece piece;
  while (!r.done()) {
    QF_ASSIGN_OR_RETURN(uint64_t tag, r.Varint());
    const uint64_t field = tag >> 3, wire = tag & 7;
    if (field == 1 && wire == 2) {
      QF_ASSIGN_OR_RETURN(uint64_t n, r.Varint());
      QF_ASSIGN_OR_RETURN(std::string_view s, r.Bytes(n));
      piece.piece = std::string(s);
    } else if (field == 2 && wire == 5) {
      QF_ASSIGN_OR_RETURN(std::string_view s, r.Bytes(4));
      std::memcpy(&piece.score, s.data(), 4);
    } else if (field == 3 && wire == 0) {
      QF_ASSIGN_OR_RETURN(uint64_t type, r.Varint());
      if (type < 1 || type > 6) return r.Error(absl::StrFormat("piece type %d is not one of 1..6", type));
      piece.type = static_cast<PieceType>(type);
    } else {
      QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  return piece;
}

}  // namespace

absl::StatusOr<std::vector<SentencePiece>> ParseSentencePieceModel(std::string_view bytes, std::string_view path) {
  WireReader r(bytes, 0, path);
  std::vector<SentencePiece> pieces;
  while (!r.done()) {
    QF_ASSIGN_OR_RETURN(uint64_t tag, r.Varint());
    const uint64_t field = tag >> 3, wire = tag & 7;
    if (field == 1 && wire == 2) {
      QF_ASSIGN_OR_RETURN(uint64_t n, r.Varint());
      const size_t at = r.offset();
      QF_ASSIGN_OR_RETURN(std::string_view body, r.Bytes(n));
      QF_ASSIGN_OR_RETURN(SentencePiece piece, ParsePiece(body, at, path));
      pieces.push_back(std::move(piece));
    } else {
      QF_RETURN_IF_ERROR(r.Skip(wire));
    }
  }
  if (pieces.empty()) return r.Error("the model has no pieces");
  return pieces;
}

}  // namespace quantfleet
