#include "worker/worker_daemon.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/gpu/gpu_devices.h"
#include "core/model/forward_pass.h"
#include "core/ops/daemon_flags.h"
#include "core/ops/http_endpoint.h"
#include "core/ops/prometheus_text.h"
#include "core/util/byte_size.h"
#include "proto/channel_factory.h"
#include "worker/worker_agent.h"
#include "worker/worker_metrics.h"

ABSL_FLAG(std::string, coordinator, "",
          "HOST:PORT of the coordinator (default: $QUANTFLEET_COORDINATOR or 127.0.0.1:7070)");
ABSL_FLAG(std::string, name, "", "this worker's name (default: the host name)");
ABSL_FLAG(int, threads, 0, "threads for quantizing (default: all cores)");
ABSL_FLAG(std::vector<std::string>, data_root, {},
          "directory where this worker sees the coordinator's model files at the same paths (repeatable); "
          "sources found there are read locally when their CRC32C matches, else downloaded");
ABSL_FLAG(std::string, cache_dir, "",
          "where models streamed for calibration are kept and reused (default: $XDG_CACHE_HOME/quantfleet or "
          "~/.cache/quantfleet); models under a --data-root are read in place instead");
ABSL_FLAG(std::string, memory, "",
          "model bytes this worker may hold while calibrating, e.g. 20GiB or 0 for no limit (default: 80% of RAM); "
          "a model larger than every worker's --memory is cut into pipeline stages of layers across workers");
ABSL_FLAG(int64_t, max_tasks, 0, "exit after this many tasks (0: run until stopped)");
ABSL_FLAG(std::string, token_file, "", "file holding the worker token (needs --tls-ca)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA file that signed the coordinator's certificate (enables TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate of this worker (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of this worker (mTLS)");
ABSL_FLAG(std::string, gpu, "auto", "GPUs to quantize on: auto (all visible), none, or indices like 0,1");
ABSL_FLAG(std::string, gpu_memory, "",
          "device memory this worker may use on each GPU, e.g. 8GiB: quantization stages its rows within it, and a "
          "GPU calibration holds at most this much of a model (default: 90% of the GPU)");
ABSL_FLAG(bool, list_devices, false, "print the GPUs this worker sees (or why there are none) and exit");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT for this worker's Prometheus metrics (/metrics: tasks, bytes, GPU memory and utilisation) "
          "and /healthz; off when empty");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

