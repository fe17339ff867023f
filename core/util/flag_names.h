// Lets daemons take --multi-word-flags with dashes (as documented) while
// Abseil flags are declared with underscores.
//
// Thread-safety: call once from main before parsing.
#ifndef QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
#define QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_

#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"

namespace quantfleet {

// Returns argv with '-' turned into '_' inside each --flag name (up to any
// '='); values and positional arguments are untouched. The strings are
// owned by `storage`.
inline std::vector<char*> NormalizeFlagDashes(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& a = storage[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    const size_t end = a.find('=') == std::string::npos ? a.size() : a.find('=');
    for (size_t j = 2; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> out;
  for (std::string& s : storage) out.push_back(s.data());
  return out;
}

// Sets the --help text and parses the daemon's flags (dashes accepted).
// Header-only so that only the binaries that include it link Abseil flags.
inline void ParseDaemonFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeFlagDashes(argc, argv, storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
