// The coordinator's assembler: source bytes served to leased tasks, result
// chunks verified (CRC32C) and written at their offsets, completed results
// made durable in groups, task failures, and the finished artifact. See
// coordinator.h.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "coordinator/coordinator.h"
#include "coordinator/request_limits.h"
#include "core/util/crc32c.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// The most bytes one ReadSource call returns.
constexpr int64_t kMaxChunk = 1 << 20;

}  // namespace

absl::StatusOr<std::string> Coordinator::ReadSource(const v1::Lease& lease, int64_t offset, int64_t length,
                                                    bool activations, const SourceChoice& which) {
  SourceSpan span;  // its file stays mapped while the bytes are copied, even if the job ends meanwhile
  uint64_t at = 0, n = 0;
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
    ActiveJob& job = *held.first;
    if (activations) {
      // They lie in the partial file, complete (the task was leased only
      // then) and no longer written.
      const std::optional<std::pair<uint64_t, uint64_t>> input = job.kind->InputActivations(job, held.second);
      if (!input) {
        return absl::InvalidArgumentError(
            absl::StrFormat("task %d of job %s reads no activations", lease.task_id(), lease.job_id()));
      }
      const uint64_t size = input->second;
      if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= size) {
        return absl::OutOfRangeError(
            absl::StrFormat("activation range [%d, +%d) is outside the task's %d bytes", offset, length, size));
      }
      std::string out(std::min<uint64_t>({static_cast<uint64_t>(length), size - offset, kMaxChunk}), '\0');
      QF_RETURN_IF_ERROR(job.part->PRead(out.data(), out.size(), input->first + static_cast<uint64_t>(offset)));
      counters_.source_bytes_served += static_cast<int64_t>(out.size());
      return out;
    }
    QF_ASSIGN_OR_RETURN(span, job.kind->Source(job, held.second, which));
    if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= span.bytes) {
      return absl::OutOfRangeError(
          absl::StrFormat("source range [%d, +%d) is outside the task's %d bytes", offset, length, span.bytes));
    }
    n = std::min<uint64_t>({static_cast<uint64_t>(length), span.bytes - offset, kMaxChunk});
    at = static_cast<uint64_t>(offset);
    counters_.source_bytes_served += static_cast<int64_t>(n);
  }
  // The copy happens outside the lock: it may wait on the disk.
  std::string out(reinterpret_cast<const char*>(span.data + at), n);
  span.file->part(span.split).DropRange(span.file_offset + at, n);
  return out;
}

absl::StatusOr<int64_t> Coordinator::Upload(const v1::Lease& lease, int64_t offset, const std::string& data,
                                            uint32_t crc32c) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  TaskRuntime& rt = held.first->rt[held.second];
  const TaskDef& def = held.first->tasks[held.second];
  if (Crc32c(data.data(), data.size()) != crc32c) {
    ++counters_.checksum_rejections;
    RecordFailure(lease.job_id(), lease.task_id(), rt.worker,
                  absl::StrFormat("chunk at offset %d failed its CRC32C (sent again)", offset));
    return absl::DataLossError(absl::StrFormat("chunk at offset %d of job %s task %d failed its CRC32C; send it again",
                                               offset, lease.job_id(), lease.task_id()));
  }
  if (offset != static_cast<int64_t>(rt.committed)) {
    return absl::FailedPreconditionError(absl::StrFormat("upload offset %d but %d bytes are committed; resume from %d",
                                                         offset, rt.committed, rt.committed));
  }
  if (rt.committed + data.size() > def.result_bytes) {
    return absl::OutOfRangeError(absl::StrFormat("upload runs past the task's %d result bytes", def.result_bytes));
  }
  if (absl::Status w = held.first->part->PWrite(data.data(), data.size(), def.result_offset + rt.committed); !w.ok()) {
    // A disk that refuses the artifact fails the job; retrying elsewhere
    // would not help.
    FailJobLocked(*held.first, absl::StrFormat("writing the artifact failed: %s", w.message()));
    return w;
  }
  rt.committed += data.size();
  counters_.result_bytes_received += static_cast<int64_t>(data.size());
  rt.crc = Crc32cExtend(rt.crc, data.data(), data.size());
  return static_cast<int64_t>(rt.committed);
}

absl::StatusOr<int64_t> Coordinator::UploadOffset(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  return static_cast<int64_t>(held.first->rt[held.second].committed);
}

absl::Status Coordinator::Complete(const v1::Lease& lease, int64_t size, uint32_t crc32c) {
  bool flush_now = false;
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
    ActiveJob& j = *held.first;
    TaskRuntime& rt = j.rt[held.second];
    const TaskDef& def = j.tasks[held.second];
    if (size != static_cast<int64_t>(def.result_bytes) || rt.committed != def.result_bytes) {
      return absl::FailedPreconditionError(
          absl::StrFormat("task %d of job %s: result is %d bytes, %d committed, %d expected", lease.task_id(),
                          lease.job_id(), size, rt.committed, def.result_bytes));
    }
    // Every chunk was checked on arrival; the whole must match too.
    if (rt.crc != crc32c) {
      rt.ResetUpload();
      ++counters_.checksum_rejections;
      RecordFailure(lease.job_id(), lease.task_id(), rt.worker, "the whole result failed its CRC32C (sent again)");
      return absl::DataLossError(absl::StrFormat(
          "task %d of job %s: the result does not match its CRC32C; upload it again", lease.task_id(), lease.job_id()));
    }
    rt.state = TaskState::kCompleted;
    ++counters_.tasks_completed;
    LockedContext ctx(this);
    j.kind->OnCompleted(j, held.second, ctx);
    j.unsynced.emplace_back(lease.task_id(), crc32c);
    const absl::Time now = clock_->Now();
    ActiveJob::WorkerStats& ws = j.per_worker[rt.worker];
    if (ws.bytes == 0) ws.first = now;
    ws.bytes += def.result_bytes;
    ws.last = now;
    if (auto w = workers_.find(rt.worker); w != workers_.end()) {
      w->second.tasks_done += 1;
      w->second.bytes_done += def.result_bytes;
      w->second.last_done = now;
    }
    flush_now = j.all_finished();
  }
  if (flush_now) FlushCompletedTasks();
  return absl::OkStatus();
}