namespace quantfleet {

int RunWorkerDaemon(int argc, char** argv, const LinkDecorator& decorate) {
  quantfleet::ParseDaemonFlags(
      argc, argv,
      "quantfleet-worker [--coordinator HOST:PORT] [--name NAME] [--threads N]\n\n"
      "Pulls tasks from a quantfleet coordinator, quantizes them with the same kernels as\n"
      "`quantfleet quantize`, and uploads the results. SIGTERM finishes the task in hand, then exits.");
  if (absl::GetFlag(FLAGS_list_devices)) {
    const std::vector<quantfleet::GpuDevice> gpus = quantfleet::ListGpus();
    if (gpus.empty()) absl::PrintF("no GPU: %s\n", quantfleet::NoGpuReason());
    for (const quantfleet::GpuDevice& g : gpus) {
      absl::PrintF("gpu %d: %s, %.1f GiB, sm_%d\n", g.index, g.name, g.memory_bytes / 1073741824.0,
                   g.compute_capability);
    }
    return 0;
  }
  const std::string address = quantfleet::DefaultCoordinatorAddress(absl::GetFlag(FLAGS_coordinator));
  quantfleet::WorkerOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  if (options.name.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    options.name = host;
  }
  options.threads = absl::GetFlag(FLAGS_threads) > 0 ? absl::GetFlag(FLAGS_threads)
                                                     : static_cast<int>(std::thread::hardware_concurrency());
  options.max_tasks = absl::GetFlag(FLAGS_max_tasks);
  quantfleet::SetBlasThreads(options.threads);  // calibration chunks
  options.data_roots = absl::GetFlag(FLAGS_data_root);
  options.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  if (options.cache_dir.empty()) {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != 0) {
      options.cache_dir = std::string(xdg) + "/quantfleet";
    } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != 0) {
      options.cache_dir = std::string(home) + "/.cache/quantfleet";
    }
  }
  const std::string gpu_flag = absl::GetFlag(FLAGS_gpu);
  const std::vector<quantfleet::GpuDevice> visible = quantfleet::ListGpus();
  if (gpu_flag == "auto") {
    for (const quantfleet::GpuDevice& g : visible) options.gpus.push_back(g.index);
  } else if (gpu_flag != "none") {
    for (absl::string_view part : absl::StrSplit(gpu_flag, ',')) {
      int index;
      if (!absl::SimpleAtoi(part, &index) || index < 0 || index >= static_cast<int>(visible.size())) {
        absl::FPrintF(stderr, "quantfleet-worker: --gpu %s: '%s' is not a visible GPU (%d visible%s)\n", gpu_flag, part,
                      visible.size(), visible.empty() ? ": " + quantfleet::NoGpuReason() : "");
        return 1;
      }
      options.gpus.push_back(index);
    }
  }
  // A size flag ("20GiB"); false (after saying why) when it does not parse.
  auto size_flag = [](const char* name, const std::string& value, uint64_t* out) {
    if (value.empty()) return true;
    absl::StatusOr<uint64_t> bytes = quantfleet::ParseByteSize(value);
    if (!bytes.ok()) {
      absl::FPrintF(stderr, "quantfleet-worker: --%s: %s\n", name, bytes.status().message());
      return false;
    }
    *out = *bytes;
    return true;
  };
  if (absl::GetFlag(FLAGS_memory).empty()) {  // default: 80% of RAM
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    options.memory_bytes =
        pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 5 * 4 : 0;
  }
  if (!size_flag("memory", absl::GetFlag(FLAGS_memory), &options.memory_bytes) ||
      !size_flag("gpu-memory", absl::GetFlag(FLAGS_gpu_memory), &options.gpu_memory_bytes)) {
    return 1;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  quantfleet::ChannelSecurity security{absl::GetFlag(FLAGS_token_file), absl::GetFlag(FLAGS_tls_ca),
                                       absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key)};
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = quantfleet::MakeChannel(address, security);
  if (!channel.ok()) {
    absl::FPrintF(stderr, "quantfleet-worker: %s\n", channel.status().message());
    return 1;
  }
  std::unique_ptr<quantfleet::CoordinatorLink> link = quantfleet::NewGrpcCoordinatorLink(*channel, absl::Seconds(60));
  if (decorate) link = decorate(std::move(link));
  quantfleet::WorkerAgent agent(options, std::move(link));
  std::unique_ptr<quantfleet::HttpEndpoint> metrics;
  if (const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen); !metrics_listen.empty()) {
    std::vector<quantfleet::GpuDevice> used;
    for (int index : options.gpus) used.push_back(visible[static_cast<size_t>(index)]);
    absl::StatusOr<std::unique_ptr<quantfleet::HttpEndpoint>> endpoint = quantfleet::HttpEndpoint::Start(
        metrics_listen, {{"/metrics",
                          [&agent, name = options.name, used] {
                            return quantfleet::HttpReply{quantfleet::PrometheusText::kContentType,
                                                         WorkerMetricsText(name, agent.counters(), used)};
                          }},
                         {"/healthz", [] { return quantfleet::HttpReply{.body = "ok\n"}; }}});
    if (!endpoint.ok()) {
      absl::FPrintF(stderr, "quantfleet-worker: --metrics-listen: %s\n", endpoint.status().message());
      return 1;
    }
    metrics = *std::move(endpoint);
    absl::FPrintF(stderr, "quantfleet-worker %s: /metrics and /healthz on http://%s/ (port %d)\n", options.name,
                  metrics_listen, metrics->port());
  }
  absl::FPrintF(stderr, "quantfleet-worker %s: coordinator %s, %d threads, %d GPUs, %s for calibration\n", options.name,
                address, options.threads, options.gpus.size(),
                options.memory_bytes == 0
                    ? std::string("no memory limit")
                    : absl::StrFormat("%.1f MiB", static_cast<double>(options.memory_bytes) / 1048576.0));
  absl::Status s = agent.Run(g_stop);
  if (!s.ok()) {
    absl::FPrintF(stderr, "quantfleet-worker %s: %s\n", options.name, s.message());
    return 1;
  }
  absl::FPrintF(stderr, "quantfleet-worker %s: stopped after %d tasks (%d read from a data root, %d on a GPU)\n",
                options.name, agent.tasks_done(), agent.local_reads(), agent.gpu_tasks());
  return 0;
}

}  // namespace quantfleet
