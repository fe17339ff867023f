#include "core/model/tokenizer.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <queue>

#include "absl/strings/str_format.h"

namespace quantfleet {
namespace {

// Bytes in the UTF-8 sequence that `lead` starts (by its top four bits),
// 1 for a stray continuation byte.
size_t Utf8Length(char lead) {
  static constexpr std::array<size_t, 16> kLength = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLength[static_cast<uint8_t>(lead) >> 4];
}

// GPT-2's reversible map from bytes to printable code points: printable
// Latin-1 bytes stand for themselves, the others for U+0100 onwards.
const std::array<std::string, 256>& ByteEncoding() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      AppendUtf8(printable ? static_cast<uint32_t>(b) : next++, &t[b]);
    }
    return t;
  }();
  return table;
}

// Splits `text` into characters, then repeatedly merges the adjacent pair
// with the lowest `cost` (nullopt: the pair does not merge), the leftmost
// on ties, until no pair merges. A heap of candidate pairs keeps this
// O(n log n); a candidate is stale once either side has grown.
std::vector<std::string> MergePairs(
    const std::string& text, const std::function<std::optional<double>(const std::string&, const std::string&)>& cost) {
  struct Symbol {
    size_t offset, length;
    int prev, next;
  };
  struct Candidate {
    double cost;
    int left, right;
    size_t length;                              // left + right when queued
    bool operator<(const Candidate& o) const {  // std::priority_queue pops the largest
      return cost > o.cost || (cost == o.cost && left > o.left);
    }
  };
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(Utf8Length(text[i]), text.size() - i);
    sym.push_back({i, n, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1});
    i += n;
  }
  if (!sym.empty()) sym.back().next = -1;
  std::priority_queue<Candidate> queue;
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::optional<double> c =
        cost(text.substr(sym[l].offset, sym[l].length), text.substr(sym[r].offset, sym[r].length));
    if (c) queue.push({*c, l, r, sym[l].length + sym[r].length});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i, i + 1);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = sym[c.left];
    Symbol& r = sym[c.right];
    if (l.length == 0 || r.length == 0 || l.length + r.length != c.length) continue;  // stale
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  std::vector<std::string> out;
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) out.push_back(text.substr(sym[i].offset, sym[i].length));
  return out;
}

// A piece of the input: raw text still to tokenize, or a special token.
struct Fragment {
  TokenId token = kNoToken;
  std::string text;
};

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::Create(std::shared_ptr<const Vocab> vocab) {
  std::shared_ptr<const PreTokenizerRegex> regex;
  if (vocab->type() == VocabType::kBytePairs) {
    absl::StatusOr<std::shared_ptr<const PreTokenizerRegex>> r = PreTokenizerRegex::Create(vocab->pre_tokenizer());
    if (!r.ok()) return r.status();
    regex = *std::move(r);
  }
  return Tokenizer(std::move(vocab), std::move(regex));
}

std::vector<TokenId> Tokenizer::Tokenize(std::string_view text, bool add_special, bool parse_special) const {
  const Vocab& v = *vocab_;
  // Special tokens first, longest first, each splitting the raw fragments.
  std::list<Fragment> fragments;
  if (!text.empty()) fragments.push_back({kNoToken, std::string(text)});
  for (TokenId special : v.special_tokens()) {
    const uint32_t attrs = v.attributes(special);
    if (!parse_special && (attrs & (kAttrControl | kAttrUnknown))) continue;
    const std::string& needle = v.text(special);
    if (needle.empty()) continue;
    for (auto it = fragments.begin(); it != fragments.end(); ++it) {
      if (it->token != kNoToken || it->text.find(needle) == std::string::npos) continue;
      std::string rest = std::move(it->text);
      it = fragments.erase(it);  // replaced by the pieces inserted before `it`
      for (size_t at = rest.find(needle); at != std::string::npos; at = rest.find(needle)) {
        std::string left = rest.substr(0, at);
        if (attrs & kAttrLeftStrip) {
          while (!left.empty() && std::isspace(static_cast<unsigned char>(left.back()))) left.pop_back();
        }
        if (!left.empty()) fragments.insert(it, {kNoToken, std::move(left)});
        fragments.insert(it, {special, ""});
        rest = rest.substr(at + needle.size());
        if (attrs & kAttrRightStrip) {
          size_t skip = 0;
          while (skip < rest.size() && std::isspace(static_cast<unsigned char>(rest[skip]))) ++skip;
          rest = rest.substr(skip);
        }
      }
      if (!rest.empty()) fragments.insert(it, {kNoToken, std::move(rest)});
      --it;  // the last piece inserted; the loop steps past it
    }
  }

  std::vector<TokenId> out;
  const bool bos = add_special && v.add_bos();
  if (bos) out.push_back(v.bos());
  bool previous_special = true;  // SentencePiece: a space before the first text
  for (const Fragment& f : fragments) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      previous_special = true;
      continue;
    }
    if (v.type() == VocabType::kSentencePiece) {
      std::string piece = v.add_space_prefix() && previous_special ? " " + f.text : f.text;
      std::string escaped;
      for (char c : piece) {
        if (c == ' ') {
          escaped += "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
        } else {
          escaped += c;
        }
      }
      SentencePiece(escaped, &out);
      previous_special = false;
    } else {
      BytePairs(f.text, &out);
    }
  }
  if (add_special && v.add_eos()) out.push_back(v.eos());
  return out;
}

