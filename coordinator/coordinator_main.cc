// quantfleet-coordinator: takes quantization jobs over gRPC, leases their
// tasks to workers and assembles each artifact.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "coordinator/access_control.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/grpc_services.h"
#include "coordinator/status_page.h"
#include "core/io/mapped_file.h"
#include "core/ops/daemon_flags.h"
#include "core/ops/http_endpoint.h"
#include "core/ops/prometheus_text.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "HOST:PORT to listen on; loopback by default (listening on a LAN address is an explicit choice)");
ABSL_FLAG(std::string, state_dir, "", "directory for the job store (required; one coordinator per directory)");
ABSL_FLAG(std::vector<std::string>, allow_root, {},
          "directory that job inputs and outputs must resolve inside (comma-separated or repeated; required)");
ABSL_FLAG(int, lease_seconds, 30, "a task not heartbeated for this long goes to another worker");
ABSL_FLAG(int, heartbeat_seconds, 5, "how often workers heartbeat");
ABSL_FLAG(int, max_active_jobs, 64, "jobs queued or running at once; more are refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, task_mib, 16, "target output MiB per task");
ABSL_FLAG(int, max_attempts, 4, "a task that fails this many times fails its job");
ABSL_FLAG(int, drain_seconds, 2,
          "on SIGTERM, report NOT_SERVING (grpc.health.v1) for this long while still serving, then stop");
ABSL_FLAG(std::string, token_file, "", "file holding the client token (JobService callers); needs TLS");
ABSL_FLAG(std::string, worker_token_file, "", "file holding the worker token (WorkerService callers); needs TLS");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of this coordinator");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of this coordinator");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA file: callers must present a certificate it signed (mTLS)");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT for Prometheus metrics (/metrics), the status page (/) and /healthz; off when empty. "
          "Read-only; keep it on loopback or a trusted network (it shows job paths)");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  quantfleet::ParseDaemonFlags(
      argc, argv,
      "quantfleet-coordinator --state-dir DIR --allow-root DIR [--listen 127.0.0.1:7070]\n\n"
      "Takes quantization jobs over gRPC (JobService), leases their tasks to quantfleet-worker processes\n"
      "(WorkerService) and assembles each artifact, byte-identical to `quantfleet quantize`. Job state\n"
      "survives restarts (SQLite in --state-dir). Serves grpc.health.v1 and server reflection.");
  quantfleet::CoordinatorOptions options;
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.allowed_roots = absl::GetFlag(FLAGS_allow_root);
  options.lease = absl::Seconds(absl::GetFlag(FLAGS_lease_seconds));
  options.heartbeat = absl::Seconds(absl::GetFlag(FLAGS_heartbeat_seconds));
  options.max_active_jobs = static_cast<size_t>(absl::GetFlag(FLAGS_max_active_jobs));
  options.task_result_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_task_mib)) << 20;
  options.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  if (options.state_dir.empty() || options.allowed_roots.empty()) {
    absl::FPrintF(stderr, "quantfleet-coordinator: --state-dir and --allow-root are required (see --help)\n");
    return 1;
  }
  absl::StatusOr<std::unique_ptr<quantfleet::Coordinator>> coordinator =
      quantfleet::Coordinator::Open(options, quantfleet::RealClock::Get());
  if (!coordinator.ok()) {
    absl::FPrintF(stderr, "quantfleet-coordinator: %s\n", coordinator.status().message());
    return 1;
  }
  // Access: loopback needs nothing; anything else needs TLS and tokens.
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const bool tls = !absl::GetFlag(FLAGS_tls_cert).empty();
  const bool tokens = !absl::GetFlag(FLAGS_token_file).empty() || !absl::GetFlag(FLAGS_worker_token_file).empty();
  if (tokens && !tls) {
    absl::FPrintF(stderr, "quantfleet-coordinator: tokens are only accepted over TLS; add --tls-cert and --tls-key\n");
    return 1;
  }
  if (tokens && (absl::GetFlag(FLAGS_token_file).empty() || absl::GetFlag(FLAGS_worker_token_file).empty())) {
    absl::FPrintF(stderr,
                  "quantfleet-coordinator: give both --token-file (clients) and --worker-token-file (workers)\n");
    return 1;
  }
  if (!quantfleet::IsLoopbackAddress(listen) && !(tls && tokens)) {
    absl::FPrintF(stderr,
                  "quantfleet-coordinator: listening on %s (beyond this machine) needs TLS and tokens: "
                  "--tls-cert, --tls-key, --token-file and --worker-token-file (see the README's home-lab guide)\n",
                  listen);
    return 1;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  std::shared_ptr<const quantfleet::TokenRoles> roles;  // null: no tokens
  if (tls) {
    grpc::SslServerCredentialsOptions ssl(absl::GetFlag(FLAGS_tls_client_ca).empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    absl::StatusOr<std::string> cert = quantfleet::ReadRegularFile(absl::GetFlag(FLAGS_tls_cert));
    absl::StatusOr<std::string> key = quantfleet::ReadRegularFile(absl::GetFlag(FLAGS_tls_key));
    if (!cert.ok() || !key.ok()) {
      absl::FPrintF(stderr, "quantfleet-coordinator: %s\n", (!cert.ok() ? cert : key).status().message());
      return 1;
    }
    pair.cert_chain = *cert;
    pair.private_key = *key;
    ssl.pem_key_cert_pairs.push_back(pair);
    if (!absl::GetFlag(FLAGS_tls_client_ca).empty()) {
      absl::StatusOr<std::string> ca = quantfleet::ReadRegularFile(absl::GetFlag(FLAGS_tls_client_ca));
      if (!ca.ok()) {
        absl::FPrintF(stderr, "quantfleet-coordinator: %s\n", ca.status().message());
        return 1;
      }
      ssl.pem_root_certs = *ca;
    }
    credentials = grpc::SslServerCredentials(ssl);
    if (tokens) {
      absl::StatusOr<std::string> client_token = quantfleet::ReadRegularFile(absl::GetFlag(FLAGS_token_file));
      absl::StatusOr<std::string> worker_token = quantfleet::ReadRegularFile(absl::GetFlag(FLAGS_worker_token_file));
      if (!client_token.ok() || !worker_token.ok()) {
        absl::FPrintF(stderr, "quantfleet-coordinator: %s\n",
                      (!client_token.ok() ? client_token : worker_token).status().message());
        return 1;
      }
      roles = std::make_shared<const quantfleet::TokenRoles>(std::string(absl::StripAsciiWhitespace(*client_token)),
                                                             std::string(absl::StripAsciiWhitespace(*worker_token)));
      credentials->SetAuthMetadataProcessor(std::make_shared<quantfleet::TokenAuthProcessor>(roles));
    }
  }
  quantfleet::JobServiceImpl jobs(coordinator->get(), roles.get());
  quantfleet::WorkerServiceImpl workers(coordinator->get(), roles.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&jobs);
  builder.RegisterService(&workers);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    absl::FPrintF(stderr, "quantfleet-coordinator: cannot listen on %s\n", absl::GetFlag(FLAGS_listen));
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  absl::FPrintF(stderr, "quantfleet-coordinator: listening on %s (port %d), state in %s\n", absl::GetFlag(FLAGS_listen),
                port, options.state_dir);
  std::unique_ptr<quantfleet::HttpEndpoint> metrics;
  if (const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen); !metrics_listen.empty()) {
    quantfleet::Coordinator* c = coordinator->get();
    absl::StatusOr<std::unique_ptr<quantfleet::HttpEndpoint>> endpoint = quantfleet::HttpEndpoint::Start(
        metrics_listen,
        {{"/metrics",
          [c] {
            return quantfleet::HttpReply{quantfleet::PrometheusText::kContentType, CoordinatorMetricsText(*c)};
          }},
         {"/healthz",
          [] {
            // Mirrors grpc.health.v1: 503 once SIGTERM starts the drain.
            return g_stop ? quantfleet::HttpReply{.body = "draining\n", .status = 503}
                          : quantfleet::HttpReply{.body = "serving\n"};
          }},
         {"/api/status",
          [c] {
            return quantfleet::HttpReply{"application/json", StatusJson(*c)};
          }},
         {"/", [] {
            return quantfleet::HttpReply{"text/html; charset=utf-8", quantfleet::StatusPageHtml()};
          }}});
    if (!endpoint.ok()) {
      absl::FPrintF(stderr, "quantfleet-coordinator: --metrics-listen: %s\n", endpoint.status().message());
      return 1;
    }
    metrics = *std::move(endpoint);
    absl::FPrintF(stderr, "quantfleet-coordinator: status page and /metrics on http://%s/ (port %d)\n", metrics_listen,
                  metrics->port());
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    (*coordinator)->ExpireLeases();
    (*coordinator)->FlushCompletedTasks();
  }
  // Draining: health checks say NOT_SERVING while calls in flight finish
  // and load balancers move away; then stop.
  server->GetHealthCheckService()->SetServingStatus(false);
  absl::FPrintF(stderr, "quantfleet-coordinator: draining for %d s\n", absl::GetFlag(FLAGS_drain_seconds));
  const absl::Time drain_end = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  while (absl::Now() < drain_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*coordinator)->FlushCompletedTasks();
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  (*coordinator)->FlushCompletedTasks();
  return 0;
}
