#include "core/ops/daemon_flags.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

ABSL_FLAG(std::string, config, "",
          "TOML file of flag values, one `flag-name = value` per line (arrays for repeated flags); "
          "QUANTFLEET_* environment variables and command-line flags override it. Also $QUANTFLEET_CONFIG");

namespace quantfleet {
namespace {

// Flag names are declared with underscores; people write dashes.
std::string FlagKey(std::string name) {
  absl::AsciiStrToLower(&name);
  return absl::StrReplaceAll(name, {{"-", "_"}});
}

absl::Status SetFlag(const std::string& name, const std::string& value, const std::string& where) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || name == "config") {
    return absl::InvalidArgumentError(absl::StrFormat("%s: '%s' is not a flag of this program (see --help)", where,
                                                      absl::StrReplaceAll(name, {{"_", "-"}})));
  }
  std::string why;
  if (!flag->ParseFrom(value, &why)) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s", where, why));
  }
  return absl::OkStatus();
}

// The flag-syntax text of one TOML value, or false for a value no flag can
// take (a table, a date).
bool TomlValueText(const toml::node& node, std::string* out) {
  if (const auto* s = node.as_string()) {
    *out = s->get();
  } else if (const auto* i = node.as_integer()) {
    *out = absl::StrCat(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    *out = absl::StrCat(f->get());
  } else if (const auto* b = node.as_boolean()) {
    *out = b->get() ? "true" : "false";
  } else if (const auto* a = node.as_array()) {
    std::vector<std::string> parts;
    for (const toml::node& element : *a) {
      std::string text;
      if (element.is_array() || !TomlValueText(element, &text)) return false;
      parts.push_back(text);
    }
    *out = absl::StrJoin(parts, ",");
  } else {
    return false;
  }
  return true;
}

// --help: the usage text, then every flag of this program (not Abseil's
// own) as people write it, with its default and its environment variable.
void PrintHelp(const std::string& usage) {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "absl/")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) { return a->Name() < b->Name(); });
  std::string text =
      usage + "\n\nFlags (each also QUANTFLEET_<FLAG> in the environment or `flag-name = value` in --config):\n";
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string dashed = absl::StrReplaceAll(flag->Name(), {{"_", "-"}});
    const std::string value = flag->DefaultValue();
    absl::StrAppendFormat(&text, "  --%s%s\n      %s\n      default: %s; env: QUANTFLEET_%s\n", dashed,
                          flag->IsOfType<bool>() ? "" : " VALUE", flag->Help(), value.empty() ? "(none)" : value,
                          absl::AsciiStrToUpper(flag->Name()));
  }
  std::fputs(text.c_str(), stdout);
}

}  // namespace

std::vector<std::string> NormalizeFlagDashes(const std::vector<std::string>& argv) {
  std::vector<std::string> out = argv;
  for (size_t i = 1; i < out.size(); ++i) {
    std::string& a = out[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    const size_t end = a.find('=') == std::string::npos ? a.size() : a.find('=');
    for (size_t j = 2; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  return out;
}

std::string ConfigFilePath(const std::vector<std::string>& argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--") break;
    if (argv[i] == "--config" && i + 1 < argv.size()) return argv[i + 1];
    if (absl::StartsWith(argv[i], "--config=")) return argv[i].substr(9);
  }
  const char* env = std::getenv("QUANTFLEET_CONFIG");
  return env != nullptr ? env : "";
}

absl::Status ApplyConfigFile(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrFormat("config file %s: cannot be read", path));
  }
  toml::table table;
  try {  // Debian's toml++ library is built to throw on syntax errors
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrFormat("config file %s: line %d, column %d: %s", path,
                                                      e.source().begin.line, e.source().begin.column,
                                                      std::string(e.description())));
  }
  for (auto&& [key, node] : table) {
    const std::string where =
        absl::StrFormat("config file %s: line %d: %s", path, key.source().begin.line, std::string(key.str()));
    std::string value;
    if (!TomlValueText(node, &value)) {
      return absl::InvalidArgumentError(
          where + ": a flag value must be a string, number, boolean or array of them (no tables)");
    }
    if (absl::Status s = SetFlag(FlagKey(std::string(key.str())), value, where); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ApplyFlagEnvironment(const std::vector<std::string>& environment) {
  for (const std::string& entry : environment) {
    const size_t eq = entry.find('=');
    if (!absl::StartsWith(entry, "QUANTFLEET_") || eq == std::string::npos) continue;
    const std::string variable = entry.substr(0, eq);
    const std::string name = FlagKey(variable.substr(11));
    if (name == "config" || absl::FindCommandLineFlag(name) == nullptr) continue;
    if (absl::Status s = SetFlag(name, entry.substr(eq + 1), variable); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string BuildVersion() { return QUANTFLEET_VERSION; }

std::string BuildInfo() {
  return absl::StrFormat("quantfleet %s (%s build, CUDA %s)", QUANTFLEET_VERSION, QUANTFLEET_BUILD_TYPE,
                         QUANTFLEET_WITH_CUDA ? "on" : "off");
}

void ParseDaemonFlags(int argc, char** argv, const char* usage) {
  absl::FlagsUsageConfig config;
  config.version_string = [] { return BuildInfo() + "\n"; };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);

  const std::vector<std::string> args = NormalizeFlagDashes(std::vector<std::string>(argv, argv + argc));
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--help" || args[i] == "-h" || args[i] == "--helpfull") {
      PrintHelp(absl::StrCat(usage,
                             "\n\nSettings come from the command line, then QUANTFLEET_<FLAG> environment variables,\n"
                             "then the TOML file given by --config (or $QUANTFLEET_CONFIG); the first that sets a\n"
                             "flag wins."));
      std::exit(0);
    }
  }
  const std::string program = argc > 0 ? argv[0] : "quantfleet";
  auto fail = [&](const absl::Status& s) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(s.message()).c_str());
    std::exit(1);
  };
  if (const std::string path = ConfigFilePath(args); !path.empty()) {
    if (absl::Status s = ApplyConfigFile(path); !s.ok()) fail(s);
  }
  std::vector<std::string> environment;
  for (char** e = ::environ; e != nullptr && *e != nullptr; ++e) environment.emplace_back(*e);
  if (absl::Status s = ApplyFlagEnvironment(environment); !s.ok()) fail(s);

  std::vector<std::string> storage = args;
  std::vector<char*> pointers;
  for (std::string& s : storage) pointers.push_back(s.data());
  absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
}

}  // namespace quantfleet
