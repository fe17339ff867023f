// Daemon flag parsing: --multi-word-flags with dashes (as documented)
// although Abseil flags are declared with underscores, and every flag also
// settable as a QUANTFLEET_<NAME> environment variable (flags win).
//
// Thread-safety: call once from main before parsing.
#ifndef QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
#define QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_

#include <string>
#include <vector>

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
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

// Applies QUANTFLEET_<NAME> environment variables to the flags of that
// name (QUANTFLEET_STATE_DIR -> --state-dir) that `args` does not set.
// Returns false, with the reason in `error`, for a value that does not parse.
inline bool ApplyFlagEnvironment(const std::vector<char*>& args, std::string* error) {
  for (char** e = ::environ; e && *e; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (entry.rfind("QUANTFLEET_", 0) != 0 || eq == std::string::npos) continue;
    std::string name = entry.substr(11, eq - 11);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;  // not a flag of this binary
    bool on_command_line = false;
    for (size_t i = 1; i < args.size(); ++i) {
      const std::string a(args[i]);
      on_command_line |= a == "--" + name || a.rfind("--" + name + "=", 0) == 0 || a == "--no" + name;
    }
    if (on_command_line) continue;
    std::string why;
    if (!flag->ParseFrom(entry.substr(eq + 1), &why)) {
      *error = "QUANTFLEET_" + entry.substr(11, eq - 11) + ": " + why;
      return false;
    }
  }
  return true;
}

// Sets the --help text and parses the daemon's flags (dashes accepted, the
// environment as described above). Exits with status 1 on a bad value.
// Header-only so that only the binaries that include it link Abseil flags.
inline void ParseDaemonFlags(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeFlagDashes(argc, argv, storage);
  std::string error;
  if (!ApplyFlagEnvironment(args, &error)) {
    std::fprintf(stderr, "%s: %s\n", argv[0], error.c_str());
    std::exit(1);
  }
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
}

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_UTIL_FLAG_NAMES_H_
