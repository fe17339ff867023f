// See cluster_flags.h.
#include "client/cluster_flags.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "client/command_line.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::StatusOr<CommonFlags> ParseCommon(const std::vector<std::string>& args) {
  CommonFlags f;
  std::string gpu;
  CommandLine line("quantfleet");
  line.Text({"--coordinator"}, &f.coordinator, "HOST:PORT")
      .Text({"--token-file"}, &f.security.token_file, "a file")
      .Text({"--tls-ca"}, &f.security.tls_ca, "a file")
      .Text({"--tls-cert"}, &f.security.tls_cert, "a file")
      .Text({"--tls-key"}, &f.security.tls_key, "a file")
      .Flag({"--json"}, &f.json)
      .Flag({"--force"}, &f.force)
      .Flag({"--watch"}, &f.watch)
      .Int({"--workers"}, &f.workers, 1, "a positive number")
      .Int({"--threads-per-worker"}, &f.threads_per_worker, 1, "a positive number")
      .Text({"--calibration"}, &f.calibration, "a text file")
      .Int({"--chunks"}, &f.chunks, 1, "a positive number")
      .Text({"--gpu"}, &gpu, "auto")
      .Int({"--ctx"}, &f.ctx, 1, "a positive number")
      .Rest(&f.rest);
  QF_ASSIGN_OR_RETURN(const bool run, line.Parse(args));
  f.help = !run;
  if (!gpu.empty() && gpu != "auto") {
    return absl::InvalidArgumentError(
        absl::StrFormat("--gpu %s: on the cluster, give --gpu auto (each GPU worker uses its own --gpu)", gpu));
  }
  f.gpu = gpu == "auto";
  // The subcommands' own parsers see --json too.
  if (f.json) f.rest.push_back("--json");
  // Environment defaults, so a home lab sets them once.
  if (f.security.token_file.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TOKEN_FILE")) f.security.token_file = v;
  }
  if (f.security.tls_ca.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_CA")) f.security.tls_ca = v;
  }
  if (f.security.tls_cert.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_CERT")) f.security.tls_cert = v;
  }
  if (f.security.tls_key.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_KEY")) f.security.tls_key = v;
  }
  return f;
}

absl::StatusOr<std::unique_ptr<ClusterClient>> Connect(const CommonFlags& flags, absl::Duration timeout) {
  const std::string address = ClusterClient::DefaultAddress(flags.coordinator);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(address, flags.security);
  if (!channel.ok()) return channel.status();
  return std::make_unique<ClusterClient>(address, *channel, timeout);
}

std::string Absolute(const std::string& path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}

}  // namespace quantfleet
