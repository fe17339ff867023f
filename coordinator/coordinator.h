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
//   quantize_job.cc     the quantization job kind: plan and task cutting
//   calibration_job.cc  the importance-matrix job kind: chunks, stages, statistics
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
#include "coordinator/calibration_plan.h"
#include "coordinator/job_store.h"
#include "coordinator/part_file.h"
#include "coordinator/path_policy.h"
#include "core/calibration/chunk_statistics.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/quantize_plan.h"
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

// One task: a run of rows of one tensor.
struct TaskDef {
  size_t tensor = 0;  // index into plan.tensors
  int64_t first_row = 0;
  int64_t n_rows = 0;
  uint64_t source_offset = 0;  // within the tensor's source bytes
  uint64_t source_bytes = 0;
  uint64_t result_offset = 0;  // absolute, within the artifact
  uint64_t result_bytes = 0;
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

// Cuts a plan into tasks of about `target_result_bytes` (never crossing an
// expert boundary; every tensor with data gets at least one task).
std::vector<TaskDef> CutTasks(const QuantizePlan& plan, uint64_t target_result_bytes);

// Converts wire options to the planner's; errors name the bad option.
absl::StatusOr<QuantizeOptions> OptionsFromProto(const quantfleet::v1::QuantizeOptions& proto);

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
  // a calibration task streaming a split model reads part `part`.
  absl::StatusOr<std::string> ReadSource(const quantfleet::v1::Lease& lease, int64_t offset, int64_t length,
                                         bool activations = false, int part = 0);
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
  // kCompleted: verified and written, not yet fsynced; kDone: durable.
  enum class TaskState { kPending, kLeased, kCompleted, kDone };
  struct TaskRuntime {
    TaskState state = TaskState::kPending;
    int64_t attempt = 0;
    int64_t epoch = 0;
    std::string worker;
    absl::Time deadline;
    uint64_t committed = 0;
    uint32_t crc = 0;  // CRC32C of the committed bytes, extended chunk by chunk
    int failures = 0;

    // Forgets the bytes uploaded under the current lease.
    void ResetUpload() {
      committed = 0;
      crc = 0;
    }
    // Back in the queue: the lease ended (expired, failed, or its worker left).
    void Release() {
      state = TaskState::kPending;
      ResetUpload();
    }
  };
  // A task source's CRC32C to compute after Acquire lets go of the lock.
  struct SourceCrcRequest {
    std::shared_ptr<GgufModel> model;  // keeps the mapping alive
    std::string job_id;
    size_t task = 0;
    const uint8_t* data = nullptr;
    uint64_t bytes = 0;
    int split = 0;             // the model part holding the bytes
    uint64_t file_offset = 0;  // of the bytes within that part
  };
  struct WorkerStats {
    uint64_t bytes = 0;
    absl::Time first = absl::InfinitePast();
    absl::Time last = absl::InfinitePast();
  };
  struct ActiveJob {
    quantfleet::v1::Job job;
    std::shared_ptr<GgufModel> model;  // shared: sources are copied outside the lock
    std::optional<Imatrix> imatrix;
    QuantizePlan plan;
    std::vector<TaskDef> tasks;
    std::vector<TaskRuntime> rt;
    std::vector<std::optional<uint32_t>> source_crc;  // per task, computed on first lease
    std::vector<int64_t> tensor_tasks_left;
    std::vector<int> tensor_layer;  // quantization: the block of each planned tensor (-1: none)
    std::unique_ptr<PartFile> part;
    std::map<std::string, WorkerStats> per_worker;
    std::vector<std::pair<int64_t, uint32_t>> unsynced;  // completed tasks awaiting fsync
    bool finalizing = false;
    // Importance-matrix jobs: once planned, one task per chunk and stage
    // (task chunk * stages + stage), whose result (the stage's output
    // activations unless it is the last, then its statistics) lies in the
    // partial file at result_offset. TaskDef.tensor is the chunk,
    // TaskDef.first_row the stage.
    struct Calibration {
      ImatrixLayout layout;
      std::vector<std::vector<TokenId>> chunks;
      std::string model_id;  // size and modification time of the model file
      ModelFootprint footprint;
      int n_layer = 0;
      int n_embd = 0;
      std::vector<int> stage_end;  // from the job's plan; empty until planned
      std::vector<ImatrixLayout> stage_layouts;
      std::vector<std::string> stage_owner;  // the worker holding each stage of a pipeline
      // Perplexity sums of the chunks completed so far (in arrival order,
      // for progress only; the final value is summed in chunk order).
      double running_nll = 0;
      int64_t running_predictions = 0;

