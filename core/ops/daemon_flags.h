// Daemon configuration: every flag of quantfleet-coordinator and
// quantfleet-worker can come from three places, in this order of
// precedence:
//   1. the command line (--state-dir DIR; dashes or underscores),
//   2. QUANTFLEET_<FLAG> environment variables (QUANTFLEET_STATE_DIR),
//   3. a TOML file named by --config FILE or QUANTFLEET_CONFIG, whose keys
//      are the flag names (state-dir = "/var/lib/quantfleet").
// --help lists every flag with its default.
//
// Thread-safety: call ParseDaemonFlags once from main before other threads
// start; the pieces below touch the process-wide Abseil flag registry and
// are for the same single-threaded start-up (and for tests).
#ifndef QUANTFLEET_CORE_OPS_DAEMON_FLAGS_H_
#define QUANTFLEET_CORE_OPS_DAEMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace quantfleet {

// Parses the daemon's flags as described above, after setting the --help
// text to `usage`. Prints the reason and exits with status 1 on an unknown
// flag or config key, or a value that does not parse.
void ParseDaemonFlags(int argc, char** argv, const char* usage);

// argv with '-' turned into '_' inside each --flag name (up to any '=');
// values and positional arguments are untouched.
std::vector<std::string> NormalizeFlagDashes(const std::vector<std::string>& argv);

// The --config file named on the (normalized) command line, else in
// QUANTFLEET_CONFIG, else "".
std::string ConfigFilePath(const std::vector<std::string>& argv);

// Sets flags from the TOML file at `path`: strings, integers, floats,
// booleans and arrays (a repeated flag). INVALID_ARGUMENT names the file,
// the line and the key for a syntax error, an unknown flag, a nested table
// or a value the flag rejects; NOT_FOUND when the file cannot be read.
absl::Status ApplyConfigFile(const std::string& path);

// Sets flags from QUANTFLEET_<NAME> entries of `environment` ("NAME=value"
// strings, as in environ). Entries that name no flag of this binary are
// ignored (another daemon's settings may share the environment).
absl::Status ApplyFlagEnvironment(const std::vector<std::string>& environment);

// "quantfleet <version> (<build type>, CUDA on|off)", for --version and
// the build_info metric.
std::string BuildInfo();
std::string BuildVersion();

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_OPS_DAEMON_FLAGS_H_
