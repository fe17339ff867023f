// `quantfleet inspect`: what a GGUF file holds (metadata, tensors, types,
// sizes), for people and, with --json, for scripts.
//
// Thread-safety: RunInspectCommand is called once from main.
#ifndef QUANTFLEET_CLIENT_INSPECT_COMMAND_H_
#define QUANTFLEET_CLIENT_INSPECT_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs the command; returns the process exit code (0 ok, 1 error).
int RunInspectCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_INSPECT_COMMAND_H_
