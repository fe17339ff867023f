#include "coordinator/coordinator_metrics.h"

#include <map>

#include "absl/strings/ascii.h"
#include "core/ops/daemon_flags.h"
#include "core/ops/prometheus_text.h"

namespace quantfleet {
namespace {

namespace v1 = quantfleet::v1;

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  if (name.rfind("JOB_", 0) == 0) name = name.substr(4);
  return absl::AsciiStrToLower(name);
}

}  // namespace

std::string CoordinatorMetricsText(Coordinator& coordinator) {
  const std::vector<v1::Job> jobs = coordinator.ListJobs();
  // The current process of each worker name (not those it replaced).
  const v1::ClusterStatus status = coordinator.Status(0);
  const auto& workers = status.workers();
  const CoordinatorCounters c = coordinator.counters();
  PrometheusText page;

  page.Family("quantfleet_build_info", "gauge", "Version of this coordinator (the value is always 1).");
  page.Sample({{"version", BuildVersion()}, {"component", "coordinator"}}, 1);

  std::map<v1::JobState, int> by_state;
  for (int s = v1::JOB_QUEUED; s <= v1::JOB_CANCELLED; ++s) by_state[static_cast<v1::JobState>(s)] = 0;
  int64_t tasks_total = 0, tasks_done = 0, bytes_total = 0, bytes_done = 0;
  for (const v1::Job& job : jobs) {
    ++by_state[job.state()];
    if (job.state() == v1::JOB_RUNNING) {
      tasks_total += job.tasks_total();
      tasks_done += job.tasks_done();
      bytes_total += job.bytes_total();
      bytes_done += job.bytes_done();
    }
  }
  page.Family("quantfleet_jobs", "gauge", "Jobs known to the coordinator, by state.");
  for (const auto& [state, n] : by_state) page.Sample({{"state", StateName(state)}}, n);
  page.Family("quantfleet_running_tasks", "gauge", "Tasks of the running jobs: all of them, and those done.");
  page.Sample({{"state", "total"}}, static_cast<double>(tasks_total));
  page.Sample({{"state", "done"}}, static_cast<double>(tasks_done));
  page.Family("quantfleet_running_bytes", "gauge", "Output bytes of the running jobs: all of them, and those done.");
  page.Sample({{"state", "total"}}, static_cast<double>(bytes_total));
  page.Sample({{"state", "done"}}, static_cast<double>(bytes_done));
  page.Family("quantfleet_job_progress_ratio", "gauge", "Fraction of each running job's output bytes done.");
  for (const v1::Job& job : jobs) {
    if (job.state() != v1::JOB_RUNNING) continue;
    page.Sample({{"job", job.id()}},
                job.bytes_total() > 0 ? static_cast<double>(job.bytes_done()) / job.bytes_total() : 0.0);
  }

  page.Counter("quantfleet_tasks_completed_total", "Task results verified (size and CRC32C).",
               static_cast<double>(c.tasks_completed));
  page.Counter("quantfleet_task_retries_total", "Leases of a task that had been leased before.",
               static_cast<double>(c.task_retries));
  page.Counter("quantfleet_task_failures_total", "Task failures reported by workers.",
               static_cast<double>(c.task_failures));
  page.Counter("quantfleet_checksum_rejections_total", "Chunks or results rejected for a CRC32C mismatch.",
               static_cast<double>(c.checksum_rejections));
  page.Counter("quantfleet_lease_expiries_total", "Leases that ran out without a heartbeat.",
               static_cast<double>(c.lease_expiries));
  page.Counter("quantfleet_source_bytes_sent_total", "Source bytes sent to workers.",
               static_cast<double>(c.source_bytes_served));
  page.Counter("quantfleet_result_bytes_received_total", "Result bytes accepted from workers.",
               static_cast<double>(c.result_bytes_received));

  page.Family("quantfleet_worker_up", "gauge", "1 while the worker heartbeats, 0 once it is lost.");
  for (const v1::WorkerStatus& w : workers) {
    page.Sample({{"worker", w.info().name()}, {"host", w.info().hostname()}}, w.alive() ? 1 : 0);
  }
  page.Family("quantfleet_worker_tasks_done_total", "counter", "Tasks each worker completed.");
  for (const v1::WorkerStatus& w : workers) {
    page.Sample({{"worker", w.info().name()}}, static_cast<double>(w.tasks_done()));
  }
  page.Family("quantfleet_worker_result_bytes_total", "counter", "Output bytes each worker delivered.");
  for (const v1::WorkerStatus& w : workers) {
    page.Sample({{"worker", w.info().name()}}, static_cast<double>(w.bytes_done()));
  }
  page.Family("quantfleet_worker_bytes_per_second", "gauge", "Each worker's output bytes per second while working.");
  for (const v1::WorkerStatus& w : workers) page.Sample({{"worker", w.info().name()}}, w.bytes_per_second());
  page.Family("quantfleet_worker_tasks_held", "gauge", "Tasks each worker holds a lease on.");
  for (const v1::WorkerStatus& w : workers) {
    page.Sample({{"worker", w.info().name()}}, static_cast<double>(w.tasks_held()));
  }
  page.Family("quantfleet_worker_gpus", "gauge", "GPUs each worker quantizes on.");
  for (const v1::WorkerStatus& w : workers) page.Sample({{"worker", w.info().name()}}, w.info().gpus_size());
  return page.text();
}

}  // namespace quantfleet
