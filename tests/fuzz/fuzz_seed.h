// The corpus seed a fuzz target writes when asked: with
// QUANTFLEET_FUZZ_WRITE_SEED=FILE set, the target's seed bytes go to FILE
// and the process ends (exit 0, or 1 when the file cannot be written);
// scripts/test.sh asks before fuzzing. Header-only; no state.
#ifndef QUANTFLEET_TESTS_FUZZ_FUZZ_SEED_H_
#define QUANTFLEET_TESTS_FUZZ_FUZZ_SEED_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace quantfleet {

// Writes `seed()` and exits when the variable is set; returns otherwise.
inline void WriteSeedIfAsked(const std::function<std::string()>& seed) {
  const char* path = std::getenv("QUANTFLEET_FUZZ_WRITE_SEED");
  if (path == nullptr) return;
  const std::string bytes = seed();
  FILE* f = std::fopen(path, "wb");
  const bool ok = f != nullptr && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (f != nullptr) std::fclose(f);
  std::exit(ok ? 0 : 1);
}

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_FUZZ_FUZZ_SEED_H_
