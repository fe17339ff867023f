// The coordinator's scheduler: worker registration and liveness, leases
// (epochs, heartbeats, expiry) and the choice of a worker's next task,
// pipeline stages and preferred layers included. See coordinator.h.
#include <algorithm>
#include <optional>

#include "absl/strings/str_format.h"
#include "coordinator/coordinator.h"
#include "coordinator/request_limits.h"
#include "core/util/crc32c.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// Epochs are reserved in the store in blocks of this many.
constexpr int64_t kEpochBlock = 1024;

}  // namespace

absl::StatusOr<int64_t> Coordinator::NextEpoch() {
  if (next_epoch_ >= epoch_limit_) {
    QF_ASSIGN_OR_RETURN(next_epoch_, store_->ReserveEpochs(kEpochBlock));
    epoch_limit_ = next_epoch_ + kEpochBlock;
  }
  return next_epoch_++;
}

bool Coordinator::LiveLocked(const std::string& worker_id, absl::Time now) const {
  auto w = workers_.find(worker_id);
  return w != workers_.end() && !w->second.retired &&
         now - w->second.last_seen < 3 * options_.heartbeat + options_.lease;
}

absl::Time Coordinator::LockedContext::Now() const { return c_->clock_->Now(); }

std::vector<std::pair<std::string, const v1::WorkerInfo*>> Coordinator::LockedContext::LiveWorkers() const {
  c_->mu_.AssertHeld();
  const absl::Time now = Now();
  std::vector<std::pair<std::string, const v1::WorkerInfo*>> live;
  for (const auto& [id, w] : c_->workers_) {
    if (c_->LiveLocked(id, now)) live.emplace_back(id, &w.info);
  }
  return live;
}

bool Coordinator::LockedContext::Live(const std::string& worker_id) const {
  c_->mu_.AssertHeld();
  return c_->LiveLocked(worker_id, Now());
}

std::string Coordinator::LockedContext::WorkerName(const std::string& worker_id) const {
  c_->mu_.AssertHeld();
  auto w = c_->workers_.find(worker_id);
  return w != c_->workers_.end() ? w->second.info.name() : "";
}

absl::Status Coordinator::LockedContext::TasksCreated(ActiveJob& job) {
  c_->mu_.AssertHeld();
  ++c_->work_version_;
  c_->RefreshCounters(job);
  return c_->store_->UpdateJob(job.job);
}

void Coordinator::LockedContext::WorkAppeared() {
  c_->mu_.AssertHeld();
  ++c_->work_version_;
}

std::vector<v1::WorkerStatus> Coordinator::ListWorkers() {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<v1::WorkerStatus> out;
  for (const auto& [id, w] : workers_) out.push_back(WorkerStatusLocked(id, w, now));
  return out;
}

v1::WorkerStatus Coordinator::WorkerStatusLocked(const std::string& id, const WorkerEntry& w, absl::Time now) {
  v1::WorkerStatus s;
  s.set_worker_id(id);
  *s.mutable_info() = w.info;
  s.set_alive(LiveLocked(id, now));
  s.set_last_seen_unix_ms(absl::ToUnixMillis(w.last_seen));
  s.set_tasks_done(w.tasks_done);
  s.set_bytes_done(static_cast<int64_t>(w.bytes_done));
  const double secs = absl::ToDoubleSeconds(w.last_done - w.first_lease);
  s.set_bytes_per_second(w.bytes_done > 0 && secs > 0 ? static_cast<double>(w.bytes_done) / secs : 0.0);
  int64_t held = 0;
  for (const auto& [jid, j] : jobs_) {
    for (const TaskRuntime& rt : j->rt) held += (rt.state == TaskState::kLeased && rt.worker == id) ? 1 : 0;
  }
  s.set_tasks_held(held);
  return s;
}

v1::RegisterResponse Coordinator::Register(const v1::WorkerInfo& info) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  // A new incarnation of a known worker name: the old process is gone, so
  // its leases go back to the queue now rather than at their deadline.
  for (auto& [id, w] : workers_) {
    if (w.info.name() == info.name() && w.info.incarnation() != info.incarnation() && !w.retired) {
      w.retired = true;
      for (auto& [jid, j] : jobs_) {
        for (TaskRuntime& rt : j->rt) {
          if (rt.state == TaskState::kLeased && rt.worker == id) {
            rt.Release();
          }
        }
      }
    }
  }
  const std::string id = absl::StrFormat("%s#%d", info.name(), ++worker_seq_);
  WorkerEntry& w = workers_[id];
  ++work_version_;  // its predecessor's leases are free; a calibration may now be planned
  w.info = info;
  w.last_seen = now;
  v1::RegisterResponse r;
  r.set_worker_id(id);
  r.set_heartbeat_ms(absl::ToInt64Milliseconds(options_.heartbeat));
  return r;
}

