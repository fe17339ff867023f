#include "core/convert/hf_metadata.h"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/util/status_macros.h"

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

absl::Status AddAuthorship(const std::string& dir, const Json& config, const ParameterCount& count,
                           MetadataList& meta) {
  ModelIdParts m;
  auto fill = [&m](const ModelIdParts& p) {
    if (!m.name && p.name) m.name = IdToTitle(*p.name);
    if (!m.organization && p.organization) m.organization = IdToTitle(*p.organization);
    if (!m.basename) m.basename = p.basename;
    if (!m.finetune) m.finetune = p.finetune;
    if (!m.version) m.version = p.version;
    if (!m.size_label) m.size_label = p.size_label;
  };
  if (auto it = config.find("_name_or_path"); it != config.end() && it->is_string()) {
    const std::string id = it->get<std::string>();
    if (std::count(id.begin(), id.end(), '/') <= 1) fill(SplitModelId(id, count.total));
  }
  std::string folder = dir;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  folder = folder.substr(folder.find_last_of('/') + 1);
  fill(SplitModelId(folder, count.total));
  if (!m.name) m.name = folder;
  if (!m.size_label && count.total > 0) m.size_label = SizeLabel(count);

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
  meta.Set(GgufKv::Str("general.name", *m.name));
  SetString(meta, "general.version", m.version);
  SetString(meta, "general.organization", m.organization);
  SetString(meta, "general.finetune", m.finetune);
  SetString(meta, "general.basename", m.basename);
  SetString(meta, "general.size_label", m.size_label);
  return absl::OkStatus();
}

}  // namespace quantfleet
