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
                                                    bool activations, int part) {
  std::shared_ptr<GgufModel> model;  // keeps the mapping alive if the job ends meanwhile
  const ModelTensor* src = nullptr;  // null: the whole model file (a calibration chunk streams it)
  uint64_t at = 0, n = 0;
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(auto held, CheckLease(lease));
    ActiveJob& job = *held.first;
    const TaskDef& def = job.tasks[held.second];
    if (activations) {
      // The previous stage's result of the same chunk starts with them; it
      // is complete (the task was leased only then) and no longer written.
      if (!job.calibration || def.first_row == 0) {
        return absl::InvalidArgumentError(
            absl::StrFormat("task %d of job %s reads no activations", lease.task_id(), lease.job_id()));
      }
      const uint64_t size = job.calibration->activation_bytes(def.tensor);
      if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= size) {
        return absl::OutOfRangeError(
            absl::StrFormat("activation range [%d, +%d) is outside the task's %d bytes", offset, length, size));
      }
      std::string out(std::min<uint64_t>({static_cast<uint64_t>(length), size - offset, kMaxChunk}), '\0');
      const uint64_t from = job.tasks[held.second - 1].result_offset + static_cast<uint64_t>(offset);
      QF_RETURN_IF_ERROR(job.part->PRead(out.data(), out.size(), from));
      counters_.source_bytes_served += static_cast<int64_t>(out.size());
      return out;
    }
    if (job.calibration && (part < 0 || part >= job.model->n_parts())) {
      return absl::OutOfRangeError(absl::StrFormat("the model has no part %d (it has %d)", part, job.model->n_parts()));
    }
    const uint64_t size = job.calibration ? job.model->part(part).size() : def.source_bytes;
    if (offset < 0 || length <= 0 || static_cast<uint64_t>(offset) >= size) {
      return absl::OutOfRangeError(
          absl::StrFormat("source range [%d, +%d) is outside the task's %d bytes", offset, length, size));
    }
    n = std::min<uint64_t>({static_cast<uint64_t>(length), size - offset, kMaxChunk});
    at = static_cast<uint64_t>(offset);
    if (!job.calibration) {
      src = job.plan.tensors[def.tensor].source;
      at += def.source_offset;
    }
    model = job.model;
    counters_.source_bytes_served += static_cast<int64_t>(n);
  }
  // The copy happens outside the lock: it may wait on the disk.
  const MappedFile& file = model->part(src != nullptr ? src->split : part);
  const uint8_t* data = src != nullptr ? src->data + at : file.data() + at;
  std::string out(reinterpret_cast<const char*>(data), n);
  file.DropRange(src != nullptr ? src->file_offset + at : at, n);
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
    if (j.calibration) ++work_version_;  // the next pipeline stage of its chunk may start
    if (j.calibration) AddChunkPerplexityLocked(j, held.second);
    j.unsynced.emplace_back(lease.task_id(), crc32c);
    const absl::Time now = clock_->Now();
    WorkerStats& ws = j.per_worker[rt.worker];
    if (ws.bytes == 0) ws.first = now;
    ws.bytes += def.result_bytes;
    ws.last = now;
    if (auto w = workers_.find(rt.worker); w != workers_.end()) {
      w->second.tasks_done += 1;
      w->second.bytes_done += def.result_bytes;
      w->second.last_done = now;
    }
    flush_now = std::all_of(j.rt.begin(), j.rt.end(), [](const TaskRuntime& r) {
      return r.state == TaskState::kCompleted || r.state == TaskState::kDone;
    });
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
        --j.tensor_tasks_left[j.tasks[task].tensor];
        // A pipeline stage that is durable no longer needs the activations
        // its previous stage left: their disk space goes back.
        if (j.calibration && j.tasks[task].first_row > 0) {
          const TaskDef& previous = j.tasks[task - 1];
          j.part->Release(previous.result_offset, j.calibration->activation_bytes(previous.tensor));
        }
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
  const std::string tensor = j.calibration ? absl::StrFormat("chunk %d", j.tasks[held.second].tensor + 1)
                                           : j.plan.tensors[j.tasks[held.second].tensor].output.name;
  ++counters_.task_failures;
  ++work_version_;
  RecordFailure(lease.job_id(), lease.task_id(), rt.worker, absl::StrFormat("tensor '%s': %s", tensor, reason));
  rt.Release();
  rt.failures += 1;
  if (permanent) {
    FailJobLocked(j, absl::StrFormat("tensor '%s': %s", tensor, reason));
  } else if (rt.failures >= options_.max_attempts) {
    FailJobLocked(j, absl::StrFormat("task %d (tensor '%s') failed %d times; last error: %s", lease.task_id(), tensor,
                                     rt.failures, reason));
  }
  return absl::OkStatus();
}

void Coordinator::FinishJob(const std::string& job_id) {
  PartFile* part;
  const ActiveJob* job;
  {
    absl::MutexLock l(&mu_);
    ActiveJob& j = *jobs_[job_id];
    part = j.part.get();
    job = &j;
  }
  // The part file is not touched by anyone else while finalizing is set;
  // a calibration job's chunks and options do not change after Prepare.
  double perplexity = 0;
  const absl::Status s = job->calibration ? FinishCalibration(*job, *part, &perplexity) : part->Finalize();
  absl::StatusOr<std::string> digest = s.ok() ? part->Sha256() : absl::StatusOr<std::string>(s);
  absl::MutexLock l(&mu_);
  ActiveJob& j = *jobs_[job_id];
  j.finalizing = false;
  j.job.set_perplexity(perplexity);
  if (!digest.ok()) {
    FailJobLocked(j, absl::StrFormat("finishing the artifact failed: %s", digest.status().message()));
    return;
  }
  j.job.set_state(v1::JOB_SUCCEEDED);
  j.job.set_sha256(*digest);
  j.job.set_finished_unix_ms(absl::ToUnixMillis(clock_->Now()));
  j.part.reset();
  j.model.reset();
  Persist(j.job);
}

}  // namespace quantfleet
