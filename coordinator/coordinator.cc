// The coordinator's job registry: opening the state directory, restoring
// jobs after a restart, submit (admission, preparation outside the lock,
// recording), the client-facing views (jobs, snapshots, cluster status),
// cancel and the follow-up quantization of calibrated jobs. See
// coordinator.h for the whole and its thread-safety.
#include "coordinator/coordinator.h"

#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/quantize_job.h"
#include "coordinator/request_limits.h"
#include "core/calibration/eval_gate.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

bool Terminal(v1::JobState s) { return s == v1::JOB_SUCCEEDED || s == v1::JOB_FAILED || s == v1::JOB_CANCELLED; }

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(CoordinatorOptions options, const Clock* clock) {
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  QF_ASSIGN_OR_RETURN(std::unique_ptr<StateDirLock> lock, StateDirLock::Acquire(options.state_dir));
  QF_ASSIGN_OR_RETURN(PathPolicy paths, PathPolicy::Create(options.allowed_roots));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store, JobStore::Open(options.state_dir + "/jobs.sqlite"));
  std::unique_ptr<Coordinator> c(
      new Coordinator(std::move(options), clock, std::move(paths), std::move(lock), std::move(store)));
  std::vector<std::string> to_finish;
  {
    absl::MutexLock l(&c->mu_);
    QF_RETURN_IF_ERROR(c->Restore());
    for (const std::string& id : c->order_) {
      if (c->jobs_[id]->finalizing) to_finish.push_back(id);
    }
  }
  // Jobs whose every task was done before the restart, but not finished;
  // calibrated jobs whose quantization had not started.
  for (const std::string& id : to_finish) c->FinishJob(id);
  c->StartFollowUps();
  return c;
}

Coordinator::Coordinator(CoordinatorOptions options, const Clock* clock, PathPolicy paths,
                         std::unique_ptr<StateDirLock> lock, std::unique_ptr<JobStore> store)
    : options_(std::move(options)),
      clock_(clock),
      paths_(std::move(paths)),
      kinds_{&paths_, options_.file_ops, options_.task_result_bytes, options_.state_dir + "/converted"},
      lock_(std::move(lock)),
      store_(std::move(store)) {}

Coordinator::~Coordinator() { FlushCompletedTasks(); }

std::string Coordinator::NewJobId() {
  static thread_local std::mt19937_64 gen(std::random_device{}());
  return absl::StrFormat("job-%012x", gen() & 0xffffffffffffull);
}

void Coordinator::Persist(const v1::Job& job) {
  if (absl::Status s = store_->UpdateJob(job); !s.ok()) {
    // The in-memory state stays authoritative for this run; the failure
    // is visible in the log of the process serving it.
    absl::FPrintF(stderr, "coordinator: cannot record job %s: %s\n", job.id(), s.message());
  }
}

absl::StatusOr<std::unique_ptr<ActiveJob>> Coordinator::PrepareJob(v1::Job record) {
  auto job = std::make_unique<ActiveJob>();
  job->job = std::move(record);
  job->kind = NewJobKind(job->job, kinds_);
  if (absl::Status s = job->kind->Prepare(*job); !s.ok()) {
    if (job->part) job->part->Remove();
    return s;
  }
  return job;
}

