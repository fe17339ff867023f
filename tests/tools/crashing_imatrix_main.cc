// quantfleet-crashing-imatrix: `quantfleet imatrix` that ends the process
// abruptly (exit code 3, nothing cleaned up, as a kill would) right after
// chunk N, for the checkpoint-resume tests. Built with the tests only.
//
//   quantfleet-crashing-imatrix --crash-after-chunk N IMATRIX-ARGS...
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "client/imatrix_command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int crash_after = 0;
  if (args.size() < 2 || args[0] != "--crash-after-chunk" || !absl::SimpleAtoi(args[1], &crash_after) ||
      crash_after < 1) {
    std::fprintf(stderr, "usage: quantfleet-crashing-imatrix --crash-after-chunk N IMATRIX-ARGS...\n");
    return 1;
  }
  args.erase(args.begin(), args.begin() + 2);
  quantfleet::ImatrixCommandHooks hooks;
  hooks.after_chunk = [crash_after](int chunk) {
    if (chunk == crash_after) std::_Exit(3);
  };
  return quantfleet::RunImatrixCommand(args, hooks);
}
