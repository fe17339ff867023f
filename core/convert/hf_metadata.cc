#include "core/convert/hf_metadata.h"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/io/mapped_file.h"
#include "core/util/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace quantfleet {
namespace {

using Json = nlohmann::json;

bool FullMatch(const std::string& s, const char* pattern) {
  return std::regex_match(s, std::regex(pattern, std::regex::ECMAScript | std::regex::icase));
}

// Python's str.islower(): some cased character, none upper case.
bool IsLower(const std::string& s) {
  bool cased = false;
  for (char c : s) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) return false;
    if (absl::ascii_islower(static_cast<unsigned char>(c))) cased = true;
  }
  return cased;
}

// Python's str.title() on ASCII: a letter after a letter is lower case,
// any other letter upper case.
std::string Title(const std::string& s) {
  std::string out = s;
  bool after_letter = false;
  for (char& c : out) {
    const bool letter = absl::ascii_isalpha(static_cast<unsigned char>(c));
    if (letter) c = after_letter ? absl::ascii_tolower(c) : absl::ascii_toupper(c);
    after_letter = letter;
  }
  return out;
}

// "meta-llama" -> "Meta Llama": lower-case words capitalised, versions and
// numbers kept.
std::string IdToTitle(const std::string& id) {
  std::string spaced = std::string(absl::StripAsciiWhitespace(id));
  for (char& c : spaced) {
    if (c == '-') c = ' ';
  }
  std::vector<std::string> words = absl::StrSplit(spaced, absl::ByAnyChar(" \t\n\r\f\v"), absl::SkipEmpty());
  for (std::string& w : words) {
    if (IsLower(w) && !std::regex_match(w, std::regex(R"((v\d+(?:\.\d+)*|\d.*))"))) w = Title(w);
  }
  return absl::StrJoin(words, " ");
}

// Python's float() of a size label's number, or nullopt.
std::optional<double> PythonFloat(const std::string& s) {
  const std::string t = std::string(absl::StripAsciiWhitespace(s));
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  // strtod reads hexadecimal numbers; Python's float() does not.
  if (t.find_first_of("xX") != std::string::npos) return std::nullopt;
  return v;
}

void SetString(MetadataList& meta, const char* key, const std::optional<std::string>& v) {
  if (v) meta.Set(GgufKv::Str(key, *v));
}

}  // namespace

