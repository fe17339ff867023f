// A small read-only HTTP server for a daemon's metrics port: GET routes,
// each answered by a function, served from a background thread.
//
// Thread-safety: handlers run on the server's threads, possibly several at
// once, so they must be thread-safe. Start and the destructor are for one
// owner thread.
#ifndef QUANTFLEET_CORE_OPS_HTTP_ENDPOINT_H_
#define QUANTFLEET_CORE_OPS_HTTP_ENDPOINT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace quantfleet {

// A metrics address, "127.0.0.1:9464" or "[::1]:9464" (brackets removed;
// the host may be empty, the port 0 to 65535).
struct HostPort {
  std::string host;
  int port = 0;
};
// INVALID_ARGUMENT naming `host_port` when it is not HOST:PORT.
absl::StatusOr<HostPort> ParseHostPort(const std::string& host_port);

struct HttpReply {
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  int status = 200;  // e.g. 503 from /healthz while a daemon drains
};

class HttpEndpoint {
 public:
  using Handler = std::function<HttpReply()>;

  // Listens on `host_port` ("127.0.0.1:9464"; port 0 picks a free one) and
  // serves GET `routes` (exact paths); anything else is 404, other methods
  // 405. INVALID_ARGUMENT for a malformed address, UNAVAILABLE when the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& host_port,
                                                             std::map<std::string, Handler> routes);
  ~HttpEndpoint();  // stops serving and joins the thread
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const { return port_; }

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_OPS_HTTP_ENDPOINT_H_
