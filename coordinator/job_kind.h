// What a kind of job (quantization, importance matrix, ...) brings to the
// coordinator: how its inputs become tasks, which task a worker takes
// next, what a worker is told about one, and how the finished tasks become
// the artifact. The registry, scheduler and assembler handle every kind
// alike through this interface; a new kind is a new file and one line in
// NewJobKind.
//
// Thread-safety: a kind belongs to one ActiveJob and keeps that job's
// particular state. Prepare runs before the job is registered and Finish
// while the job is finalizing (each with nobody else touching the job);
// every other method runs under the coordinator's lock.
#ifndef QUANTFLEET_COORDINATOR_JOB_KIND_H_
#define QUANTFLEET_COORDINATOR_JOB_KIND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/active_job.h"
#include "coordinator/path_policy.h"
#include "core/io/file_ops.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

// What every kind may use, fixed for the coordinator's life.
struct KindEnvironment {
  const PathPolicy* paths = nullptr;  // which further inputs a job may name
  FileOps* file_ops = nullptr;        // the partial files' I/O
  uint64_t task_result_bytes = 0;     // target output bytes per task, where a kind cuts by size
  std::string converted_dir;          // where checkpoint folders are converted for whole-model jobs
};

// What the coordinator lends a kind while it holds its lock.
class SchedulingContext {
 public:
  virtual ~SchedulingContext() = default;
  virtual absl::Time Now() const = 0;
  // The live workers: (worker id, what it registered with).
  virtual std::vector<std::pair<std::string, const quantfleet::v1::WorkerInfo*>> LiveWorkers() const = 0;
  virtual bool Live(const std::string& worker_id) const = 0;
  // The name `worker_id` registered with (live or not), or "" if unknown.
  virtual std::string WorkerName(const std::string& worker_id) const = 0;
  // The job's tasks were cut after it was registered (a plan was made):
  // its counters are refreshed, the job is recorded at once (where every
  // result lies must be durable before any task is leased) and waiting
  // workers are woken.
  virtual absl::Status TasksCreated(ActiveJob& job) = 0;
  // A task may have become available (e.g. a pipeline stage's input is
  // complete): waiting workers are woken.
  virtual void WorkAppeared() = 0;
};

// What a kind reports about a finished artifact.
struct JobOutcome {
  std::optional<double> perplexity;                        // of the calibration text
  std::optional<quantfleet::v1::EvaluationReport> report;  // an evaluation's
  // Not empty: the artifact was written, but the job fails for this reason
  // (an evaluation over its gate).
  std::string rejected;
  // A type choice's types (NAME=TYPE), put ahead of the tensor_types of
  // the quantization that follows, and their expected KLD.
  std::vector<std::string> then_tensor_types;
  std::optional<double> expected_kld;
};

class JobKind {
 public:
  virtual ~JobKind() = default;

  // Opens and checks the job's inputs and, where it can already, cuts the
  // tasks (ActiveJob::SetTasks) and opens the partial file; a kind that
  // waits for something (a plan over the live workers) cuts them from
  // NextTask instead.
  virtual absl::Status Prepare(ActiveJob& job) = 0;
  // Whether the job's tasks are cut: a prepared job with none has nothing
  // to do and finishes at once.
  virtual bool TasksCut(const ActiveJob& job) const = 0;
  // The pending task `worker_id` (registered with `info`) should take
  // next, or nullopt. An error fails the job.
  virtual absl::StatusOr<std::optional<size_t>> NextTask(ActiveJob& job, const std::string& worker_id,
                                                         const quantfleet::v1::WorkerInfo& info,
                                                         SchedulingContext& ctx) = 0;
  // Fills in what a worker needs to run `task`, beyond its lease and
  // result size.
  virtual void Describe(const ActiveJob& job, size_t task, quantfleet::v1::TaskSpec* spec) const = 0;
  // The input bytes of `task` that a worker with a copy of the input reads
  // from it (their CRC32C is sent along), or nullopt.
  virtual std::optional<SourceSpan> LocalSource(const ActiveJob& job, size_t task) const = 0;
  // The input bytes the coordinator serves for `task` (`which`: the model
  // and part, where a task streams whole models).
  virtual absl::StatusOr<SourceSpan> Source(const ActiveJob& job, size_t task, const SourceChoice& which) const = 0;
  // Where in the partial file the activations `task` starts from lie
  // (offset, bytes), or nullopt when it reads none.
  virtual std::optional<std::pair<uint64_t, uint64_t>> InputActivations(const ActiveJob& job, size_t task) const {
    (void)job, (void)task;
    return std::nullopt;
  }
  // What `task` works on, for messages: "tensor 'blk.0.ffn_up.weight'".
  virtual std::string TaskLabel(const ActiveJob& job, size_t task) const = 0;
  // `task`'s result was verified and written.
  virtual void OnCompleted(ActiveJob& job, size_t task, SchedulingContext& ctx) { (void)job, (void)task, (void)ctx; }
  // `task`'s result is durable.
  virtual void OnDurable(ActiveJob& job, size_t task) { (void)job, (void)task; }
  // Sets the kind's own progress fields of the job record.
  virtual void RefreshProgress(ActiveJob& job) const { (void)job; }
  // Turns the partial file, every task durable, into the artifact.
  virtual absl::StatusOr<JobOutcome> Finish(const ActiveJob& job, PartFile& part) = 0;
  // The job ended (no task will be leased or read again): drops the
  // inputs the kind holds beside job.model (another model, a text, an
  // imatrix), so their files close and their memory goes back.
  virtual void ReleaseInputs() {}
  // Completes the request of the job that follows this one (job.then).
  virtual void PrepareFollowUp(const ActiveJob& job, const SchedulingContext& ctx,
                               quantfleet::v1::SubmitJobRequest* next) const {
    (void)job, (void)ctx, (void)next;
  }
};

// The kind of `job`, by its record's `kind`.
std::unique_ptr<JobKind> NewJobKind(const quantfleet::v1::Job& job, const KindEnvironment& env);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_JOB_KIND_H_
