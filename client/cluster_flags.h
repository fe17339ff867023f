// The flags every command that talks to a coordinator shares (where it is,
// TLS and token, --json, --watch, and submit's calibration and evaluation
// flags), and the connection they describe.
//
// Thread-safety: pure functions; a ClusterClient as cluster_client.h says.
#ifndef QUANTFLEET_CLIENT_CLUSTER_FLAGS_H_
#define QUANTFLEET_CLIENT_CLUSTER_FLAGS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/cluster_client.h"
#include "proto/channel_factory.h"

namespace quantfleet {

struct CommonFlags {
  bool help = false;  // -h or --help was given (nothing after it was parsed)
  std::string coordinator;
  ChannelSecurity security;
  bool json = false;
  bool force = false;
  bool watch = false;
  int workers = 2;
  int threads_per_worker = 0;
  std::string calibration;  // submit --calibration TEXT
  bool gpu = false;         // --gpu auto: calibrate on GPU workers
  int chunks = 0;
  int ctx = 0;
  std::vector<std::string> rest;
};

// Parses the shared flags; the rest (and --json again) is left in `rest`
// for the subcommand. Environment defaults: QUANTFLEET_TOKEN_FILE,
// QUANTFLEET_TLS_CA, QUANTFLEET_TLS_CERT, QUANTFLEET_TLS_KEY.
absl::StatusOr<CommonFlags> ParseCommon(const std::vector<std::string>& args);

// A client for the coordinator the flags name, with `timeout` per call.
absl::StatusOr<std::unique_ptr<ClusterClient>> Connect(const CommonFlags& flags, absl::Duration timeout);

// `path` made absolute here (paths travel to the coordinator); "" stays "".
std::string Absolute(const std::string& path);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CLUSTER_FLAGS_H_
