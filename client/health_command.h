// `quantfleet health`: asks a daemon's metrics port whether it serves
// (GET /healthz), for a container's HEALTHCHECK, a readiness probe or a
// person at a shell.
//
// Thread-safety: RunHealthCommand is called once from main.
#ifndef QUANTFLEET_CLIENT_HEALTH_COMMAND_H_
#define QUANTFLEET_CLIENT_HEALTH_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs the command; returns the process exit code (0 healthy, 1 not, or
// an error).
int RunHealthCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_HEALTH_COMMAND_H_