ModelIdParts SplitModelId(const std::string& model_id, int64_t total_params) {
  ModelIdParts out;
  if (model_id.find(' ') != std::string::npos) {
    out.name = model_id;
    return out;
  }
  std::string full = model_id;
  std::optional<std::string> org;
  if (size_t slash = model_id.find('/'); slash != std::string::npos) {
    org = model_id.substr(0, slash);
    full = model_id.substr(slash + 1);
  }
  if (org && !org->empty() && (*org)[0] == '.') org.reset();
  out.name = full;
  out.organization = org;

  std::vector<std::string> parts = absl::StrSplit(full, '-', absl::SkipEmpty());
  std::vector<std::set<std::string>> types(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string& part = parts[i];
    if (FullMatch(part, R"((v|iter)?\d+([.]\d+)*)")) {
      types[i].insert("version");
    } else if (FullMatch(part, R"(i?q\d(_\w)*|b?fp?(16|32))")) {
      types[i].insert("type");
      part = absl::AsciiStrToUpper(part);
    } else if (i > 0 && FullMatch(part, R"((([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl))")) {
      for (char& c : part) {
        if (c == '_') c = '.';
      }
      if (absl::ascii_isdigit(static_cast<unsigned char>(part.back()))) {
        part = part.substr(0, part.size() - 2) + "." + part.back() + part[part.size() - 2];
      }
      if (part.size() > 1 && absl::ascii_isdigit(static_cast<unsigned char>(part[part.size() - 2])) &&
          std::string("kmbt").find(part.back()) != std::string::npos) {
        part.back() = absl::ascii_toupper(part.back());
      }
      if (total_params != 0) {
        if (std::optional<double> number = PythonFloat(part.substr(0, part.size() - 1))) {
          const int power = static_cast<int>(std::string(" KMBT").find(part.back()));
          const double label = *number * std::pow(1000.0, power);
          const bool context_length = (total_params < 0 && label < static_cast<double>(-total_params / 8)) ||
                                      (total_params > 0 && std::fabs(label - static_cast<double>(total_params)) >
                                                               static_cast<double>(7 * total_params / 8));
          if (context_length) {
            types[i].insert("finetune");
            part.back() = absl::ascii_tolower(part.back());
          }
        }
      }
      if (types[i].empty()) types[i].insert("size_label");
    } else if (i > 0 && FullMatch(part, "chat|instruct|vision|lora")) {
      types[i].insert(total_params < 0 && absl::AsciiStrToLower(part) == "lora" ? "type" : "finetune");
    }
  }
  bool numeric_size = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (types[i].count("size_label") && parts[i].find_first_of("0123456789") != std::string::npos) {
      numeric_size = true;
    }
  }
  if (numeric_size) {
    for (size_t i = 0; i < parts.size(); ++i) {
      const bool all_alpha =
          std::all_of(parts[i].begin(), parts[i].end(), [](char c) { return absl::ascii_isalpha(c); });
      if (types[i].count("size_label") && all_alpha) types[i].erase("size_label");
    }
  }
  bool at_start = true;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (at_start && ((types[i].empty() && absl::ascii_isalpha(static_cast<unsigned char>(parts[i][0]))) ||
                     types[i].count("version"))) {
      types[i].insert("basename");
    } else {
      at_start = false;
      if (types[i].empty()) types[i].insert("finetune");
    }
  }
  for (size_t i = parts.size(); i-- > 0;) {
    if (types[i].count("basename") && types[i].size() > 1) {
      types[i].erase("basename");
    } else {
      break;
    }
  }
  auto join = [&](auto keep) {
    std::vector<std::string> kept;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (keep(i) && std::find(kept.begin(), kept.end(), parts[i]) == kept.end()) kept.push_back(parts[i]);
    }
    return kept;
  };
  auto join_all = [&](auto keep) {
    std::vector<std::string> kept;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (keep(i)) kept.push_back(parts[i]);
    }
    return kept.empty() ? std::optional<std::string>() : std::optional<std::string>(absl::StrJoin(kept, "-"));
  };
  out.basename = join_all([&](size_t i) { return types[i].count("basename") > 0; });
  const std::vector<std::string> sizes = join([&](size_t i) { return types[i].count("size_label") > 0; });
  if (!sizes.empty()) out.size_label = absl::StrJoin(sizes, "-");
  out.finetune = join_all([&](size_t i) { return types[i].count("finetune") > 0; });
  out.version = join_all([&](size_t i) { return types[i].count("version") > 0 && types[i].count("basename") == 0; });
  if (!out.size_label && !out.finetune && !out.version) out.basename.reset();
  return out;
}

std::string SizeLabel(const ParameterCount& count) {
  auto rounded = [](int64_t n) {
    double scaled;
    char suffix;
    if (n > 1e12) {
      scaled = n * 1e-12, suffix = 'T';
    } else if (n > 1e9) {
      scaled = n * 1e-9, suffix = 'B';
    } else if (n > 1e6) {
      scaled = n * 1e-6, suffix = 'M';
    } else {
      scaled = n * 1e-3, suffix = 'K';
    }
    // Python's round() (half to even), printed without leading zeros.
    std::string digits = absl::StrFormat("%d", static_cast<int64_t>(std::nearbyint(scaled)));
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
    return absl::StrFormat("%.*f%c", fix, scaled, suffix);
  };
  if (count.expert_count > 0) {
    return absl::StrFormat("%dx%s", count.expert_count, rounded(std::llabs(count.shared) + std::llabs(count.expert)));
  }
  return rounded(std::llabs(count.total));
}

