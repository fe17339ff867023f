#include "core/ops/http_endpoint.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace quantfleet {

absl::StatusOr<HostPort> ParseHostPort(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  HostPort out;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat("metrics address '%s' is not HOST:PORT", host_port));
  }
  out.host = host_port.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& host_port,
                                                                  std::map<std::string, Handler> routes) {
  absl::StatusOr<HostPort> address = ParseHostPort(host_port);
  if (!address.ok()) return address.status();
  if (address->host.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("metrics address '%s' has no host", host_port));
  }
  const std::string& host = address->host;
  const int port = address->port;

  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  endpoint->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *endpoint->server_;
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // a second daemon share the port silently.
  server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  auto shared_routes = std::make_shared<std::map<std::string, Handler>>(std::move(routes));
  server.Get(R"(.*)", [shared_routes](const httplib::Request& request, httplib::Response& response) {
    auto it = shared_routes->find(request.path);
    if (it == shared_routes->end()) {
      response.status = 404;
      response.set_content("not found\n", "text/plain; charset=utf-8");
      return;
    }
    HttpReply reply = it->second();
    response.status = reply.status;
    response.set_header("Cache-Control", "no-store");
    response.set_content(reply.body, reply.content_type.c_str());
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& response) {
    response.status = 405;
    response.set_content("read-only: only GET is served\n", "text/plain; charset=utf-8");
  };
  server.Post(R"(.*)", not_allowed);
  server.Put(R"(.*)", not_allowed);
  server.Delete(R"(.*)", not_allowed);

  if (port == 0) {
    endpoint->port_ = server.bind_to_any_port(host);
  } else {
    endpoint->port_ = server.bind_to_port(host, port) ? port : -1;
  }
  if (endpoint->port_ <= 0) {
    return absl::UnavailableError(absl::StrFormat("cannot listen for metrics on %s", host_port));
  }
  endpoint->thread_ = std::thread([&server] { server.listen_after_bind(); });
  // stop() only reaches a server that is running; wait for it (bounded).
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace quantfleet
