// Where the conformance tests find the llama.cpp oracle (fetched and built
// by fetch_oracle.sh) and quantfleet's binaries, and which arithmetic each
// side ran: the oracle's tools load the one ggml CPU backend variant that
// QUANTFLEET_ORACLE_CPU names (haswell by default, see oracle_backends.cc),
// and say so on stderr. Header-only; no state.
#ifndef QUANTFLEET_TESTS_CONFORMANCE_ORACLE_H_
#define QUANTFLEET_TESTS_CONFORMANCE_ORACLE_H_

#include <cstdlib>
#include <regex>
#include <string>

namespace quantfleet {

// The environment may point elsewhere than the build's defaults.
inline std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

inline std::string OracleDir() { return EnvOr("QUANTFLEET_ORACLE_DIR", QUANTFLEET_DEFAULT_ORACLE_DIR); }
inline std::string BinDir() { return EnvOr("QUANTFLEET_BIN_DIR", QUANTFLEET_DEFAULT_BIN_DIR); }
inline std::string Bin(const std::string& name) { return BinDir() + "/" + name; }

// The first capture of `pattern` in `output`, or "unknown".
inline std::string FindInOutput(const std::string& output, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(output, m, std::regex(pattern)) ? m[1].str() : "unknown";
}

// The ggml CPU backend variant an oracle tool reported in its output.
inline std::string OracleCpuVariant(const std::string& oracle_output) {
  return FindInOutput(oracle_output, R"(oracle: ggml CPU backend (\S+))");
}

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_CONFORMANCE_ORACLE_H_