      size_t stages() const { return stage_end.size(); }
      int first_layer(size_t stage) const { return stage == 0 ? 0 : stage_end[stage - 1]; }
      // Bytes of the activations leaving a stage of chunk `chunk`.
      size_t activation_bytes(size_t chunk) const { return chunks[chunk].size() * static_cast<size_t>(n_embd) * 4; }
    };
    std::optional<Calibration> calibration;
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

  absl::Status Restore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job a retried submit already created (by request id), none, or
  // RESOURCE_EXHAUSTED when the active-job cap is reached.
  absl::StatusOr<std::optional<quantfleet::v1::Job>> AdmitLocked(const quantfleet::v1::SubmitJobRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Opens the model, loads the imatrix and builds plan and tasks. Touches
  // `job` alone and reads files: a new job, which no other thread sees yet,
  // is prepared without holding mu_.
  absl::Status Prepare(ActiveJob& job, const std::string& input, const std::string& output);
  // Prepare for importance-matrix jobs: tokenizes the text, cuts chunks.
  absl::Status PrepareCalibration(ActiveJob& job, const std::string& input, const std::string& output);
  // Fixes how an unplanned calibration job runs, if the live workers can
  // hold its model; otherwise records in the job that it waits for them.
  absl::Status PlanCalibrationLocked(ActiveJob& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tasks and partial file of a calibration job from its plan (touches
  // `job` alone).
  absl::Status BuildCalibrationTasks(ActiveJob& job);
  // The stage of a planned calibration job that `worker_id` may work on
  // (claiming a pipeline stage whose holder is gone), or nullopt.
  std::optional<size_t> StageFor(ActiveJob& job, const std::string& worker_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool LiveLocked(const std::string& worker_id, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Says in the job's `waiting` which pipeline stage, with work left, no
  // live worker holds or can take (clears it when none).
  void UpdateStageWaitingLocked(ActiveJob& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Per layer, whether its quantization tasks go first to `worker_name`:
  // it held the layer in the pipeline before, or the layer's holder is gone.
  std::vector<bool> PreferredLayersLocked(const ActiveJob& job, const std::string& worker_name, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the chunks' statistics in chunk order and writes the imatrix.
  absl::Status FinishCalibration(const ActiveJob& job, PartFile& part, double* perplexity);
  absl::StatusOr<int64_t> NextEpoch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases the next task `worker_id` may take; sets `crc` when the task's
  // source checksum is still to be computed (outside the lock).
  absl::StatusOr<quantfleet::v1::AcquireTaskResponse> AcquireLocked(const std::string& worker_id,
                                                                    std::optional<SourceCrcRequest>* crc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a worker needs to run task `task` (the lease is filled in by
  // AcquireLocked): a quantization task, or a calibration task of `stage`.
  void DescribeQuantizeTask(const ActiveJob& job, size_t task, quantfleet::v1::TaskSpec* spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DescribeCalibrationTask(const ActiveJob& job, size_t task, size_t stage, quantfleet::v1::TaskSpec* spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static SourceCrcRequest SourceCrcRequestFor(const ActiveJob& job, size_t task);
  // Adds a completed calibration task's perplexity sums to the job's
  // running perplexity (progress only).
  void AddChunkPerplexityLocked(ActiveJob& job, size_t task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job and task a lease names, if the lease is the current one.
  absl::StatusOr<std::pair<ActiveJob*, size_t>> CheckLease(const quantfleet::v1::Lease& lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailJobLocked(ActiveJob& job, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Submits the quantization of every calibrated job whose importance
  // matrix is done and whose quantization has not started.
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

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_COORDINATOR_H_