absl::Status Coordinator::Restore() {
  QF_ASSIGN_OR_RETURN(std::vector<StoredJob> stored, store_->LoadAll());
  for (StoredJob& s : stored) {
    const std::string id = s.job.id();
    s.job.set_error(ClipReason(s.job.error()));  // bounded since; older stores may hold more
    std::unique_ptr<ActiveJob> job;
    if (Terminal(s.job.state())) {
      job = std::make_unique<ActiveJob>();
      job->job = std::move(s.job);
    } else {
      const bool part_exists = std::filesystem::exists(PartFile::PathFor(s.job.output(), id));
      absl::StatusOr<std::unique_ptr<ActiveJob>> prepared = PrepareJob(s.job);
      if (!prepared.ok()) {
        job = std::make_unique<ActiveJob>();
        job->job = std::move(s.job);
        job->job.set_state(v1::JOB_FAILED);
        job->job.set_error(absl::StrFormat("cannot resume after a restart: %s", prepared.status().message()));
        Persist(job->job);
      } else {
        job = *std::move(prepared);
        if (part_exists) {
          // Tasks recorded done have their bytes fsynced in the partial file.
          for (int64_t t : s.done_tasks) {
            if (t >= 0 && t < static_cast<int64_t>(job->rt.size()) && job->rt[t].state != TaskState::kDone) {
              job->rt[t].state = TaskState::kDone;
              --job->unit_tasks_left[job->tasks[t].unit];
            }
          }
        }
      }
      RefreshCounters(*job);
    }
    order_.push_back(id);
    jobs_[id] = std::move(job);
  }
  for (const std::string& id : order_) {
    ActiveJob& j = *jobs_[id];
    if (!Terminal(j.job.state()) && j.job.tasks_done() == j.job.tasks_total() && j.part) j.finalizing = true;
  }
  return absl::OkStatus();
}

void Coordinator::RefreshCounters(ActiveJob& job) {
  int64_t done = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < job.rt.size(); ++i) {
    if (job.rt[i].state == TaskState::kDone) {
      ++done;
      bytes += job.tasks[i].result_bytes;
    }
  }
  int64_t units_done = 0;
  for (int64_t left : job.unit_tasks_left) units_done += left == 0 ? 1 : 0;
  job.job.set_tasks_done(done);
  job.job.set_bytes_done(static_cast<int64_t>(bytes));
  job.job.set_tensors_done(units_done);
  if (job.kind) job.kind->RefreshProgress(job);
}

absl::StatusOr<std::optional<v1::Job>> Coordinator::AdmitLocked(const v1::SubmitJobRequest& request) {
  if (!request.request_id().empty()) {
    QF_ASSIGN_OR_RETURN(std::optional<std::string> existing, store_->FindByRequestId(request.request_id()));
    if (existing && jobs_.count(*existing)) return jobs_[*existing]->job;
  }
  size_t active = 0;
  for (const auto& [id, j] : jobs_) active += Terminal(j->job.state()) ? 0 : 1;
  if (active >= options_.max_active_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the coordinator already has %d active jobs (the limit); wait for one to finish", active));
  }
  return std::nullopt;
}

namespace {

// "DIR/model-Q4_K_M.gguf" -> "DIR/model-Q4_K_M" + suffix: a file that goes
// with an artifact.
std::string Beside(const std::string& output, const char* suffix) {
  return absl::StrCat(output.substr(0, output.size() - (absl::EndsWith(output, ".gguf") ? 5 : 0)), suffix);
}

}  // namespace