void Coordinator::FlushCompletedTasks() {
  std::vector<std::string> finish;
  {
    absl::MutexLock l(&mu_);
    for (const std::string& id : order_) {
      ActiveJob& j = *jobs_[id];
      if (j.unsynced.empty() || j.job.state() != v1::JOB_RUNNING || !j.part) {
        j.unsynced.clear();
        continue;
      }
      absl::Status s = j.part->Sync();
      if (s.ok()) s = store_->MarkTasksDone(id, j.unsynced);
      if (!s.ok()) {
        FailJobLocked(j, absl::StrFormat("cannot make results durable: %s", s.message()));
        continue;
      }
      for (const auto& [task, crc] : j.unsynced) {
        j.rt[task].state = TaskState::kDone;
        --j.unit_tasks_left[j.tasks[task].unit];
        j.kind->OnDurable(j, static_cast<size_t>(task));
      }
      j.unsynced.clear();
      RefreshCounters(j);
      if (j.job.tasks_done() == j.job.tasks_total() && !j.finalizing) {
        j.finalizing = true;
        finish.push_back(id);
      }
    }
  }
  for (const std::string& id : finish) FinishJob(id);
  if (!finish.empty()) StartFollowUps();
}

absl::Status Coordinator::Fail(const v1::Lease& lease, const std::string& reason, bool permanent) {
  absl::MutexLock l(&mu_);
  QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
  ActiveJob& j = *held.first;
  TaskRuntime& rt = j.rt[held.second];
  const std::string what = j.kind->TaskLabel(j, held.second);
  ++counters_.task_failures;
  ++work_version_;
  RecordFailure(lease.job_id(), lease.task_id(), rt.worker, absl::StrFormat("%s: %s", what, reason));
  rt.Release();
  rt.failures += 1;
  if (permanent) {
    FailJobLocked(j, absl::StrFormat("%s: %s", what, reason));
  } else if (rt.failures >= options_.max_attempts) {
    FailJobLocked(
        j, absl::StrFormat("task %d (%s) failed %d times; last error: %s", lease.task_id(), what, rt.failures, reason));
  }
  return absl::OkStatus();
}

void Coordinator::FinishJob(const std::string& job_id) {
  PartFile* part;
  ActiveJob* job;
  {
    absl::MutexLock l(&mu_);
    ActiveJob& j = *jobs_[job_id];
    part = j.part.get();
    job = &j;
  }
  // Nobody else touches the job's tasks, kind or partial file while
  // finalizing is set.
  const absl::StatusOr<JobOutcome> outcome = job->kind->Finish(*job, *part);
  absl::StatusOr<std::string> digest = outcome.ok() ? part->Sha256() : absl::StatusOr<std::string>(outcome.status());
  absl::MutexLock l(&mu_);
  ActiveJob& j = *jobs_[job_id];
  j.finalizing = false;
  j.job.set_perplexity(outcome.ok() && outcome->perplexity ? *outcome->perplexity : 0);
  if (outcome.ok() && outcome->report) *j.job.mutable_report() = *outcome->report;
  if (outcome.ok() && outcome->expected_kld) j.job.set_expected_kld(*outcome->expected_kld);
  if (outcome.ok() && !outcome->then_tensor_types.empty() && j.job.then().has_options()) {
    // First match wins: the chosen types go ahead of the user's.
    auto* types = j.job.mutable_then()->mutable_options()->mutable_tensor_types();
    types->Add(outcome->then_tensor_types.begin(), outcome->then_tensor_types.end());
    std::rotate(types->begin(), types->end() - static_cast<int>(outcome->then_tensor_types.size()), types->end());
  }
  if (!digest.ok()) {
    FailJobLocked(j, absl::StrFormat("finishing the artifact failed: %s", digest.status().message()));
    return;
  }
  j.job.set_sha256(*digest);
  j.job.set_finished_unix_ms(absl::ToUnixMillis(clock_->Now()));
  if (!outcome->rejected.empty()) {  // the artifact stays; the job says why it failed
    RecordFailure(j.job.id(), -1, "", "job failed: " + outcome->rejected);
    j.job.set_state(v1::JOB_FAILED);
    j.job.set_error(ClipReason(outcome->rejected));
  } else {
    j.job.set_state(v1::JOB_SUCCEEDED);
  }
  j.part.reset();
  j.ReleaseInputs();
  Persist(j.job);
}

}  // namespace quantfleet
