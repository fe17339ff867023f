// The quantfleet subcommands that talk to a coordinator: submit, status,
// watch, jobs, workers, cancel, and `cluster`, which runs a coordinator and
// workers on this machine for one job.
//
// Thread-safety: each Run function is called once from main.
#ifndef QUANTFLEET_CLIENT_CLUSTER_COMMANDS_H_
#define QUANTFLEET_CLIENT_CLUSTER_COMMANDS_H_

#include <string>
#include <vector>

namespace quantfleet {

// True for the command names this file handles.
bool IsClusterCommand(const std::string& command);

// Runs `command` with `args`; returns the process exit code.
int RunClusterCommand(const std::string& command, const std::vector<std::string>& args);

// `quantfleet imatrix --coordinator ...`: the importance matrix computed by
// the cluster's workers (the flags of `quantfleet imatrix` that apply).
int RunClusterImatrix(const std::vector<std::string>& args);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CLUSTER_COMMANDS_H_
