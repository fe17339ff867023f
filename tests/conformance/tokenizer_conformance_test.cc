// Our tokenizer against llama.cpp's llama_tokenize (through oracle-tokenize,
// built against the pinned libllama) on llama.cpp's own vocabulary files:
// their test inputs, hand-picked hard cases and seeded random text (mixed
// scripts, Unicode spaces, combining marks, emoji, malformed UTF-8), with
// and without special-token parsing. Every token id must be the same.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/gguf/gguf_model.h"
#include "core/model/pre_tokenizer.h"
#include "core/model/tokenizer.h"
#include "tests/conformance/oracle.h"
#include "tests/tools/subprocess.h"

namespace quantfleet {
namespace {

std::string VocabPath(const std::string& name) {
  return OracleDir() + "/llama.cpp/models/ggml-vocab-" + name + ".gguf";
}

std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "\\x%02X", c);
    }
  }
  return out;
}

std::vector<std::string> HandPicked() {
  return {
      "",
      " ",
      "  ",
      "\t",
      "\n",
      "\n\n\n",
      " \n \n",
      "Hello world",
      " Hello world",
      "Hello World!",
      "don't won't I'LL we'Ve THEY'RE it'S",
      "3.14159 and 1234567890 and ١٢٣ and ⅫⅣ",
      "    indented\tcode();\n\treturn x  ;  ",
      "a\u00a0b\u2003c\u3000d\u180ee\u2028f\u0085g",
      "naïve café résumé — “quotes” ‘single’ …",
      "Привет мир, Καλημέρα κόσμε",
      "日本語のテキストと中文文本。한국어 텍스트",
      "🦙🚀 emoji 👨‍👩‍👧‍👦 family 🇫🇷 flag",
      "e\u0301 combining n\u0303 marks",
      "<s> </s> <unk> <|begin_of_text|> <|eot_id|>",
      "<|im_start|>user\nhi<|im_end|>",
      "\xFF\xFE bad \x80 utf8 \xE2\x82 truncated \xC3",
      "\xF0\x9F\xA6",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "=================================================",
      "           many spaces           ",
      "\r\n\r\nwindows\r\nlines\r\n",
      "x\u200by\u200dz\ufeffw",
  };
}

// Seeded random text drawn from a pool that stresses pre-tokenizers.
std::vector<std::string> Random(int count, uint32_t seed) {
  static const std::vector<uint32_t> pool = {
      'a',    'b',    'Z',    'q',    '0',     '7',     '9',     ' ',    ' ',    ' ',   '\n',   '\t',   '\r',   '\'',
      '"',    '.',    ',',    '!',    '?',     '-',     '_',     '(',    ')',    '<',   '>',    '|',    's',    't',
      'l',    'd',    'm',    0xA0,   0xE9,    0xDF,    0x391,   0x3C9,  0x416,  0x44F, 0x5D0,  0x627,  0x660,  0x665,
      0x901,  0x915,  0xE01,  0x2003, 0x2028,  0x3000,  0x180E,  0x200B, 0x301,  0x308, 0x4E2D, 0x6587, 0x3042, 0x30AB,
      0xAC00, 0x2167, 0xFF21, 0xFF10, 0x1F600, 0x1F999, 0x1D400, 0x20AC, 0x2014, 0xFFFD};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 40);
    for (int j = 0; j < len; ++j) {
      if (rng() % 50 == 0) {
        s.push_back(static_cast<char>(0x80 + rng() % 0x80));  // a stray byte
      } else {
        AppendUtf8(pool[rng() % pool.size()], &s);
      }
    }
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> Cases(const std::string& vocab_name) {
  std::vector<std::string> cases = HandPicked();
  std::ifstream in(VocabPath(vocab_name) + ".inp");
  std::stringstream buffer;
  buffer << in.rdbuf();
  for (absl::string_view c : absl::StrSplit(buffer.str(), "\n__ggml_vocab_test__\n")) cases.emplace_back(c);
  for (const std::string& r : Random(300, 1234)) cases.push_back(r);
  return cases;
}

class TokenizerConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerConformance, SameIdsAsLlamaTokenize) {
  const std::string name = GetParam();
  absl::StatusOr<GgufModel> file = GgufModel::Open(VocabPath(name));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Vocab> vocab = Vocab::FromGguf(file->kv(), VocabPath(name));
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(std::make_shared<const Vocab>(*std::move(vocab)));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();

  const std::vector<std::string> cases = Cases(name);
  const std::string hex_path = ::testing::TempDir() + "/tokenizer-cases-" + name + ".hex";
  {
    std::ofstream hex(hex_path);
    for (const std::string& c : cases) {
      for (unsigned char b : c) hex << absl::StrFormat("%02x", b);
      hex << "\n";
    }
  }
  for (const auto& [add_special, parse_special] : {std::pair{true, false}, std::pair{false, true}}) {
    ProcessResult oracle = RunProcess({OracleDir() + "/oracle-tokenize", VocabPath(name), hex_path,
                                       add_special ? "1" : "0", parse_special ? "1" : "0"},
                                      absl::Minutes(2));
    ASSERT_EQ(oracle.exit_code, 0) << oracle.output;
    std::vector<std::string> lines = absl::StrSplit(oracle.output, '\n');
    ASSERT_GE(lines.size(), cases.size());
    int mismatches = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      std::vector<std::string> ours;
      for (TokenId id : tokenizer->Tokenize(cases[i], add_special, parse_special)) ours.push_back(absl::StrCat(id));
      const std::string got = absl::StrJoin(ours, " ");
      if (got != lines[i] && ++mismatches <= 8) {
        ADD_FAILURE() << name << " add_special=" << add_special << " parse_special=" << parse_special << " case " << i
                      << " \"" << Printable(cases[i]) << "\"\n  ours:      " << got << "\n  llama.cpp: " << lines[i];
      }
    }
    EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " cases";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerConformance,
                         ::testing::Values("llama-spm", "llama-bpe", "qwen2", "gpt-2", "phi-3"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace quantfleet
