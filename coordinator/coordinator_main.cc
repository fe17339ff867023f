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
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "core/util/flag_names.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"

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

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "quantfleet-coordinator --state-dir DIR --allow-root DIR [--listen 127.0.0.1:7070]\n\n"
      "Takes quantization jobs over gRPC (JobService), leases their tasks to quantfleet-worker processes\n"
      "(WorkerService) and assembles each artifact, byte-identical to `quantfleet quantize`. Job state\n"
      "survives restarts (SQLite in --state-dir). Serves grpc.health.v1 and server reflection.");
  std::vector<std::string> arg_storage;
  std::vector<char*> args = quantfleet::NormalizeFlagDashes(argc, argv, arg_storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
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
  quantfleet::JobServiceImpl jobs(coordinator->get());
  quantfleet::WorkerServiceImpl workers(coordinator->get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&jobs);
  builder.RegisterService(&workers);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    absl::FPrintF(stderr, "quantfleet-coordinator: cannot listen on %s\n", absl::GetFlag(FLAGS_listen));
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  absl::FPrintF(stderr, "quantfleet-coordinator: listening on %s (port %d), state in %s\n",
                absl::GetFlag(FLAGS_listen), port, options.state_dir);
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    (*coordinator)->ExpireLeases();
  }
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}
