// A job as the coordinator runs it: its record, its tasks with their
// leases, the partial artifact, and its kind (see job_kind.h), which owns
// whatever is particular to quantizing or calibrating.
//
// Thread-safety: none of its own; the coordinator touches an ActiveJob
// only under its lock, or alone before the job is registered (Prepare),
// or while `finalizing` keeps everyone else off the partial file.
#ifndef QUANTFLEET_COORDINATOR_ACTIVE_JOB_H_
#define QUANTFLEET_COORDINATOR_ACTIVE_JOB_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/part_file.h"
#include "core/gguf/gguf_model.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

class JobKind;

// One task: where its result lies in the artifact, and which part of the
// job it is (the kind says what `unit` and the rows mean).
struct TaskDef {
  size_t unit = 0;  // quantization: the plan's tensor; calibration, evaluation: the chunk; type choice: the group
  int64_t first_row = 0;
  int64_t n_rows = 0;
  uint64_t source_offset = 0;  // within the unit's source bytes
  uint64_t source_bytes = 0;
  uint64_t result_offset = 0;  // absolute, within the partial file
  uint64_t result_bytes = 0;
};

// kCompleted: verified and written, not yet fsynced; kDone: durable.
enum class TaskState { kPending, kLeased, kCompleted, kDone };

// A task's lease and upload, as the scheduler and assembler see it.
struct TaskRuntime {
  TaskState state = TaskState::kPending;
  int64_t attempt = 0;
  int64_t epoch = 0;
  std::string worker;
  absl::Time deadline;
  uint64_t committed = 0;
  uint32_t crc = 0;  // CRC32C of the committed bytes, extended chunk by chunk
  int failures = 0;
  std::string progress;  // the worker's last word on where the task is (TaskProgress)

  bool finished() const { return state == TaskState::kCompleted || state == TaskState::kDone; }
  // Forgets the bytes uploaded under the current lease.
  void ResetUpload() {
    committed = 0;
    crc = 0;
  }
  // Back in the queue: the lease ended (expired, failed, or its worker left).
  void Release() {
    state = TaskState::kPending;
    progress.clear();
    ResetUpload();
  }
};

// Bytes of a job's input file that a task reads.
struct SourceSpan {
  std::shared_ptr<GgufModel> file;  // the model holding them: keeps them mapped while they are copied
  int split = 0;                    // the part of `file` holding them
  const uint8_t* data = nullptr;    // mapped, read-only
  uint64_t bytes = 0;
  uint64_t file_offset = 0;  // within that part
};

// Which model bytes a worker streams (ReadSourceRequest's part and base).
struct SourceChoice {
  int part = 0;       // a split model's part
  bool base = false;  // an evaluation's base model rather than the measured one
};

struct ActiveJob {
  ActiveJob();
  ~ActiveJob();

  struct WorkerStats {
    uint64_t bytes = 0;
    absl::Time first = absl::InfinitePast();
    absl::Time last = absl::InfinitePast();
  };

  quantfleet::v1::Job job;
  std::unique_ptr<JobKind> kind;
  std::shared_ptr<GgufModel> model;  // shared: sources are copied outside the lock
  std::vector<TaskDef> tasks;
  std::vector<TaskRuntime> rt;
  std::vector<std::optional<uint32_t>> source_crc;  // per task, computed on first lease
  std::vector<int64_t> unit_tasks_left;             // per unit (tensor or chunk)
  std::unique_ptr<PartFile> part;
  std::map<std::string, WorkerStats> per_worker;
  std::vector<std::pair<int64_t, uint32_t>> unsynced;  // completed tasks awaiting fsync
  bool finalizing = false;

  // The tasks, their runtime and the per-unit counts for `units` units.
  void SetTasks(std::vector<TaskDef> defs, size_t units);
  bool all_finished() const;
  // The job ended: its input files close and the kind drops what only its
  // tasks needed (JobKind::ReleaseInputs).
  void ReleaseInputs();
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_ACTIVE_JOB_H_
