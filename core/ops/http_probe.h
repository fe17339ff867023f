// One GET to a daemon's metrics port: how `quantfleet health` (a
// container's HEALTHCHECK, a readiness probe) asks /healthz.
//
// Thread-safety: a pure function; each call opens its own connection.
#ifndef QUANTFLEET_CORE_OPS_HTTP_PROBE_H_
#define QUANTFLEET_CORE_OPS_HTTP_PROBE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace quantfleet {

struct HttpProbeReply {
  int status = 0;    // the HTTP status code
  std::string body;  // the body, as sent
};

// GETs `path` from `host_port` ("127.0.0.1:9464", "[::1]:9464"). A listen
// address that means every interface (0.0.0.0, [::], or no host at all)
// is reached on loopback, so a daemon's own --metrics-listen value can be
// given as it is. Any reply is returned, whatever its status; errors:
// INVALID_ARGUMENT for an address that is not HOST:PORT, UNAVAILABLE when
// nothing answers within `timeout`.
absl::StatusOr<HttpProbeReply> HttpGet(const std::string& host_port, const std::string& path, absl::Duration timeout);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_OPS_HTTP_PROBE_H_