namespace {

using Entry = std::vector<std::pair<std::string, std::string>>;  // a base model or dataset, in key order

// What the converter's Metadata holds that ends up in the file.
struct Authorship {
  std::optional<std::string> name, author, version, organization, finetune, basename, description, quantized_by,
      size_label, license_name, license_link, url, doi, uuid, repo_url, source_url, source_doi, source_uuid,
      source_repo_url;
  std::optional<std::vector<std::string>> license;  // one, or a list joined with ","
  std::optional<std::vector<Entry>> base_models, datasets;
  std::optional<std::vector<std::string>> tags, languages;
};

std::optional<std::string> Scalar(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull() || !n.IsScalar()) return std::nullopt;
  return n.as<std::string>();
}

// The YAML front matter of README.md, as the converter reads it: between a
// first line "---" and the next; {} when absent or not a mapping.
YAML::Node ModelCard(const std::string& dir) {
  if (!HasFile(dir, "README.md")) return YAML::Node(YAML::NodeType::Map);
  absl::StatusOr<std::string> text = ReadRegularFile(dir + "/README.md", size_t{64} << 20);
  if (!text.ok()) return YAML::Node(YAML::NodeType::Map);
  std::vector<std::string> lines = absl::StrSplit(*text, '\n');
  for (std::string& line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty() || lines[0] != "---") return YAML::Node(YAML::NodeType::Map);
  std::string yaml;
  for (size_t i = 1; i < lines.size() && lines[i] != "---"; ++i) yaml += lines[i] + "\n";
  // The converter's own fixes: "no" as a language, and tabs.
  yaml = absl::StrReplaceAll(yaml, {{"- no\n", "- \"no\"\n"}, {"\t", "  "}});
  try {
    YAML::Node card = YAML::Load(yaml);
    if (card.IsMap()) return card;
  } catch (const YAML::Exception&) {
  }
  return YAML::Node(YAML::NodeType::Map);
}

// A base model or dataset named by a model id or a URL, as the converter
// describes it.
Entry DescribeSource(const std::string& id, int64_t total_params) {
  Entry e;
  auto add_parts = [&](const ModelIdParts& p, bool with_repo) {
    if (p.name) e.emplace_back("name", IdToTitle(*p.name));
    if (p.organization) e.emplace_back("organization", IdToTitle(*p.organization));
    if (p.version) e.emplace_back("version", *p.version);
    if (with_repo && p.organization && p.name) {
      e.emplace_back("repo_url", absl::StrFormat("https://huggingface.co/%s/%s", *p.organization, *p.name));
    }
  };
  if (absl::StartsWith(id, "http://") || absl::StartsWith(id, "https://") || absl::StartsWith(id, "ssh://")) {
    e.emplace_back("repo_url", id);
    std::smatch m;
    if (id.find("huggingface.co") != std::string::npos &&
        std::regex_match(id, m, std::regex(R"(https?://huggingface.co/([^/]+/[^/]+))"))) {
      add_parts(SplitModelId(m[1].str(), total_params), false);
    }
  } else {
    add_parts(SplitModelId(id, total_params), true);
  }
  return e;
}

// The base models (or datasets) the card lists under the first of `keys`.
void ReadSources(const YAML::Node& card, std::initializer_list<const char*> keys, int64_t total_params,
                 std::optional<std::vector<Entry>>* out) {
  bool present = false;
  YAML::Node value;
  for (const char* k : keys) {
    if (card[k].IsDefined()) {
      if (!present) value = card[k];
      present = true;
    }
  }
  if (!present) return;
  if (!*out) *out = std::vector<Entry>();
  std::vector<YAML::Node> items;
  if (value.IsScalar()) items.push_back(value);
  if (value.IsSequence()) {
    for (const YAML::Node& n : value) items.push_back(n);
  }
  static const char* kFields[] = {"name", "author", "version", "organization", "description",
                                  "url",  "doi",    "uuid",    "repo_url"};
  for (const YAML::Node& item : items) {
    if (item.IsScalar()) {
      (*out)->push_back(DescribeSource(item.as<std::string>(), total_params));
    } else if (item.IsMap()) {
      Entry e;
      for (const char* f : kFields) {
        if (std::optional<std::string> v = Scalar(item[f])) e.emplace_back(f, *v);
      }
      (*out)->push_back(std::move(e));
    } else {
      (*out)->push_back({});
    }
  }
}