void Coordinator::ExpireLeases() {
  absl::MutexLock l(&mu_);
  ExpireLocked();
}

void Coordinator::ExpireLocked() {
  const absl::Time now = clock_->Now();
  for (auto& [id, j] : jobs_) {
    for (TaskRuntime& rt : j->rt) {
      if (rt.state == TaskState::kLeased && rt.deadline <= now) {
        rt.Release();
        ++counters_.lease_expiries;
        ++work_version_;
        RecordFailure(id, &rt - j->rt.data(), rt.worker, "lease expired: no heartbeat from the worker");
      }
    }
  }
}

namespace {

struct VersionWatch {
  const int64_t* version;
  int64_t seen;
};
bool VersionChanged(VersionWatch* w) { return *w->version != w->seen; }

}  // namespace

absl::StatusOr<v1::AcquireTaskResponse> Coordinator::Acquire(const std::string& worker_id, absl::Duration wait,
                                                             const std::function<bool()>& cancelled) {
  // Real time: the call is held for the worker, whatever the service's clock.
  const absl::Time give_up = absl::Now() + std::clamp(wait, absl::ZeroDuration(), kMaxAcquireWait);
  auto gone = [&] { return cancelled && cancelled(); };
  v1::AcquireTaskResponse response;
  std::optional<SourceCrcRequest> crc;
  {
    absl::MutexLock l(&mu_);
    for (;;) {
      VersionWatch watch{&work_version_, work_version_};
      QF_ASSIGN_OR_RETURN(response, AcquireLocked(worker_id, &crc));
      if (response.assigned() && gone()) {
        // The worker left while it waited: its task goes back at once
        // rather than at the lease's deadline.
        const v1::Lease& lease = response.task().lease();
        jobs_[lease.job_id()]->rt[static_cast<size_t>(lease.task_id())].Release();
        ++work_version_;
        return absl::CancelledError("the worker's call was cancelled");
      }
      const absl::Time now = absl::Now();
      if (response.assigned() || now >= give_up || gone()) break;
      // Woken by any change that may free a task; leases that expire and
      // callers that leave are noticed on the next pass.
      mu_.AwaitWithDeadline(absl::Condition(&VersionChanged, &watch), std::min(give_up, now + absl::Milliseconds(500)));
    }
  }
  if (!response.assigned() && wait > absl::ZeroDuration()) response.set_retry_after_ms(0);  // it waited already
  if (!crc) return response;
  // The checksum of a task's source (up to tens of MiB) is computed outside
  // the lock: the model is mapped read-only and kept alive by the pointer.
  const uint32_t value = Crc32c(crc->span.data, crc->span.bytes);
  crc->model->part(crc->span.split).DropRange(crc->span.file_offset, crc->span.bytes);
  response.mutable_task()->set_source_crc32c(value);
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(crc->job_id);
  if (it != jobs_.end() && crc->task < it->second->source_crc.size()) it->second->source_crc[crc->task] = value;
  return response;
}

