// Runs a child process with a time limit and captures its output, for
// tests that drive real binaries.
//
// Thread-safety: RunProcess may be called from any thread.
#ifndef QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_
#define QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/util/local_process.h"

namespace quantfleet {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed or not started
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path) with `argv`, killing it after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, absl::Duration timeout);

// A child process running in the background, its output appended to a log
// file. Killed (SIGKILL) and reaped on destruction if still running.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  int pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the exit code, or -1 (killed
  // by a signal, or still running after the timeout).
  int Wait(absl::Duration timeout);
  // True while the process has not exited (reaps it if it has).
  bool Running();

 private:
  int pid_ = -1;
  bool reaped_ = false;
};

// Loopback helpers (FreeLoopbackPort, WaitForLoopbackPort) are in
// core/util/local_process.h.

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_TOOLS_SUBPROCESS_H_
