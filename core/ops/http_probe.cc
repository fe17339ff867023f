// See http_probe.h.
#include "core/ops/http_probe.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace quantfleet {

absl::StatusOr<HttpProbeReply> HttpGet(const std::string& host_port, const std::string& path, absl::Duration timeout) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not HOST:PORT", host_port));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
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
