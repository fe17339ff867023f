// Lets daemons take --multi-word-flags with dashes (as documented) while
// Abseil flags are declared with underscores.
//
// Thread-safety: call once from main before parsing.
#ifndef QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
#define QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_

#include <string>
#include <vector>

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

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
