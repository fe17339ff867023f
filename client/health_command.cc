// See health_command.h.
#include "client/health_command.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "client/command_line.h"
#include "core/ops/http_probe.h"

namespace quantfleet {
namespace {

constexpr char kUsage[] = R"(usage: quantfleet health --http HOST:PORT [--timeout SECONDS] [--json]

Asks a coordinator's or a worker's metrics port (--metrics-listen) whether
it serves: GET /healthz. Exit code 0 when it answers 200, 1 otherwise
(draining, another status, or nothing listening), with the reason.

  --http HOST:PORT    the metrics address; 0.0.0.0 or [::] (a listen address
                      on every interface) is asked on loopback, so a daemon's
                      own QUANTFLEET_METRICS_LISTEN can be given as it is
  --timeout SECONDS   how long to wait for the answer (default 5)
  --json              {"healthy": true, "status": 200, "body": "serving"}

The coordinator answers 200 "serving", and 503 "draining" once SIGTERM
has asked it to stop; a worker answers 200 while it runs.

example (a container's HEALTHCHECK):
  quantfleet health --http "$QUANTFLEET_METRICS_LISTEN"
)";

}  // namespace

int RunHealthCommand(const std::vector<std::string>& args) {
  std::string address;
  int timeout_seconds = 5;
  bool json = false;
  CommandLine line("quantfleet health");
  line.Text({"--http"}, &address, "HOST:PORT of a metrics port")
      .Int({"--timeout"}, &timeout_seconds, 1, "a number of seconds, 1 or more")
      .Flag({"--json"}, &json);
  if (std::optional<int> exit_code = line.ParseOrExit(args, kUsage)) return *exit_code;
  if (address.empty()) {
    absl::FPrintF(stderr, "quantfleet health: give --http HOST:PORT (the daemon's --metrics-listen)\n");
    return 1;
  }
  absl::StatusOr<HttpProbeReply> reply = HttpGet(address, "/healthz", absl::Seconds(timeout_seconds));
  const bool healthy = reply.ok() && reply->status == 200;
  const std::string body = reply.ok() ? std::string(absl::StripAsciiWhitespace(reply->body)) : "";
  if (json) {
    nlohmann::json out = {{"healthy", healthy}, {"address", address}};
    if (reply.ok()) {
      out["status"] = reply->status;
      out["body"] = body;
    } else {
      out["error"] = std::string(reply.status().message());
    }
    absl::PrintF("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (!reply.ok()) {
    absl::FPrintF(stderr, "quantfleet health: %s\n", reply.status().message());
  } else if (healthy) {
    absl::PrintF("healthy: %s answers %d %s\n", address, reply->status, body);
  } else {
    absl::FPrintF(stderr, "quantfleet health: %s answers %d %s\n", address, reply->status, body);
  }
  return healthy ? 0 : 1;
}

}  // namespace quantfleet
