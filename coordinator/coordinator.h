// The coordinator's service logic, without gRPC: jobs, their tasks, the
// workers and their leases, and the assembly of each artifact.
//
// A job is accepted only after its input header is read, its plan (every
// tensor's type, the output layout) is built, and the job is recorded in
// the store; then the partial artifact holds the header at once and every
// task's bytes at their precomputed offsets. A task is leased with an
// epoch that only grows; uploads, heartbeats and completions that do not
// carry the current lease are rejected. A finished task is recorded only
// after its bytes are verified (size, a CRC32C per chunk as it arrives and
// one over the whole) and fsynced, which happens in groups
// (FlushCompletedTasks), so a restarted coordinator resumes without redoing
// it. When all tasks are done the artifact is fsynced, renamed into place
// and its SHA-256 recorded.
//
// Possible errors: INVALID_ARGUMENT (bad paths or options), NOT_FOUND
// (unknown job or worker), FAILED_PRECONDITION (stale or expired lease,
// wrong upload offset, existing output), RESOURCE_EXHAUSTED (too many
// active jobs, a full disk), DATA_LOSS (a chunk or result that fails its
// checksum).
//
// Thread-safety: all public methods may be called concurrently; one mutex
// guards the state. Slow work (opening and planning a new job's input, the
// checksum of a task's source, the final fsync, rename and SHA-256) runs
// outside it.
//
// The class is implemented in parts, one concept per file:
//   coordinator.cc      the job registry: submit, restore, list, cancel, status
//   scheduler.cc        workers, leases and which task a worker gets next
//   assembler.cc        source bytes out, results in, the artifact finished
// and treats every kind of job alike through JobKind (job_kind.h):
//   quantize_job.cc     quantization: plan and row-range tasks
//   calibration_job.cc  importance matrix: chunks, stages, statistics
//   evaluation_job.cc   a model measured against its base: chunks, report, gate
//   type_choice_job.cc  the best type per matrix for a size: layers measured, bytes allocated
#ifndef QUANTFLEET_COORDINATOR_COORDINATOR_H_
#define QUANTFLEET_COORDINATOR_COORDINATOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/active_job.h"
#include "coordinator/job_kind.h"
#include "coordinator/job_store.h"
#include "coordinator/part_file.h"
#include "coordinator/path_policy.h"
#include "core/gguf/gguf_model.h"
#include "core/io/file_ops.h"
#include "core/util/clock.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

struct CoordinatorOptions {
  std::string state_dir;
  std::vector<std::string> allowed_roots;
  absl::Duration lease = absl::Seconds(30);
  absl::Duration heartbeat = absl::Seconds(5);
  int max_attempts = 4;  // a task failing this often fails its job
  size_t max_active_jobs = 64;
  uint64_t task_result_bytes = 16u << 20;  // target output bytes per task
  FileOps* file_ops = FileOps::Posix();    // artifacts' I/O (tests inject faults)
};

// Service-wide counters since the coordinator started (for /metrics).
struct CoordinatorCounters {
  int64_t source_bytes_served = 0;    // source rows sent to workers
  int64_t result_bytes_received = 0;  // result bytes accepted from workers
  int64_t tasks_completed = 0;        // results verified (size and CRC32C)
  int64_t task_retries = 0;           // leases of a task that was leased before
  int64_t task_failures = 0;          // failures reported by workers
  int64_t checksum_rejections = 0;    // chunks or results that failed their CRC32C
  int64_t lease_expiries = 0;
};

