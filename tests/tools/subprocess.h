// Runs a child process with a time limit and captures its output, for
// tests that drive real binaries.
//
// Thread-safety: RunProcess may be called from any thread.
#ifndef QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_
#define QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace quantfleet {

struct ProcessResult {
  int exit_code = -1;     // -1 when killed or not started
  bool timed_out = false;
  std::string output;     // stdout and stderr, interleaved
};

// Runs argv[0] (a path) with `argv`, killing it after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, absl::Duration timeout);

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_
