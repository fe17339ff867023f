// `quantfleet certs init`: creates a private CA, the coordinator's server
// certificate, worker and client certificates and the two tokens, writes a
// ready config file per daemon, and prints what goes on each machine.
//
// Thread-safety: run from main only.
#ifndef QUANTFLEET_CLIENT_CERTS_COMMAND_H_
#define QUANTFLEET_CLIENT_CERTS_COMMAND_H_

#include <string>
#include <vector>

namespace quantfleet {

// Runs `quantfleet certs ARGS...`; returns the exit code.
int RunCertsCommand(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CERTS_COMMAND_H_