void AppendList(const YAML::Node& card, const char* key, std::optional<std::vector<std::string>>* out) {
  const YAML::Node v = card[key];
  if (!v.IsDefined() || v.IsNull()) return;
  if (!*out) *out = std::vector<std::string>();
  if (v.IsScalar()) (*out)->push_back(v.as<std::string>());
  if (v.IsSequence()) {
    for (const YAML::Node& n : v) {
      if (n.IsScalar()) (*out)->push_back(n.as<std::string>());
    }
  }
}

void FromModelCard(const YAML::Node& card, int64_t total_params, Authorship& a) {
  auto use = [&card](std::optional<std::string>* field, const char* key) {
    if (!*field) *field = Scalar(card[key]);
  };
  use(&a.name, "name"), use(&a.author, "author"), use(&a.version, "version");
  use(&a.organization, "organization"), use(&a.description, "description"), use(&a.finetune, "finetune");
  use(&a.basename, "basename"), use(&a.size_label, "size_label"), use(&a.source_url, "url");
  use(&a.source_doi, "doi"), use(&a.source_uuid, "uuid"), use(&a.source_repo_url, "repo_url");
  use(&a.name, "model_name"), use(&a.author, "model_author"), use(&a.version, "model_version");
  use(&a.organization, "model_organization"), use(&a.description, "model_description");
  use(&a.finetune, "model_finetune"), use(&a.basename, "model_basename"), use(&a.size_label, "model_size_label");
  use(&a.source_url, "model_url"), use(&a.source_doi, "model_doi"), use(&a.source_uuid, "model_uuid");
  use(&a.source_repo_url, "model_repo_url");
  use(&a.author, "model_creator"), use(&a.basename, "model_type");
  ReadSources(card, {"base_model", "base_models", "base_model_sources"}, total_params, &a.base_models);
  ReadSources(card, {"datasets", "dataset", "dataset_sources"}, total_params, &a.datasets);
  if (const YAML::Node license = card["license"]; !a.license && license.IsDefined()) {
    if (license.IsScalar()) a.license = std::vector<std::string>{license.as<std::string>()};
    if (license.IsSequence()) {
      a.license = std::vector<std::string>();
      for (const YAML::Node& n : license) a.license->push_back(n.IsScalar() ? n.as<std::string>() : "");
    }
  }
  use(&a.license_name, "license_name"), use(&a.license_link, "license_link");
  AppendList(card, "tags", &a.tags);
  AppendList(card, "pipeline_tag", &a.tags);
  AppendList(card, "languages", &a.languages);
  AppendList(card, "language", &a.languages);
}

void WriteEntries(MetadataList& meta, const char* what, const std::vector<Entry>& entries) {
  meta.Set(GgufKv::U32(absl::StrFormat("general.%s.count", what), static_cast<uint32_t>(entries.size())));
  static const char* kOrder[] = {"name", "author", "version", "organization", "description",
                                 "url",  "doi",    "uuid",    "repo_url"};
  for (size_t i = 0; i < entries.size(); ++i) {
    for (const char* field : kOrder) {
      for (const auto& [k, v] : entries[i]) {
        if (k == field) meta.Set(GgufKv::Str(absl::StrFormat("general.%s.%d.%s", what, i, field), v));
      }
    }
  }
}

}  // namespace

