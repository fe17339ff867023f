// See http_probe.h.
#include "core/ops/http_probe.h"

#include <httplib.h>

#include "absl/strings/str_format.h"
#include "core/ops/http_endpoint.h"

namespace quantfleet {

absl::StatusOr<HttpProbeReply> HttpGet(const std::string& host_port, const std::string& path, absl::Duration timeout) {
  absl::StatusOr<HostPort> address = ParseHostPort(host_port);
  if (!address.ok() || address->port == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not HOST:PORT", host_port));
  }
  std::string host = address->host;
  const int port = address->port;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";

  httplib::Client client(host, port);
  const int64_t micros = absl::ToInt64Microseconds(timeout);
  client.set_connection_timeout(micros / 1000000, micros % 1000000);
  client.set_read_timeout(micros / 1000000, micros % 1000000);
  client.set_write_timeout(micros / 1000000, micros % 1000000);
  httplib::Result result = client.Get(path);
  if (!result) {
    return absl::UnavailableError(absl::StrFormat("http://%s:%d%s: %s",
                                                  host.find(':') == std::string::npos ? host : "[" + host + "]", port,
                                                  path, httplib::to_string(result.error())));
  }
  return HttpProbeReply{result->status, result->body};
}

}  // namespace quantfleet
