#include "worker/worker_metrics.h"

#include "absl/strings/str_cat.h"
#include "core/ops/daemon_flags.h"
#include "core/ops/prometheus_text.h"
#include "worker/gpu_telemetry.h"

namespace quantfleet {

std::string WorkerMetricsText(const std::string& worker_name, const WorkerCounters& counters,
                              const std::vector<GpuDevice>& gpus) {
  PrometheusText page;
  page.Family("quantfleet_build_info", "gauge", "Version of this worker (the value is always 1).");
  page.Sample({{"version", BuildVersion()}, {"component", "worker"}, {"worker", worker_name}}, 1);
  page.Counter("quantfleet_worker_tasks_done_total", "Tasks this worker completed.",
               static_cast<double>(counters.tasks_done));
  page.Counter("quantfleet_worker_tasks_failed_total", "Tasks this worker could not complete.",
               static_cast<double>(counters.tasks_failed));
  page.Counter("quantfleet_worker_gpu_tasks_total", "Tasks quantized on a GPU.",
               static_cast<double>(counters.gpu_tasks));
  page.Counter("quantfleet_worker_local_reads_total", "Task sources read from a data root instead of downloaded.",
               static_cast<double>(counters.local_reads));
  page.Counter("quantfleet_worker_source_bytes_downloaded_total", "Source bytes downloaded from the coordinator.",
               static_cast<double>(counters.source_bytes_downloaded));
  page.Counter("quantfleet_worker_result_bytes_uploaded_total", "Result bytes the coordinator accepted.",
               static_cast<double>(counters.result_bytes_uploaded));
  page.Counter("quantfleet_worker_registrations_total",
               "Registrations with the coordinator (one per coordinator start).",
               static_cast<double>(counters.registrations));

  const std::vector<GpuSample> samples = SampleGpus(gpus);
  page.Family("quantfleet_gpu_memory_total_bytes", "gauge", "Memory of each GPU this worker uses.");
  for (const GpuSample& g : samples) {
    page.Sample({{"gpu", absl::StrCat(g.index)}, {"name", g.name}}, static_cast<double>(g.memory_total_bytes));
  }
  page.Family("quantfleet_gpu_memory_used_bytes", "gauge", "Memory in use on each GPU (all processes; needs NVML).");
  for (const GpuSample& g : samples) {
    if (g.memory_used_bytes >= 0) {
      page.Sample({{"gpu", absl::StrCat(g.index)}, {"name", g.name}}, static_cast<double>(g.memory_used_bytes));
    }
  }
  page.Family("quantfleet_gpu_utilization_ratio", "gauge", "Fraction of time each GPU was busy (needs NVML).");
  for (const GpuSample& g : samples) {
    if (g.utilization_percent >= 0) {
      page.Sample({{"gpu", absl::StrCat(g.index)}, {"name", g.name}}, g.utilization_percent / 100.0);
    }
  }
  return page.text();
}

}  // namespace quantfleet