absl::Status AddAuthorship(const std::string& dir, const Json& config, const ParameterCount& count,
                           MetadataList& meta) {
  Authorship a;
  try {
    FromModelCard(ModelCard(dir), count.total, a);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s/README.md: the model card's front matter: %s", dir, e.what()));
  }
  auto fill = [&a](const ModelIdParts& p) {
    if (!a.name && p.name) a.name = IdToTitle(*p.name);
    if (!a.organization && p.organization) a.organization = IdToTitle(*p.organization);
    if (!a.basename) a.basename = p.basename;
    if (!a.finetune) a.finetune = p.finetune;
    if (!a.version) a.version = p.version;
    if (!a.size_label) a.size_label = p.size_label;
  };
  if (auto it = config.find("_name_or_path"); it != config.end() && it->is_string()) {
    const std::string id = it->get<std::string>();
    if (std::count(id.begin(), id.end(), '/') <= 1) fill(SplitModelId(id, count.total));
  }
  std::string folder = dir;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  folder = folder.substr(folder.find_last_of('/') + 1);
  fill(SplitModelId(folder, count.total));
  if (!a.name) a.name = folder;
  if (!a.size_label && count.total > 0) a.size_label = SizeLabel(count);

  // Sampling defaults from generation_config.json (ignored when not JSON).
  absl::StatusOr<std::optional<Json>> generation = ReadJsonFile(dir, "generation_config.json");
  if (generation.ok() && *generation && (*generation)->is_object()) {
    const Json& g = **generation;
    auto number = [&g](const char* key) -> const Json* {
      auto it = g.find(key);
      return it != g.end() && it->is_number() ? &*it : nullptr;
    };
    if (auto it = g.find("sequence"); it != g.end() && it->is_string()) {
      meta.Set(GgufKv::Str("general.sampling.sequence", it->get<std::string>()));
    }
    struct Field {
      const char* key;
      const char* alt;
      const char* gguf;
      bool integer;
    };
    for (const Field& f : {Field{"top_k", nullptr, "general.sampling.top_k", true},
                           Field{"top_p", nullptr, "general.sampling.top_p", false},
                           Field{"min_p", nullptr, "general.sampling.min_p", false},
                           Field{"xtc_probability", nullptr, "general.sampling.xtc_probability", false},
                           Field{"xtc_threshold", nullptr, "general.sampling.xtc_threshold", false},
                           Field{"temperature", nullptr, "general.sampling.temp", false},
                           Field{"penalty_last_n", nullptr, "general.sampling.penalty_last_n", true},
                           Field{"penalty_repeat", "repetition_penalty", "general.sampling.penalty_repeat", false},
                           Field{"mirostat", nullptr, "general.sampling.mirostat", true},
                           Field{"mirostat_tau", nullptr, "general.sampling.mirostat_tau", false},
                           Field{"mirostat_eta", nullptr, "general.sampling.mirostat_eta", false}}) {
      const Json* v = g.contains(f.key) ? number(f.key) : (f.alt != nullptr ? number(f.alt) : nullptr);
      if (v == nullptr) continue;
      if (f.integer) {
        meta.Set(GgufKv::I32(f.gguf, static_cast<int32_t>(v->get<int64_t>())));
      } else {
        meta.Set(GgufKv::F32(f.gguf, static_cast<float>(v->get<double>())));
      }
    }
  }
  meta.Set(GgufKv::Str("general.name", *a.name));
  // The keys in the order the converter writes them; the license (one, or
  // a list joined) between the size label and its name.
  const std::pair<const char*, const std::optional<std::string>*> before_license[] = {
      {"general.author", &a.author},
      {"general.version", &a.version},
      {"general.organization", &a.organization},
      {"general.finetune", &a.finetune},
      {"general.basename", &a.basename},
      {"general.description", &a.description},
      {"general.quantized_by", &a.quantized_by},
      {"general.size_label", &a.size_label}};
  const std::pair<const char*, const std::optional<std::string>*> after_license[] = {
      {"general.license.name", &a.license_name},
      {"general.license.link", &a.license_link},
      {"general.url", &a.url},
      {"general.doi", &a.doi},
      {"general.uuid", &a.uuid},
      {"general.repo_url", &a.repo_url},
      {"general.source.url", &a.source_url},
      {"general.source.doi", &a.source_doi},
      {"general.source.uuid", &a.source_uuid},
      {"general.source.repo_url", &a.source_repo_url}};
  for (const auto& [key, value] : before_license) SetString(meta, key, *value);
  if (a.license) meta.Set(GgufKv::Str("general.license", absl::StrJoin(*a.license, ",")));
  for (const auto& [key, value] : after_license) SetString(meta, key, *value);
  if (a.base_models) WriteEntries(meta, "base_model", *a.base_models);
  if (a.datasets) WriteEntries(meta, "dataset", *a.datasets);
  if (a.tags) meta.Set(GgufKv::StrArray("general.tags", *a.tags));
  if (a.languages) meta.Set(GgufKv::StrArray("general.languages", *a.languages));
  return absl::OkStatus();
}

}  // namespace quantfleet
