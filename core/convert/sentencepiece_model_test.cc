#include "core/convert/sentencepiece_model.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

std::string Piece(const std::string& text, int type) {
  std::string p = "\x0a" + std::string(1, static_cast<char>(text.size())) + text;
  p += std::string("\x15\x00\x00\x80\xbf", 5);  // score -1.0f
  p += "\x18" + std::string(1, static_cast<char>(type));
  return "\x0a" + std::string(1, static_cast<char>(p.size())) + p;
}

TEST(SentencePieceModel, ReadsPiecesAndSkipsOtherFields) {
  const std::string model = Piece("<unk>", 2) + std::string("\x12\x02\x18\x02", 4) + Piece("a", 1);
  absl::StatusOr<std::vector<SentencePiece>> pieces = ParseSentencePieceModel(model, "tokenizer.model");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 2u);
  EXPECT_EQ((*pieces)[0].piece, "<unk>");
  EXPECT_EQ((*pieces)[0].type, PieceType::kUnknown);
  EXPECT_EQ((*pieces)[0].score, -1.0f);
  EXPECT_EQ((*pieces)[1].piece, "a");
}

TEST(SentencePieceModel, RefusesMalformedModelsNamingTheOffset) {
  const std::string good = Piece("<unk>", 2);
  auto refused = [](const std::string& bytes, const std::string& want) {
    absl::StatusOr<std::vector<SentencePiece>> r = ParseSentencePieceModel(bytes, "dir/tokenizer.model");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("dir/tokenizer.model: not a SentencePiece model: at byte"), std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
  };
  refused(good.substr(0, good.size() - 3), "runs past the end");
  refused(Piece("x", 9), "piece type 9");
  refused(std::string("\x0f", 1), "wire type 7");
  refused(std::string("\x12\x00", 2), "no pieces");
  refused(std::string(11, '\xff'), "longer than 10 bytes");
}

}  // namespace
}  // namespace quantfleet
