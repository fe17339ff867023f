#include "core/model/tokenizer.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

std::shared_ptr<const Vocab> MakeVocab(const std::string& model, const std::vector<std::string>& tokens,
                                       const std::vector<float>& scores, const std::vector<int32_t>& types,
                                       const std::vector<std::string>& merges = {}, const std::string& pre = "") {
  std::vector<GgufKv> kv = {GgufKv::Str("tokenizer.ggml.model", model),
                            GgufKv::StrArray("tokenizer.ggml.tokens", tokens),
                            GgufKv::NumArray("tokenizer.ggml.scores", GgufValueType::kFloat32, scores),
                            GgufKv::NumArray("tokenizer.ggml.token_type", GgufValueType::kInt32, types),
                            GgufKv::U32("tokenizer.ggml.bos_token_id", 1),
                            GgufKv::U32("tokenizer.ggml.eos_token_id", 2)};
  if (!merges.empty()) kv.push_back(GgufKv::StrArray("tokenizer.ggml.merges", merges));
  if (!pre.empty()) kv.push_back(GgufKv::Str("tokenizer.ggml.pre", pre));
  absl::StatusOr<Vocab> v = Vocab::FromGguf(kv, "test.gguf");
  EXPECT_TRUE(v.ok()) << v.status();
  return std::make_shared<const Vocab>(*std::move(v));
}

TEST(Utf8Test, MalformedBytesBecomeReplacementCharactersOneByOne) {
  EXPECT_EQ(DecodeUtf8Lenient("a\xC3\xA9\xFF\xE2\x82"), (std::vector<uint32_t>{0x61, 0xE9, 0xFFFD, 0xFFFD, 0xFFFD}));
  std::string s;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u}) AppendUtf8(cp, &s);
  EXPECT_EQ(s, "$\xC2\xA2\xE2\x82\xAC\xF0\x90\x8D\x88");
}

TEST(TokenizerTest, SentencePieceMergesByScoreAndFallsBackToBytes) {
  // ids: 0 <unk>, 1 <s>, 2 </s>, 3 <0x7A>, 4 ▁, 5 a, 6 b, 7 ab, 8 ▁a, 9 ▁ab
  auto vocab = MakeVocab("llama",
                         {"<unk>", "<s>", "</s>", "<0x7A>", "\xE2\x96\x81", "a", "b", "ab",
                          "\xE2\x96\x81"
                          "a",
                          "\xE2\x96\x81"
                          "ab"},
                         {0, 0, 0, 0, -1, -2, -2, -3, -1, -0.5}, {2, 3, 3, 6, 1, 1, 1, 1, 1, 1});
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(vocab);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Tokenize("ab", true, false), (std::vector<TokenId>{1, 9}));
  EXPECT_EQ(t->Tokenize("ab z", false, false), (std::vector<TokenId>{9, 4, 3}));
  EXPECT_EQ(t->Piece(9), " ab");
  EXPECT_EQ(t->Piece(3), "z");
  // Control tokens are text unless parsed as special.
  EXPECT_EQ(t->Tokenize("a</s>", false, true), (std::vector<TokenId>{8, 2}));
}

TEST(TokenizerTest, BytePairsSplitWordsThenMergeByRank) {
  // GPT-2 byte encoding: ' ' is U+0120 (Ġ).
  const std::string sp = "\xC4\xA0";
  auto vocab = MakeVocab("gpt2", {"h", "i", "hi", sp, sp + "h", sp + "hi", "<|x|>", "!"}, {0, 0, 0, 0, 0, 0, 0, 0},
                         {1, 1, 1, 1, 1, 1, 4, 1}, {sp + " h", sp + "h i", "h i"}, "gpt-2");
  absl::StatusOr<Tokenizer> t = Tokenizer::Create(vocab);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Tokenize("hi hi", false, false), (std::vector<TokenId>{2, 5}));
  EXPECT_EQ(t->Piece(5), " hi");
  // User-defined tokens match even without parse_special.
  EXPECT_EQ(t->Tokenize("hi<|x|>!", false, false), (std::vector<TokenId>{2, 6, 7}));
}

TEST(PreTokenizerTest, Llama3SplitsLikeItsRegex) {
  absl::StatusOr<std::shared_ptr<const PreTokenizerRegex>> r = PreTokenizerRegex::Create(PreTokenizer::kLlama3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->Split("Hello  world's 12345\n\n"),
            (std::vector<std::string>{"Hello", " ", " world", "'s", " ", "123", "45", "\n\n"}));
}

TEST(VocabTest, UnsupportedAndMalformedVocabulariesAreNamed) {
  std::vector<GgufKv> kv = {GgufKv::Str("tokenizer.ggml.model", "t5"),
                            GgufKv::StrArray("tokenizer.ggml.tokens", {"a"})};
  absl::StatusOr<Vocab> v = Vocab::FromGguf(kv, "m.gguf");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(v.status().message().find("'t5'"), std::string::npos);
  kv = {GgufKv::Str("tokenizer.ggml.model", "gpt2"), GgufKv::StrArray("tokenizer.ggml.tokens", {"a"})};
  v = Vocab::FromGguf(kv, "m.gguf");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("m.gguf: tokenizer.ggml.merges"), std::string::npos);
  EXPECT_EQ(Vocab::FromGguf({}, "m.gguf").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quantfleet