absl::Status Coordinator::CheckFollowUps(const v1::SubmitJobRequest& request) const {
  if (request.has_evaluate()) {
    if (request.evaluate().text().empty()) return absl::InvalidArgumentError("evaluate: give the evaluation text");
    QF_RETURN_IF_ERROR(paths_.ResolveInput(request.evaluate().text()).status());
  }
  if (request.has_target()) {
    const v1::TargetSizeOptions& t = request.target();
    if (t.text().empty()) return absl::InvalidArgumentError("target: give the text the types are measured on");
    if (t.file_bytes() <= 0 && !(t.bits_per_weight() > 0)) {
      return absl::InvalidArgumentError("target: give a file size or bits per weight");
    }
    QF_RETURN_IF_ERROR(paths_.ResolveInput(t.text()).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::SubmitJobRequest>> Coordinator::SplitFollowUp(v1::SubmitJobRequest& request) {
  // Every job of the chain is checked now, not when it starts hours later.
  QF_RETURN_IF_ERROR(CheckFollowUps(request));
  std::optional<v1::SubmitJobRequest> then;
  // A calibrated job is an importance-matrix job with the quantization to
  // run after it: check the quantization options now, submit them later.
  if (request.has_calibrated()) {
    const v1::CalibratedQuantization calibrated = request.calibrated();
    if (!calibrated.options().imatrix().empty()) {
      return absl::InvalidArgumentError("a calibrated job computes its imatrix; give no --imatrix");
    }
    QF_RETURN_IF_ERROR(OptionsFromProto(calibrated.options()).status());
    QF_RETURN_IF_ERROR(paths_.ResolveOutput(request.output(), request.force()).status());  // fail early
    then.emplace();
    then->set_input(request.input());
    then->set_output(request.output());
    then->set_force(request.force());
    *then->mutable_options() = calibrated.options();
    request.set_output(request.output() + ".imatrix.gguf");
    then->mutable_options()->set_imatrix(request.output());
    *request.mutable_calibration() = calibrated.calibration();
    if (request.has_evaluate()) {  // the quantization's own follow-ups
      *then->mutable_evaluate() = request.evaluate();
      request.clear_evaluate();
    }
    if (request.has_target()) {
      *then->mutable_target() = request.target();
      request.clear_target();
    }
    return then;
  }
  if (request.has_target()) {
    // A quantization to a size: the type choice first (its choice in
    // OUT.types.json), then the quantization (with its own follow-ups).
    if (!request.has_options()) {
      return absl::InvalidArgumentError("only a quantization can be sized (target)");
    }
    const std::string output = request.output();
    QF_RETURN_IF_ERROR(OptionsFromProto(request.options()).status());
    QF_RETURN_IF_ERROR(paths_.ResolveOutput(output, request.force()).status());  // fail early
    then = request;
    then->clear_target();
    then->clear_request_id();
    const v1::TargetSizeOptions target = request.target();
    request.clear_evaluate();
    request.clear_target();
    v1::TypeChoiceOptions* choice = request.mutable_type_choice();  // takes the options' place
    *choice->mutable_options() = then->options();
    *choice->mutable_target() = target;
    request.set_output(Beside(output, ".types.json"));
    request.set_force(true);  // the choice of an earlier run of the same job
    return then;
  }
  if (!request.has_evaluate()) return then;
  // A measured quantization: written as OUT.unmeasured.gguf, then
  // evaluated against its input, which moves it to OUT or
  // OUT.rejected.gguf.
  if (!request.has_options()) {
    return absl::InvalidArgumentError("only a quantization can be evaluated after it runs (evaluate)");
  }
  if (request.evaluate().text().empty()) return absl::InvalidArgumentError("evaluate: give the evaluation text");
  const std::string output = request.output();
  QF_RETURN_IF_ERROR(paths_.ResolveOutput(output, request.force()).status());  // fail early
  then.emplace();
  then->set_input(UnmeasuredPath(output));
  then->set_output(Beside(output, ".eval.json"));
  then->set_force(true);  // the report of an earlier run of the same job
  *then->mutable_evaluation() = request.evaluate();
  then->mutable_evaluation()->set_base(request.input());
  then->mutable_evaluation()->set_accept_as(output);
  then->mutable_evaluation()->set_replace(request.force());
  request.set_output(UnmeasuredPath(output));
  request.clear_evaluate();
  return then;
}

absl::StatusOr<v1::Job> Coordinator::Submit(const v1::SubmitJobRequest& given) {
  v1::SubmitJobRequest request = given;
  QF_ASSIGN_OR_RETURN(std::optional<v1::SubmitJobRequest> then, SplitFollowUp(request));
  if (request.has_evaluation() && !request.evaluation().accept_as().empty()) {
    // Where the measured model goes: both names are outputs.
    QF_RETURN_IF_ERROR(paths_.ResolveOutput(request.evaluation().accept_as(), request.evaluation().replace()).status());
    QF_RETURN_IF_ERROR(paths_.ResolveOutput(RejectedPath(request.evaluation().accept_as()), true).status());
  }
  // Cheap checks first, under the lock; then the input is opened, read and
  // planned without it (a slow disk or a FIFO must not stall every other
  // call); then the lock again to check what may have changed meanwhile.
  {
    absl::MutexLock l(&mu_);
    QF_ASSIGN_OR_RETURN(std::optional<v1::Job> earlier, AdmitLocked(request));
    if (earlier) return *earlier;
  }
  QF_ASSIGN_OR_RETURN(std::string input, paths_.ResolveInput(request.input()));
  QF_ASSIGN_OR_RETURN(std::string output, paths_.ResolveOutput(request.output(), request.force()));
  if (input == output)
    return absl::InvalidArgumentError(absl::StrFormat("input and output are the same file: %s", output));
  v1::Job record;
  record.set_id(NewJobId());
  record.set_state(v1::JOB_RUNNING);
  record.set_input(input);
  record.set_output(output);
  switch (request.kind_case()) {
    case v1::SubmitJobRequest::kCalibration:
      *record.mutable_calibration() = request.calibration();
      break;
    case v1::SubmitJobRequest::kEvaluation:
      *record.mutable_evaluation() = request.evaluation();
      break;
    case v1::SubmitJobRequest::kTypeChoice:
      *record.mutable_type_choice() = request.type_choice();
      break;
    case v1::SubmitJobRequest::kOptions:
    case v1::SubmitJobRequest::KIND_NOT_SET:  // the options' check names what is missing
    case v1::SubmitJobRequest::kCalibrated:   // rewritten above
      *record.mutable_options() = request.options();
      break;
  }
  *record.mutable_layer_workers() = request.layer_workers();
  if (then) {
    *record.mutable_then() = *then;
    // Idempotent: a restart that resubmits it gets the same job.
    record.mutable_then()->set_request_id(record.id() + (then->has_evaluation() ? "-evaluate" : "-quantize"));
  }
  record.set_created_unix_ms(absl::ToUnixMillis(clock_->Now()));
  QF_ASSIGN_OR_RETURN(std::unique_ptr<ActiveJob> job, PrepareJob(std::move(record)));
  std::vector<std::string> to_finish;
  v1::Job result;
  {
    absl::MutexLock l(&mu_);
    absl::StatusOr<std::optional<v1::Job>> again = AdmitLocked(request);
    absl::Status s = again.ok() ? absl::OkStatus() : again.status();
    for (const auto& [id, j] : jobs_) {
      if (s.ok() && !Terminal(j->job.state()) && j->job.output() == output) {
        s = absl::FailedPreconditionError(absl::StrFormat("%s is already the output of running job %s", output, id));
      }
    }
    if (s.ok()) {
      RefreshCounters(*job);
      s = store_->InsertJob(job->job, request.request_id());
    }
    if (!s.ok() || (again.ok() && *again)) {  // refused, or a retry of this request got in first
      if (job->part) job->part->Remove();
      if (!s.ok()) return s;
      return **again;
    }
    result = job->job;
    order_.push_back(job->job.id());
    if (job->tasks.empty() && job->kind->TasksCut(*job)) {  // nothing to do
      job->finalizing = true;
      to_finish.push_back(job->job.id());
    }
    jobs_[job->job.id()] = std::move(job);
    ++work_version_;
  }
  for (const std::string& id : to_finish) FinishJob(id);
  if (!to_finish.empty()) StartFollowUps();
  return result;
}

absl::StatusOr<v1::Job> Coordinator::GetJob(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  return it->second->job;
}

std::vector<v1::Job> Coordinator::ListJobs() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Job> out;
  for (const std::string& id : order_) out.push_back(jobs_[id]->job);
  return out;
}

absl::StatusOr<v1::JobEvent> Coordinator::Snapshot(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  return SnapshotLocked(*it->second, clock_->Now());
}

v1::JobEvent Coordinator::SnapshotLocked(const ActiveJob& job, absl::Time now) {
  v1::JobEvent event;
  *event.mutable_job() = job.job;
  for (const auto& [worker_id, stats] : job.per_worker) {
    v1::WorkerProgress* p = event.add_workers();
    p->set_worker_id(worker_id);
    auto w = workers_.find(worker_id);
    p->set_name(w != workers_.end() ? w->second.info.name() : worker_id);
    p->set_bytes_done(static_cast<int64_t>(stats.bytes));
    const double secs = absl::ToDoubleSeconds(std::max(now, stats.last) - stats.first);
    p->set_bytes_per_second(secs > 0 ? static_cast<double>(stats.bytes) / secs : 0.0);
  }
  return event;
}

absl::StatusOr<v1::Job> Coordinator::Cancel(const std::string& job_id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrFormat("no job %s", job_id));
  ActiveJob& j = *it->second;
  if (Terminal(j.job.state())) return j.job;
  if (j.finalizing)
    return absl::FailedPreconditionError(absl::StrFormat("job %s is finishing; too late to cancel", job_id));
  j.job.set_state(v1::JOB_CANCELLED);
  j.job.set_finished_unix_ms(absl::ToUnixMillis(clock_->Now()));
  if (j.part) j.part->Remove();
  j.part.reset();
  j.ReleaseInputs();
  Persist(j.job);
  return j.job;
}

CoordinatorCounters Coordinator::counters() const {
  absl::MutexLock l(&mu_);
  return counters_;
}

v1::ClusterStatus Coordinator::Status(size_t max_jobs) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  v1::ClusterStatus status;
  status.set_now_unix_ms(absl::ToUnixMillis(now));
  for (auto id = order_.rbegin(); id != order_.rend() && static_cast<size_t>(status.jobs_size()) < max_jobs; ++id) {
    *status.add_jobs() = SnapshotLocked(*jobs_[*id], now);
  }
  for (const auto& [id, w] : workers_) {
    if (!w.retired) *status.add_workers() = WorkerStatusLocked(id, w, now);
  }
  for (const v1::FailureEvent& f : failures_) *status.add_recent_failures() = f;
  return status;
}

