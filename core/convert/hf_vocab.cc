#include "core/convert/hf_vocab.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/convert/sentencepiece_model.h"
#include "core/io/mapped_file.h"
#include "core/model/tokenizer.h"
#include "core/model/vocab.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

using Json = nlohmann::json;

constexpr char kSpaceMark[] = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space

// Python's truth value of a JSON value.
bool Truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

// obj.get(key) of a JSON object; null when absent or `obj` is no object.
const Json& Get(const Json& obj, const std::string& key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// Text read as Python reads a text file: "\r\n" and "\r" become "\n".
absl::StatusOr<std::string> ReadText(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::string raw, ReadRegularFile(path, size_t{1} << 30));
  return absl::StrReplaceAll(absl::StrReplaceAll(raw, {{"\r\n", "\n"}}), {{"\r", "\n"}});
}

// gguf-py's SpecialVocab, step by step.
class SpecialVocab {
 public:
  SpecialVocab(std::string dir, bool load_merges, std::optional<int64_t> n_vocab)
      : dir_(std::move(dir)), load_merges_(load_merges), n_vocab_(n_vocab) {}

  absl::Status Load() {
    QF_RETURN_IF_ERROR(FromTokenizerJson());
    QF_RETURN_IF_ERROR(FromConfigJson());
    if (load_merges_ && merges_.empty()) QF_RETURN_IF_ERROR(FromMergesTxt());
    return absl::OkStatus();
  }

  const std::vector<std::string>& merges() const { return merges_; }

