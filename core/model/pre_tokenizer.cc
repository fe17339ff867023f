#include "core/model/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace quantfleet {
namespace {

// Unicode's White_Space property, which llama.cpp's \s means. PCRE2's own
// \s under UCP also matches U+180E, so the patterns spell the set out.
constexpr char kSpace[] =
    R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// The pre-tokenizers' expressions as the models' tokenizer.json files give
// them, with the case-insensitive contractions spelled out; WS stands for
// the white-space set above.
std::string Pattern(PreTokenizer kind) {
  std::string p;
  switch (kind) {
    case PreTokenizer::kGpt2:
      p = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^WS\p{L}\p{N}]+|[WS]+(?![^WS])|[WS]+)";
      break;
    case PreTokenizer::kLlama3:
      p = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|)"
          R"( ?[^WS\p{L}\p{N}]+[\r\n]*|[WS]*[\r\n]+|[WS]+(?![^WS])|[WS]+)";
      break;
    case PreTokenizer::kQwen2:
      p = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
          R"( ?[^WS\p{L}\p{N}]+[\r\n]*|[WS]*[\r\n]+|[WS]+(?![^WS])|[WS]+)";
      break;
    case PreTokenizer::kNone:
      break;
  }
  return absl::StrReplaceAll(p, {{"WS", kSpace}});
}

// Code points PCRE2 cannot take in UTF-32 mode (surrogates, beyond
// U+10FFFF) match as an unassigned private-use character would: no
// letter, number or space, like llama.cpp's "undefined" category.
uint32_t ForMatching(uint32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0xE000;
  return cp;
}

}  // namespace

std::vector<uint32_t> DecodeUtf8Lenient(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  auto b = [&s](size_t i) { return static_cast<uint8_t>(s[i]); };
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = b(i);
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && cont(i + 1)) {
      out.push_back(((c & 0x1Fu) << 6) | (b(i + 1) & 0x3Fu));
      i += 2;
    } else if ((c & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      out.push_back(((c & 0x0Fu) << 12) | ((b(i + 1) & 0x3Fu) << 6) | (b(i + 2) & 0x3Fu));
      i += 3;
    } else if ((c & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      out.push_back(((c & 0x07u) << 18) | ((b(i + 1) & 0x3Fu) << 12) | ((b(i + 2) & 0x3Fu) << 6) | (b(i + 3) & 0x3Fu));
      i += 4;
    } else {
      out.push_back(0xFFFD);
      i += 1;
    }
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

absl::StatusOr<std::shared_ptr<const PreTokenizerRegex>> PreTokenizerRegex::Create(PreTokenizer kind) {
  const std::string pattern = Pattern(kind);
  if (pattern.empty()) return absl::InvalidArgumentError("this vocabulary has no pre-tokenizer");
  std::vector<PCRE2_UCHAR32> wide(pattern.begin(), pattern.end());
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code_32* code = pcre2_compile_32(wide.data(), wide.size(), PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR32 message[256];
    pcre2_get_error_message_32(error, message, 256);
    std::string text;
    for (const PCRE2_UCHAR32* m = message; *m != 0; ++m) text.push_back(static_cast<char>(*m));
    return absl::InternalError(absl::StrFormat("pre-tokenizer pattern: %s at %d", text, offset));
  }
  pcre2_jit_compile_32(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
  return std::shared_ptr<const PreTokenizerRegex>(new PreTokenizerRegex(code));
}

PreTokenizerRegex::~PreTokenizerRegex() { pcre2_code_free_32(static_cast<pcre2_code_32*>(code_)); }

std::vector<std::string> PreTokenizerRegex::Split(std::string_view text) const {
  const std::vector<uint32_t> cps = DecodeUtf8Lenient(text);
  std::vector<PCRE2_UCHAR32> subject(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) subject[i] = ForMatching(cps[i]);
  auto* code = static_cast<pcre2_code_32*>(code_);
  pcre2_match_data_32* match = pcre2_match_data_create_from_pattern_32(code, nullptr);
  std::vector<std::string> words;
  auto emit = [&](size_t from, size_t to) {
    if (from >= to) return;
    std::string w;
    for (size_t i = from; i < to; ++i) AppendUtf8(cps[i], &w);
    words.push_back(std::move(w));
  };
  size_t pos = 0;
  size_t emitted = 0;
  while (pos < subject.size()) {
    const int rc = pcre2_match_32(code, subject.data(), subject.size(), pos, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc < 0) break;  // no further match: the rest is one piece
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer_32(match);
    if (ov[1] == ov[0]) {  // empty match: step over one code point
      pos = ov[0] + 1;
      continue;
    }
    emit(emitted, ov[0]);  // text between matches stays a word of its own
    emit(ov[0], ov[1]);
    emitted = pos = ov[1];
  }
  emit(emitted, subject.size());
  pcre2_match_data_free_32(match);
  return words;
}

}  // namespace quantfleet