void Coordinator::RecordFailure(const std::string& job_id, int64_t task_id, const std::string& worker_id,
                                const std::string& reason) {
  constexpr size_t kKept = 50;
  v1::FailureEvent f;
  f.set_unix_ms(absl::ToUnixMillis(clock_->Now()));
  f.set_job_id(job_id);
  f.set_task_id(task_id);
  f.set_worker_id(worker_id);
  f.set_reason(reason);
  failures_.push_front(std::move(f));
  if (failures_.size() > kKept) failures_.pop_back();
}

void Coordinator::FailJobLocked(ActiveJob& job, const std::string& reason) {
  RecordFailure(job.job.id(), -1, "", "job failed: " + reason);
  job.job.set_state(v1::JOB_FAILED);
  job.job.set_error(ClipReason(reason));
  job.job.set_finished_unix_ms(absl::ToUnixMillis(clock_->Now()));
  if (job.part) job.part->Remove();
  job.part.reset();
  job.ReleaseInputs();
  Persist(job.job);
}

void Coordinator::StartFollowUps() {
  std::vector<std::pair<std::string, v1::SubmitJobRequest>> due;
  {
    absl::MutexLock l(&mu_);
    for (const std::string& id : order_) {
      const v1::Job& job = jobs_[id]->job;
      if (job.state() == v1::JOB_SUCCEEDED && job.has_then() && job.next_job_id().empty() && job.error().empty()) {
        due.emplace_back(id, job.then());
        const ActiveJob& j = *jobs_[id];
        if (j.kind) j.kind->PrepareFollowUp(j, LockedContext(this), &due.back().second);
      }
    }
  }
  for (const auto& [id, request] : due) {
    absl::StatusOr<v1::Job> next = Submit(request);
    absl::MutexLock l(&mu_);
    v1::Job& job = jobs_[id]->job;
    if (next.ok()) {
      job.set_next_job_id(next->id());
    } else {
      job.set_error(absl::StrFormat("the %s that follows could not start: %s",
                                    job.then().has_evaluation() ? "evaluation"
                                    : job.then().has_target()   ? "type choice"
                                                                : "quantization",
                                    next.status().message()));
    }
    Persist(job);
  }
}

}  // namespace quantfleet