class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(CoordinatorOptions options, const Clock* clock);
  ~Coordinator();

  // Clients.
  absl::StatusOr<quantfleet::v1::Job> Submit(const quantfleet::v1::SubmitJobRequest& request);
  absl::StatusOr<quantfleet::v1::Job> GetJob(const std::string& job_id);
  std::vector<quantfleet::v1::Job> ListJobs();
  absl::StatusOr<quantfleet::v1::Job> Cancel(const std::string& job_id);
  absl::StatusOr<quantfleet::v1::JobEvent> Snapshot(const std::string& job_id);
  std::vector<quantfleet::v1::WorkerStatus> ListWorkers();

  // Workers.
  quantfleet::v1::RegisterResponse Register(const quantfleet::v1::WorkerInfo& info);
  // With `wait`, holds the call (real time, at most kMaxAcquireWait) until
  // a task for the worker appears: a new job, a released or expired lease,
  // a pipeline stage's input completed.
  // `cancelled` (may be null) tells whether the caller went away: the wait
  // ends, and a task found for a caller that left is put back at once.
  absl::StatusOr<quantfleet::v1::AcquireTaskResponse> Acquire(const std::string& worker_id,
                                                              absl::Duration wait = absl::ZeroDuration(),
                                                              const std::function<bool()>& cancelled = nullptr);
  static constexpr absl::Duration kMaxAcquireWait = absl::Seconds(5);
  absl::StatusOr<quantfleet::v1::HeartbeatResponse> Heartbeat(const quantfleet::v1::HeartbeatRequest& request);
  // Up to `length` source bytes of the leased task from `offset`.
  // With `activations`: of a pipeline stage's input activations instead;
  // a task streaming whole models reads the one `which` names.
  absl::StatusOr<std::string> ReadSource(const quantfleet::v1::Lease& lease, int64_t offset, int64_t length,
                                         bool activations = false, const SourceChoice& which = {});
  // Writes one result chunk; returns the new committed offset.
  absl::StatusOr<int64_t> Upload(const quantfleet::v1::Lease& lease, int64_t offset, const std::string& data,
                                 uint32_t crc32c);
  absl::StatusOr<int64_t> UploadOffset(const quantfleet::v1::Lease& lease);
  absl::Status Complete(const quantfleet::v1::Lease& lease, int64_t size, uint32_t crc32c);
  absl::Status Fail(const quantfleet::v1::Lease& lease, const std::string& reason, bool permanent);

  // Puts tasks whose lease deadline passed back in the queue.
  void ExpireLeases();

  // Makes verified results durable: one fsync of each artifact with new
  // results, then one store transaction; finishes jobs whose every task is
  // durable. Called periodically, and at once when a job's last result
  // arrives.
  void FlushCompletedTasks() ABSL_LOCKS_EXCLUDED(mu_);

  CoordinatorCounters counters() const;
  int64_t lease_expiries() const { return counters().lease_expiries; }

  // Everything the status page shows: the newest `max_jobs` jobs with
  // their per-worker progress, the workers and the recent failures.
  quantfleet::v1::ClusterStatus Status(size_t max_jobs);

 private:
  // A task source's CRC32C to compute after Acquire lets go of the lock.
  struct SourceCrcRequest {
    std::shared_ptr<GgufModel> model;  // keeps the mapping alive
    std::string job_id;
    size_t task = 0;
    SourceSpan span;
  };
  struct WorkerEntry {
    quantfleet::v1::WorkerInfo info;
    absl::Time last_seen;
    int64_t tasks_done = 0;
    uint64_t bytes_done = 0;
    bool retired = false;                           // replaced by a newer incarnation
    absl::Time first_lease = absl::InfinitePast();  // for its throughput
    absl::Time last_done = absl::InfinitePast();
  };

  Coordinator(CoordinatorOptions options, const Clock* clock, PathPolicy paths, std::unique_ptr<StateDirLock> lock,
              std::unique_ptr<JobStore> store);

  class LockedContext;  // the SchedulingContext lent to job kinds under mu_

  absl::Status Restore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rewrites a request that runs as two jobs (a calibrated quantization; a
  // quantization with `target` or `evaluate`) into its first and returns
  // the second (which may split again when it is submitted), or nullopt.
  // Checks the whole chain first (CheckFollowUps).
  absl::StatusOr<std::optional<quantfleet::v1::SubmitJobRequest>> SplitFollowUp(
      quantfleet::v1::SubmitJobRequest& request);
  // The texts a request's `evaluate` and `target` name can be read, and
  // they say what they need.
  absl::Status CheckFollowUps(const quantfleet::v1::SubmitJobRequest& request) const;
  // The job a retried submit already created (by request id), none, or
  // RESOURCE_EXHAUSTED when the active-job cap is reached.
  absl::StatusOr<std::optional<quantfleet::v1::Job>> AdmitLocked(const quantfleet::v1::SubmitJobRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job record of an accepted request, its kind attached and prepared
  // (input opened, tasks cut where they can be). Reads files: runs without
  // holding mu_, on a job no other thread sees yet.
  absl::StatusOr<std::unique_ptr<ActiveJob>> PrepareJob(quantfleet::v1::Job record);
  bool LiveLocked(const std::string& worker_id, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> NextEpoch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases the next task `worker_id` may take; sets `crc` when the task's
  // source checksum is still to be computed (outside the lock).
  absl::StatusOr<quantfleet::v1::AcquireTaskResponse> AcquireLocked(const std::string& worker_id,
                                                                    std::optional<SourceCrcRequest>* crc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job and task a lease names, if the lease is the current one.
  absl::StatusOr<std::pair<ActiveJob*, size_t>> CheckLease(const quantfleet::v1::Lease& lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailJobLocked(ActiveJob& job, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Submits the job that follows each succeeded one (a calibrated job's
  // quantization, a measured quantization's evaluation) that has not
  // started.
  void StartFollowUps() ABSL_LOCKS_EXCLUDED(mu_);
  void RefreshCounters(ActiveJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Persist(const quantfleet::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps the last few failures for the status page.
  void RecordFailure(const std::string& job_id, int64_t task_id, const std::string& worker_id,
                     const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  quantfleet::v1::WorkerStatus WorkerStatusLocked(const std::string& id, const WorkerEntry& w, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  quantfleet::v1::JobEvent SnapshotLocked(const ActiveJob& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewJobId();

  const CoordinatorOptions options_;
  const Clock* const clock_;
  const PathPolicy paths_;
  const KindEnvironment kinds_;  // what every job kind is lent
  const std::unique_ptr<StateDirLock> lock_;

  mutable absl::Mutex mu_;
  std::unique_ptr<JobStore> store_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // job ids, oldest first
  std::map<std::string, std::unique_ptr<ActiveJob>> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, WorkerEntry> workers_ ABSL_GUARDED_BY(mu_);
  int64_t worker_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // Grows whenever a task may have become available (see Acquire's wait).
  int64_t work_version_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t epoch_limit_ ABSL_GUARDED_BY(mu_) = 0;
  CoordinatorCounters counters_ ABSL_GUARDED_BY(mu_);
  std::deque<quantfleet::v1::FailureEvent> failures_ ABSL_GUARDED_BY(mu_);  // newest first
};

// What the coordinator lends job kinds while it holds its lock (see
// scheduler.cc); used only with mu_ held.
class Coordinator::LockedContext final : public SchedulingContext {
 public:
  explicit LockedContext(Coordinator* c) : c_(c) {}
  absl::Time Now() const override;
  std::vector<std::pair<std::string, const quantfleet::v1::WorkerInfo*>> LiveWorkers() const override;
  bool Live(const std::string& worker_id) const override;
  std::string WorkerName(const std::string& worker_id) const override;
  absl::Status TasksCreated(ActiveJob& job) override;
  void WorkAppeared() override;

 private:
  Coordinator* const c_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_COORDINATOR_H_