absl::StatusOr<v1::AcquireTaskResponse> Coordinator::AcquireLocked(const std::string& worker_id,
                                                                   std::optional<SourceCrcRequest>* crc) {
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || w->second.retired) {
    return absl::NotFoundError(absl::StrFormat("unknown worker %s; register again", worker_id));
  }
  const absl::Time now = clock_->Now();
  w->second.last_seen = now;
  ExpireLocked();
  v1::AcquireTaskResponse response;
  LockedContext ctx(this);
  for (const std::string& id : order_) {
    ActiveJob& j = *jobs_[id];
    if (j.job.state() != v1::JOB_RUNNING || j.finalizing) continue;
    absl::StatusOr<std::optional<size_t>> next = j.kind->NextTask(j, worker_id, w->second.info, ctx);
    if (!next.ok()) {
      FailJobLocked(j, std::string(next.status().message()));
      continue;
    }
    if (!*next) continue;
    const size_t t = **next;
    TaskRuntime& rt = j.rt[t];
    QF_ASSIGN_OR_RETURN(int64_t epoch, NextEpoch());
    if (rt.attempt > 0) ++counters_.task_retries;
    if (w->second.first_lease == absl::InfinitePast()) w->second.first_lease = now;
    rt.ResetUpload();
    rt.state = TaskState::kLeased;
    rt.attempt += 1;
    rt.epoch = epoch;
    rt.worker = worker_id;
    rt.deadline = now + options_.lease;
    response.set_assigned(true);
    v1::TaskSpec* spec = response.mutable_task();
    v1::Lease* lease = spec->mutable_lease();
    lease->set_job_id(id);
    lease->set_task_id(static_cast<int64_t>(t));
    lease->set_attempt(rt.attempt);
    lease->set_epoch(epoch);
    spec->set_result_bytes(static_cast<int64_t>(j.tasks[t].result_bytes));
    spec->set_lease_ms(absl::ToInt64Milliseconds(options_.lease));
    j.kind->Describe(j, t, spec);
    // Only for workers that may read a local copy: computed once per task
    // and kept; the worker trusts its copy only if this matches.
    if (w->second.info.data_roots_size() > 0) {
      if (const std::optional<SourceSpan> span = j.kind->LocalSource(j, t)) {
        if (j.source_crc[t]) {
          spec->set_source_crc32c(*j.source_crc[t]);
        } else {
          *crc = SourceCrcRequest{j.model, id, t, *span};
        }
      }
    }
    return response;
  }
  response.set_assigned(false);
  response.set_retry_after_ms(500);
  return response;
}

absl::StatusOr<std::pair<ActiveJob*, size_t>> Coordinator::CheckLease(const v1::Lease& lease) {
  auto it = jobs_.find(lease.job_id());
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", lease.job_id()));
  ActiveJob& j = *it->second;
  if (j.job.state() != v1::JOB_RUNNING) {
    return absl::FailedPreconditionError(absl::StrFormat("job %s is no longer running; drop its task", lease.job_id()));
  }
  if (lease.task_id() < 0 || lease.task_id() >= static_cast<int64_t>(j.rt.size())) {
    return absl::NotFoundError(absl::StrFormat("job %s has no task %d", lease.job_id(), lease.task_id()));
  }
  TaskRuntime& rt = j.rt[lease.task_id()];
  if (rt.state != TaskState::kLeased || rt.epoch != lease.epoch() || rt.attempt != lease.attempt()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("stale lease for job %s task %d (attempt %d, epoch %d): it was reassigned; drop it",
                        lease.job_id(), lease.task_id(), lease.attempt(), lease.epoch()));
  }
  if (rt.deadline <= clock_->Now()) {
    rt.Release();
    ++counters_.lease_expiries;
    ++work_version_;
    RecordFailure(lease.job_id(), lease.task_id(), rt.worker, "lease expired: no heartbeat from the worker");
    return absl::FailedPreconditionError(
        absl::StrFormat("lease for job %s task %d expired; drop it", lease.job_id(), lease.task_id()));
  }
  return std::make_pair(&j, static_cast<size_t>(lease.task_id()));
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  absl::MutexLock l(&mu_);
  auto w = workers_.find(request.worker_id());
  if (w == workers_.end() || w->second.retired) {
    return absl::NotFoundError(absl::StrFormat("unknown worker %s; register again", request.worker_id()));
  }
  const absl::Time now = clock_->Now();
  w->second.last_seen = now;
  v1::HeartbeatResponse response;
  for (const v1::Lease& lease : request.leases()) {
    absl::StatusOr<std::pair<ActiveJob*, size_t>> held = CheckLease(lease);
    if (!held.ok() || held->first->rt[held->second].worker != request.worker_id()) {
      *response.add_drop() = lease;
      continue;
    }
    held->first->rt[held->second].deadline = now + options_.lease;
  }
  // Where its tasks are, for people watching: one word per held lease at
  // most, printable characters only (it reaches terminals).
  for (int i = 0; i < request.progress_size() && i < request.leases_size(); ++i) {
    const v1::TaskProgress& p = request.progress(i);
    absl::StatusOr<std::pair<ActiveJob*, size_t>> held = CheckLease(p.lease());
    if (!held.ok() || held->first->rt[held->second].worker != request.worker_id()) continue;
    std::string step = ClipReason(p.step());
    for (char& c : step) c = (c >= 0x20 && c < 0x7f) ? c : '?';
    held->first->rt[held->second].progress = std::move(step);
    if (held->first->kind) held->first->kind->RefreshProgress(*held->first);
  }
  return response;
}

}  // namespace quantfleet