  void AddTo(MetadataList& meta) const {
    static const std::map<std::string, std::string> kIdKeys = {
        {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"}};
    static const std::map<std::string, std::string> kAddKeys = {{"bos", "tokenizer.ggml.add_bos_token"},
                                                                {"eos", "tokenizer.ggml.add_eos_token"},
                                                                {"sep", "tokenizer.ggml.add_sep_token"}};
    if (!merges_.empty()) meta.Set(GgufKv::StrArray("tokenizer.ggml.merges", merges_));
    for (const auto& [type, id] : ids_) {
      if (auto it = kIdKeys.find(type); it != kIdKeys.end()) meta.Set(GgufKv::U32(it->second, id));
    }
    for (const auto& [type, add] : adds_) {
      if (auto it = kAddKeys.find(type); it != kAddKeys.end()) meta.Set(GgufKv::Bool(it->second, add));
    }
    AddChatTemplate(meta);
    if (lowercase_) meta.Set(GgufKv::Bool("tokenizer.ggml.normalizer.lowercase", *lowercase_));
    if (strip_accents_) meta.Set(GgufKv::Bool("tokenizer.ggml.normalizer.strip_accents", *strip_accents_));
  }

 private:
  absl::Status FromTokenizerJson() {
    QF_ASSIGN_OR_RETURN(std::optional<Json> tokenizer, ReadJsonFile(dir_, "tokenizer.json"));
    Json added_tokens = Json::array();
    if (tokenizer) {
      if (load_merges_) QF_RETURN_IF_ERROR(TakeMerges(Get(Get(*tokenizer, "model"), "merges")));
      if (const Json& normalizer = Get(*tokenizer, "normalizer"); Truthy(normalizer)) ParseNormalizer(normalizer);
      if (const Json& added = Get(*tokenizer, "added_tokens"); added.is_array()) added_tokens = added;
    }
    QF_ASSIGN_OR_RETURN(std::optional<Json> config_file, ReadJsonFile(dir_, "tokenizer_config.json"));
    Json config = config_file ? *config_file : Json();
    if (tokenizer && Truthy(*tokenizer)) ReadPostProcessor(*tokenizer, config);
    if (!Truthy(config)) return absl::OkStatus();
    QF_RETURN_IF_ERROR(ReadChatTemplate(config));
    for (const std::string& type : types_) {
      if (const Json& add = Get(config, "add_" + type + "_token"); add.is_boolean()) SetAdd(type, add.get<bool>());
      const Json& entry = Get(config, type + "_token");
      std::string content;
      if (entry.is_string()) {
        content = entry.get<std::string>();
      } else if (entry.is_object() && Get(entry, "content").is_string()) {
        content = Get(entry, "content").get<std::string>();
      } else {
        continue;
      }
      for (const Json& token : added_tokens) {
        if (Get(token, "content") == Json(content)) {
          QF_RETURN_IF_ERROR(SetId(type, Get(token, "id")));
          break;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status FromConfigJson() {
    QF_ASSIGN_OR_RETURN(std::optional<Json> config, ReadJsonFile(dir_, "config.json"));
    if (!config) return absl::OkStatus();
    for (const std::string& type : types_) {
      Json id = Get(*config, type + "_token_id");
      if (id.is_null() && config->contains("text_config")) id = Get((*config)["text_config"], type + "_token_id");
      QF_RETURN_IF_ERROR(SetId(type, id));
    }
    return absl::OkStatus();
  }

  absl::Status FromMergesTxt() {
    const std::string path = dir_ + "/merges.txt";
    if (!HasFile(dir_, "merges.txt")) return absl::OkStatus();
    QF_ASSIGN_OR_RETURN(std::string text, ReadText(path));
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    size_t first = 0;
    if (!lines.empty() && absl::StartsWith(absl::StripAsciiWhitespace(lines[0]), "#")) first = 1;
    for (size_t i = first; i < lines.size(); ++i) {
      std::vector<std::string> parts = absl::StrSplit(lines[i], absl::ByAnyChar(" \t\f\v"), absl::SkipEmpty());
      if (parts.size() == 2) merges_.push_back(parts[0] + " " + parts[1]);
    }
    return absl::OkStatus();
  }

  absl::Status TakeMerges(const Json& merges) {
    if (!merges.is_array() || merges.empty()) return absl::OkStatus();
    if (merges[0].is_string()) {
      for (const Json& m : merges) merges_.push_back(m.is_string() ? m.get<std::string>() : m.dump());
      return absl::OkStatus();
    }
    if (merges[0].is_array() && merges[0].size() == 2 && merges[0][0].is_string()) {
      // Pairs (tokenizers 0.20 and later); a space inside a part is written
      // as U+0120 so that the pair still splits at its one space.
      for (const Json& pair : merges) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
          return absl::InvalidArgumentError(
              absl::StrFormat("%s/tokenizer.json: a merge is not a pair of strings: %s", dir_, pair.dump()));
        }
        merges_.push_back(absl::StrReplaceAll(pair[0].get<std::string>(), {{" ", "\xc4\xa0"}}) + " " +
                          absl::StrReplaceAll(pair[1].get<std::string>(), {{" ", "\xc4\xa0"}}));
      }
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrFormat("%s/tokenizer.json: unknown format of model.merges", dir_));
  }

  void ParseNormalizer(const Json& normalizer) {
    const Json& type = Get(normalizer, "type");
    if (type == "Lowercase") {
      lowercase_ = true;
    } else if (type == "StripAccents") {
      strip_accents_ = true;
    } else if (type == "BertNormalizer") {
      if (normalizer.contains("lowercase")) lowercase_ = OptionalBool(normalizer["lowercase"]);
      if (normalizer.contains("strip_accents")) strip_accents_ = OptionalBool(normalizer["strip_accents"]);
    } else if (type == "Sequence") {
      for (const Json& n : Get(normalizer, "normalizers")) ParseNormalizer(n);
    }
  }

  static std::optional<bool> OptionalBool(const Json& v) {
    if (v.is_null()) return std::nullopt;
    return Truthy(v);
  }

  // The crude reading of the post-processor that decides add_bos/add_eos
  // (and may rename the special tokens in `config`).
  void ReadPostProcessor(const Json& tokenizer, Json& config) {
    Json bos = Get(config, "bos_token"), cls = Get(config, "cls_token");
    Json eos = Get(config, "eos_token"), sep = Get(config, "sep_token");
    const bool have_config = Truthy(config);
    if (!Truthy(bos) && Truthy(cls) && have_config) config["bos_token"] = bos = cls;
    if (!Truthy(eos) && Truthy(sep) && have_config) config["eos_token"] = eos = sep;
    const Json& post = Get(tokenizer, "post_processor");
    if (!Truthy(post)) return;
    const Json processors = post.contains("processors") ? post["processors"] : Json::array({post});
    for (const Json& processor : processors) {
      const Json& type = Get(processor, "type");
      if (type == "RobertaProcessing") {
        SetAdd("bos", true);
        SetAdd("eos", true);
        SetAdd("sep", true);
        if (!Truthy(cls) && Truthy(config)) {
          const Json& c = Get(processor, "cls");
          cls = c.is_array() && !c.empty() ? c[0] : bos;
          config["cls_token"] = cls;
        }
        if (!Truthy(sep) && Truthy(config)) {
          const Json& s = Get(processor, "sep");
          sep = s.is_array() && !s.empty() ? s[0] : eos;
          config["sep_token"] = sep;
        }
        continue;
      }
      if (type != "TemplateProcessing") continue;
      const Json& single = Get(processor, "single");
      const Json& pair = Get(processor, "pair");
      Json first, last;
      if (single.is_array() && single.size() > 1) {
        first = Get(Get(single.front(), "SpecialToken"), "id");
        if (Truthy(first)) {
          if (!Truthy(config)) {
            bos = first;
          } else if (first != bos && first != cls) {
            if (!Truthy(bos)) config["bos_token"] = bos = first;
            if (!Truthy(cls)) config["cls_token"] = cls = first;
          }
          SetAdd("bos", first == bos || first == cls);
        }
        last = Get(Get(single.back(), "SpecialToken"), "id");
        if (Truthy(last)) {
          if (!Truthy(config)) {
            eos = last;
          } else if (last != eos) {
            if (!HasType("eot")) {
              types_.push_back("eot");
              config["eot_token"] = eos;
            } else if (!HasType("eom")) {
              types_.push_back("eom");
              config["eom_token"] = eos;
            }
            config["eos_token"] = eos = last;
          }
          SetAdd("eos", last == eos);
        }
      }
      if (pair.is_array() && !pair.empty()) ReadPairTemplate(pair, first, last, eos, sep, config);
    }
  }

  void ReadPairTemplate(const Json& pair, const Json& first, const Json& last, const Json& eos, const Json& sep,
                        Json& config) {
    size_t start = Truthy(first) && Get(Get(pair.front(), "SpecialToken"), "id") == first ? 1 : 0;
    size_t stop = pair.size();
    if (Truthy(last) && Get(Get(pair.back(), "SpecialToken"), "id") == last) stop = pair.size() - 1;
    if (start >= stop) return;
    std::vector<Json> middle(pair.begin() + start, pair.begin() + stop);
    const Json& a = Get(Get(middle.front(), "Sequence"), "id");
    const Json& b = Get(Get(middle.back(), "Sequence"), "id");
    if (a != "A" || b != "B") return;
    if (middle.size() <= 2) return;
    middle = std::vector<Json>(middle.begin() + 1, middle.end() - 1);
    bool add_sep = false;
    const Json& entry = Get(Get(middle[0], "SpecialToken"), "id");
    if (Truthy(entry) && (entry == sep || entry == eos) && !Truthy(last)) add_sep = true;
    if (middle.size() == 2) {
      const Json& second = Get(Get(middle[1], "SpecialToken"), "id");
      if (Truthy(second) && (second == sep || second == eos)) add_sep = true;
    }
    SetAdd("sep", add_sep);
    if (add_sep && !Truthy(sep) && Truthy(config)) config["sep_token"] = eos;
  }

  absl::Status ReadChatTemplate(const Json& config) {
    Json alternative;
    if (HasFile(dir_, "chat_template.jinja")) {
      QF_ASSIGN_OR_RETURN(std::string text, ReadText(dir_ + "/chat_template.jinja"));
      alternative = text;
      const std::string more = dir_ + "/additional_chat_templates";
      std::vector<std::string> jinja;
      std::error_code error;
      for (const auto& entry : std::filesystem::directory_iterator(more, error)) {
        const std::string n = entry.path().filename().string();
        if (n[0] != '.' && absl::EndsWith(n, ".jinja") && HasFile(more, n)) jinja.push_back(n);
      }
      std::sort(jinja.begin(), jinja.end());
      if (!jinja.empty()) {
        Json list = Json::array({Json{{"name", "default"}, {"template", text}}});
        for (const std::string& n : jinja) {
          QF_ASSIGN_OR_RETURN(std::string t, ReadText(more + "/" + n));
          list.push_back(Json{{"name", n.substr(0, n.size() - 6)}, {"template", t}});
        }
        alternative = list;
      }
    } else if (HasFile(dir_, "chat_template.json")) {
      QF_ASSIGN_OR_RETURN(std::optional<Json> file, ReadJsonFile(dir_, "chat_template.json"));
      alternative = Get(*file, "chat_template");
    }
    const Json chosen = config.contains("chat_template") ? config["chat_template"] : alternative;
    if (chosen.is_string() || chosen.is_array()) chat_template_ = chosen;
    return absl::OkStatus();
  }

  void AddChatTemplate(MetadataList& meta) const {
    if (chat_template_.is_string()) {
      meta.Set(GgufKv::Str("tokenizer.chat_template", chat_template_.get<std::string>()));
      return;
    }
    if (!chat_template_.is_array()) return;
    std::optional<std::string> default_template;
    std::vector<std::string> names;
    for (const Json& choice : chat_template_) {
      const Json& name_json = Get(choice, "name");
      const Json& text = Get(choice, "template");
      std::string name = name_json.is_string() ? name_json.get<std::string>() : "";
      for (char& c : name) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      if (name.empty() || !text.is_string()) continue;
      if (name == "default") {
        default_template = text.get<std::string>();
      } else {
        names.push_back(name);
        meta.Set(GgufKv::Str("tokenizer.chat_template." + name, text.get<std::string>()));
      }
    }
    if (!names.empty()) meta.Set(GgufKv::StrArray("tokenizer.chat_templates", names));
    if (default_template) meta.Set(GgufKv::Str("tokenizer.chat_template", *default_template));
  }

  bool HasType(const std::string& type) const {
    for (const std::string& t : types_) {
      if (t == type) return true;
    }
    return false;
  }

  absl::Status SetId(const std::string& type, const Json& id) {
    if (!id.is_number_integer()) return absl::OkStatus();
    const int64_t v = id.get<int64_t>();
    if (v < 0) return absl::InvalidArgumentError(absl::StrFormat("%s: special token %s has id %d", dir_, type, v));
    if (n_vocab_ && v >= *n_vocab_) return absl::OkStatus();
    for (const auto& [t, existing] : ids_) {
      if (t == type) return absl::OkStatus();
    }
    ids_.emplace_back(type, static_cast<uint32_t>(v));
    return absl::OkStatus();
  }

  void SetAdd(const std::string& type, bool add) {
    for (auto& [t, value] : adds_) {
      if (t == type) {
        value = add;
        return;
      }
    }
    adds_.emplace_back(type, add);
  }

  std::string dir_;
  bool load_merges_;
  std::optional<int64_t> n_vocab_;
  std::vector<std::string> types_ = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  std::vector<std::string> merges_;
  std::vector<std::pair<std::string, uint32_t>> ids_;  // in the order they were set
  std::vector<std::pair<std::string, bool>> adds_;
  Json chat_template_;
  std::optional<bool> lowercase_, strip_accents_;
};

// The text whose token ids identify a byte-pair pre-tokenizer, and the
// SHA-256 of those ids (as Python prints a list) for each pre-tokenizer
// this project runs.
constexpr char kCheckText[] =
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\xf0\x9f\x9a\x80 (normal) \xf0\x9f\x98\xb6\xe2\x80"
    "\x8d\xf0\x9f\x8c\xab\xef\xb8\x8f (multiple emojis concatenated) \xe2\x9c\x85 \xf0\x9f\xa6\x99\xf0"
    "\x9f\xa6\x99 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \xe1\x9e\x80\xe1\x9e\xb6\xe1"
    "\x9e\x93\xe1\x9f\x8b\xe1\x9e\x8f\xe1\x9f\x82\xe1\x9e\x96\xe1\x9e\xb7\xe1\x9e\x9f\xe1\x9f\x81\xe1\x9e"
    "\x9f\xe1\x9e\xa2\xe1\x9e\xb6\xe1\x9e\x85\xf0\x9f\x98\x81 ?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8"
    "app"
    "le\xe5\xb7\xa5\xe4\xbd\x9c"
    "1314151\xe5\xa4\xa9\xef\xbd\x9e ------======= \xd0\xbd\xd0\xb5\xd1\x89"
    "\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8 '"
    "'''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll ma"
    "ke it, 'D you like some tea? We'Ve a'lL";

struct KnownPreTokenizer {
  const char* hash;
  const char* name;
};
constexpr KnownPreTokenizer kKnownPreTokenizers[] = {
    {"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"},  // Meta-Llama-3-8B
    {"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"},      // Qwen1.5-7B
    {"d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", "qwen2"},      // Qwen3-Embedding-0.6B
    {"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"},      // gpt2
    {"0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4", "gpt-2"},      // ruGPT3XL
};

// The ids a Hugging Face post-processor puts before and after a text's.
void SpecialIdsAround(const Json& post, std::vector<int64_t>* before, std::vector<int64_t>* after) {
  if (!post.is_object()) return;
  const Json& type = Get(post, "type");
  if (type == "Sequence") {
    for (const Json& p : Get(post, "processors")) SpecialIdsAround(p, before, after);
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const Json& cls = Get(post, "cls");
    const Json& sep = Get(post, "sep");
    if (cls.is_array() && cls.size() == 2 && cls[1].is_number_integer()) before->push_back(cls[1].get<int64_t>());
    if (sep.is_array() && sep.size() == 2 && sep[1].is_number_integer()) after->push_back(sep[1].get<int64_t>());
    return;
  }
  if (type != "TemplateProcessing") return;
  bool seen_text = false;
  for (const Json& item : Get(post, "single")) {
    if (item.contains("Sequence")) {
      seen_text = true;
      continue;
    }
    const Json& id = Get(Get(item, "SpecialToken"), "id");
    const Json& ids = Get(Get(Get(post, "special_tokens"), id.is_string() ? id.get<std::string>() : ""), "ids");
    for (const Json& v : ids) {
      if (v.is_number_integer()) (seen_text ? after : before)->push_back(v.get<int64_t>());
    }
  }
}

// The pre-tokenizer's name as the converter finds it, or NOT_FOUND with
// the hash when none of those this project runs gives a known hash.
absl::StatusOr<std::string> FindPreTokenizer(const std::string& dir, const Json& tokenizer,
                                             const std::vector<std::string>& tokens, const std::vector<int32_t>& types,
                                             const std::vector<std::string>& merges) {
  std::vector<int64_t> before, after;
  SpecialIdsAround(Get(tokenizer, "post_processor"), &before, &after);
  std::vector<std::string> hashes;
  for (const char* candidate : {"llama-bpe", "qwen2", "gpt-2"}) {
    std::vector<GgufKv> kv = {GgufKv::Str("tokenizer.ggml.model", "gpt2"), GgufKv::Str("tokenizer.ggml.pre", candidate),
                              GgufKv::StrArray("tokenizer.ggml.tokens", tokens),
                              GgufKv::NumArray("tokenizer.ggml.token_type", GgufValueType::kInt32, types),
                              GgufKv::StrArray("tokenizer.ggml.merges", merges)};
    QF_ASSIGN_OR_RETURN(Vocab vocab, Vocab::FromGguf(kv, dir + "/tokenizer.json"));
    QF_ASSIGN_OR_RETURN(Tokenizer tokenizer_run, Tokenizer::Create(std::make_shared<const Vocab>(std::move(vocab))));
    std::vector<int64_t> ids = before;
    for (TokenId id : tokenizer_run.Tokenize(kCheckText, false, false)) ids.push_back(id);
    ids.insert(ids.end(), after.begin(), after.end());
    const std::string hash = Sha256Hex("[" + absl::StrJoin(ids, ", ") + "]");
    for (const KnownPreTokenizer& known : kKnownPreTokenizers) {
      if (hash == known.hash && std::string(known.name) == candidate) return std::string(known.name);
    }
    hashes.push_back(absl::StrFormat("%s %s", candidate, hash));
  }
  return absl::UnimplementedError(absl::StrFormat(
      "%s/tokenizer.json: the BPE pre-tokenizer was not recognized (the hash of its check text's ids, split as "
      "%s); known here: llama-bpe, qwen2, gpt-2",
      dir, absl::StrJoin(hashes, ", ")));
}

}  // namespace

bool LooksSpecial(const std::string& token) {
  if (token == "<pad>" || token == "<mask>" || token == "<2mass>" || token == "[@BOS@]") return true;
  auto wraps = [&token](absl::string_view open, absl::string_view close) {
    return absl::StartsWith(token, open) && absl::EndsWith(token, close);
  };
  return wraps("<|", "|>") || wraps("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wraps("<unused", ">");
}

absl::Status AddSpecialVocab(const std::string& dir, bool load_merges, std::optional<int64_t> n_vocab,
                             MetadataList& meta) {
  SpecialVocab special(dir, load_merges, n_vocab);
  QF_RETURN_IF_ERROR(special.Load());
  special.AddTo(meta);
  return absl::OkStatus();
}

absl::Status AddSentencePieceVocab(const std::string& dir, std::optional<int64_t> vocab_size, MetadataList& meta) {
  const std::string path = dir + "/tokenizer.model";
  if (!HasFile(dir, "tokenizer.model")) return absl::NotFoundError(absl::StrFormat("%s: no such file", path));
  QF_ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(path, size_t{1} << 30));
  QF_ASSIGN_OR_RETURN(std::vector<SentencePiece> pieces, ParseSentencePieceModel(bytes, path));
  const int64_t n = vocab_size.value_or(0) > 0 ? *vocab_size : static_cast<int64_t>(pieces.size());
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<float> scores(static_cast<size_t>(n), -10000.0f);
  std::vector<int32_t> types(static_cast<size_t>(n), static_cast<int32_t>(PieceType::kUnused));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = absl::StrFormat("[PAD%d]", i);
  for (size_t id = 0; id < pieces.size() && static_cast<int64_t>(id) < n; ++id) {
    tokens[id] = pieces[id].piece;
    scores[id] = pieces[id].score;
    // A user-defined piece is none of unknown, control, unused or byte to
    // SentencePiece's accessors, so it is written as a normal token.
    const PieceType t = pieces[id].type;
    types[id] = static_cast<int32_t>(t == PieceType::kUserDefined ? PieceType::kNormal : t);
  }
  QF_ASSIGN_OR_RETURN(std::optional<Json> added, ReadJsonFile(dir, "added_tokens.json"));
  if (added && added->is_object()) {
    for (const auto& [text, id_json] : added->items()) {
      if (!id_json.is_number_integer()) {
        return absl::InvalidArgumentError(absl::StrFormat("%s/added_tokens.json: '%s' has no integer id", dir, text));
      }
      const int64_t id = id_json.get<int64_t>();
      if (id < 0 || id >= n) continue;
      tokens[static_cast<size_t>(id)] = text;
      scores[static_cast<size_t>(id)] = -1000.0f;
      types[static_cast<size_t>(id)] = static_cast<int32_t>(PieceType::kUserDefined);
    }
  }
  QF_ASSIGN_OR_RETURN(std::optional<Json> config, ReadJsonFile(dir, "tokenizer_config.json"));
  if (config) {
    for (const auto& [key, data] : Get(*config, "added_tokens_decoder").items()) {
      int64_t id = 0;
      if (!absl::SimpleAtoi(key, &id) || !Get(data, "content").is_string()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s/tokenizer_config.json: added_tokens_decoder entry '%s' is not an id with a content", dir, key));
      }
      if (id < 0 || id >= n) continue;
      std::string token = Get(data, "content").get<std::string>();
      if (Truthy(Get(data, "special")) || LooksSpecial(token)) {
        types[static_cast<size_t>(id)] = static_cast<int32_t>(PieceType::kControl);
      } else {
        token = absl::StrReplaceAll(token, {{kSpaceMark, " "}});
        types[static_cast<size_t>(id)] = static_cast<int32_t>(PieceType::kUserDefined);
      }
      scores[static_cast<size_t>(id)] = -1000.0f;
      tokens[static_cast<size_t>(id)] = token;
    }
  }
  meta.Set(GgufKv::Str("tokenizer.ggml.model", "llama"));
  meta.Set(GgufKv::Str("tokenizer.ggml.pre", "default"));
  meta.Set(GgufKv::StrArray("tokenizer.ggml.tokens", tokens));
  meta.Set(GgufKv::NumArray("tokenizer.ggml.scores", GgufValueType::kFloat32, scores));
  meta.Set(GgufKv::NumArray("tokenizer.ggml.token_type", GgufValueType::kInt32, types));
  return AddSpecialVocab(dir, false, n, meta);
}

absl::Status AddBytePairVocab(const std::string& dir, std::optional<int64_t> vocab_size, MetadataList& meta) {
  QF_ASSIGN_OR_RETURN(std::optional<Json> tokenizer, ReadJsonFile(dir, "tokenizer.json"));
  if (!tokenizer) return absl::NotFoundError(absl::StrFormat("%s/tokenizer.json: no such file", dir));
  const Json& model = Get(*tokenizer, "model");
  if (Get(model, "type") != "BPE" || !Get(model, "vocab").is_object()) {
    return absl::UnimplementedError(
        absl::StrFormat("%s/tokenizer.json: the tokenizer model is '%s', not a byte-level BPE with a vocabulary", dir,
                        Get(model, "type").is_string() ? Get(model, "type").get<std::string>() : "missing"));
  }
  // The vocabulary with the added tokens, as the tokenizer reports it.
  std::map<int64_t, std::string> by_id;
  for (const auto& [text, id] : Get(model, "vocab").items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s/tokenizer.json: vocabulary entry '%s' has no valid id", dir, text));
    }
    by_id[id.get<int64_t>()] = text;
  }
  struct Added {
    bool special = false;
    bool normalized = false;
  };
  std::map<std::string, Added> added;
  for (const Json& t : Get(*tokenizer, "added_tokens")) {
    if (!Get(t, "id").is_number_integer() || !Get(t, "content").is_string() || Get(t, "id").get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s/tokenizer.json: an added token has no id and content: %s", dir, t.dump()));
    }
    const std::string content = Get(t, "content").get<std::string>();
    by_id[Get(t, "id").get<int64_t>()] = content;
    added[content] = Added{Truthy(Get(t, "special")), Truthy(Get(t, "normalized"))};
  }
  const int64_t n = vocab_size.value_or(static_cast<int64_t>(by_id.size()));
  if (!by_id.empty() && by_id.rbegin()->first >= n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the tokenizer has token id %d but config.json's vocab_size is %d", dir, by_id.rbegin()->first, n));
  }
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens.push_back(absl::StrFormat("[PAD%d]", i));
      types.push_back(static_cast<int32_t>(TokenType::kUnused));
      continue;
    }
    std::string token = it->second;
    auto a = added.find(token);
    if (a == added.end()) {
      types.push_back(static_cast<int32_t>(TokenType::kNormal));
    } else if (a->second.special || LooksSpecial(token)) {
      types.push_back(static_cast<int32_t>(TokenType::kControl));
    } else {
      token = absl::StrReplaceAll(token, {{kSpaceMark, " "}});
      types.push_back(static_cast<int32_t>(TokenType::kUserDefined));
    }
    tokens.push_back(std::move(token));
  }
  SpecialVocab special(dir, true, std::nullopt);
  QF_RETURN_IF_ERROR(special.Load());
  QF_ASSIGN_OR_RETURN(std::string pre, FindPreTokenizer(dir, *tokenizer, tokens, types, special.merges()));
  meta.Set(GgufKv::Str("tokenizer.ggml.model", "gpt2"));
  meta.Set(GgufKv::Str("tokenizer.ggml.pre", pre));
  meta.Set(GgufKv::StrArray("tokenizer.ggml.tokens", tokens));
  meta.Set(GgufKv::NumArray("tokenizer.ggml.token_type", GgufValueType::kInt32, types));
  special.AddTo(meta);
  return absl::OkStatus();
}

}  // namespace quantfleet