void Tokenizer::SentencePiece(const std::string& text, std::vector<TokenId>* out) const {
  const Vocab& v = *vocab_;
  // Merge the adjacent pair forming the highest-scoring token first.
  const std::vector<std::string> symbols = MergePairs(text, [&v](const std::string& l, const std::string& r) {
    const TokenId id = v.Find(l + r);
    return id == kNoToken ? std::optional<double>() : std::optional<double>(-static_cast<double>(v.score(id)));
  });
  for (const std::string& s : symbols) {
    const TokenId id = v.Find(s);
    if (id != kNoToken) {
      out->push_back(id);
      continue;
    }
    for (char c : s) {  // byte fallback: <0xXX>, else the byte itself
      TokenId byte = v.Find(absl::StrFormat("<0x%02X>", static_cast<uint8_t>(c)));
      if (byte == kNoToken) byte = v.Find(std::string(1, c));
      if (byte != kNoToken) out->push_back(byte);
    }
  }
}

void Tokenizer::BytePairs(std::string_view text, std::vector<TokenId>* out) const {
  const Vocab& v = *vocab_;
  const std::array<std::string, 256>& encoding = ByteEncoding();
  for (const std::string& word : regex_->Split(text)) {
    std::string encoded;
    for (char c : word) encoded += encoding[static_cast<uint8_t>(c)];
    if (v.ignore_merges()) {
      if (TokenId whole = v.Find(encoded); whole != kNoToken) {
        out->push_back(whole);
        continue;
      }
    }
    // Merge the adjacent pair of lowest rank first.
    const std::vector<std::string> symbols = MergePairs(encoded, [&v](const std::string& l, const std::string& r) {
      const int rank = v.MergeRank(l, r);
      return rank < 0 ? std::optional<double>() : std::optional<double>(rank);
    });
    for (const std::string& s : symbols) {
      const TokenId id = v.Find(s);
      if (id != kNoToken) {
        out->push_back(id);
        continue;
      }
      for (char c : s) {  // pieces that are no token: their single bytes, where those are tokens
        if (TokenId byte = v.Find(std::string(1, c)); byte != kNoToken) out->push_back(byte);
      }
    }
  }
}

std::string Tokenizer::Piece(TokenId id) const {
  const Vocab& v = *vocab_;
  const std::string& text = v.text(id);
  if (v.attributes(id) & (kAttrControl | kAttrUserDefined | kAttrUnknown)) return text;
  std::string out;
  if (v.type() == VocabType::kSentencePiece) {
    unsigned byte = 0;
    if ((v.attributes(id) & kAttrByte) && std::sscanf(text.c_str(), "<0x%2X>", &byte) == 1) {
      return std::string(1, static_cast<char>(byte));
    }
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }
  static const std::map<uint32_t, uint8_t> decode = [] {
    std::map<uint32_t, uint8_t> m;
    const std::array<std::string, 256>& encoding = ByteEncoding();
    for (int b = 0; b < 256; ++b) m[DecodeUtf8Lenient(encoding[b])[0]] = static_cast<uint8_t>(b);
    return m;
  }();
  for (uint32_t cp : DecodeUtf8Lenient(text)) {
    auto it = decode.find(cp);
    if (it != decode.end()) {
      out += static_cast<char>(it->second);
    } else {
      AppendUtf8(cp, &out);
    }
  }
  return out;
}

}  // namespace quantfleet
