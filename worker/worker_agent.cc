#include "worker/worker_agent.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/gpu/gpu_devices.h"
#include "core/quant/ggml_type.h"
#include "core/quant/quantize_rows.h"
#include "core/quant/reference_kernels.h"
#include "core/quant/row_validation.h"
#include "core/util/backoff.h"
#include "core/util/crc32c.h"

namespace quantfleet {

namespace {

constexpr size_t kChunk = 1 << 20;
// How long AcquireTask may wait for work (the stop flag is checked between calls).
constexpr absl::Duration kAcquireWait = absl::Seconds(2);

// Errors worth another try after a pause. CANCELLED too: the worker never
// cancels its own calls, so it means the coordinator went away (a server
// shutting down cancels the calls in flight) and will be back.
bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsAborted(s) || absl::IsDataLoss(s) ||
         absl::IsInternal(s) || absl::IsResourceExhausted(s) || absl::IsCancelled(s);
}

// Runs fn(part, first, count) over [0, n) split into at most `threads`
// contiguous parts, part 0 on the calling thread.
template <typename Fn>
void ParallelRows(int threads, int64_t n, Fn fn) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::vector<std::thread> pool;
  const int64_t per = (n + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const int64_t first = t * per;
    if (first < n) pool.emplace_back([=] { fn(t, first, std::min(per, n - first)); });
  }
  fn(0, 0, std::min(per, n));
  for (std::thread& t : pool) t.join();
}

}  // namespace

WorkerAgent::WorkerAgent(WorkerOptions options, std::unique_ptr<CoordinatorLink> link)
    : options_(std::move(options)),
      link_(std::move(link)),
      chunks_(options_.data_roots, options_.cache_dir, options_.gpus.empty() ? -1 : options_.gpus[0], options_.threads,
              options_.memory_bytes) {
  std::mt19937_64 gen(std::random_device{}());
  incarnation_ = absl::StrFormat("%d-%016x", getpid(), gen());
}

absl::Status WorkerAgent::RegisterWithBackoff(const std::atomic<bool>& stop) {
  Backoff backoff(absl::Milliseconds(100), options_.max_backoff);
  while (!stop) {
    v1::RegisterRequest req;
    v1::WorkerInfo* info = req.mutable_info();
    info->set_name(options_.name);
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    info->set_hostname(host);
    info->set_threads(options_.threads);
    info->set_memory_bytes(static_cast<int64_t>(options_.memory_bytes));
    info->set_gpu_memory_bytes(static_cast<int64_t>(options_.gpu_memory_bytes));
    info->set_incarnation(incarnation_);
    for (const std::string& root : options_.data_roots) info->add_data_roots(root);
    for (const GpuDevice& gpu : ListGpus()) {
      v1::Gpu* g = info->add_gpus();
      g->set_name(absl::StrFormat("%s (gpu %d)", gpu.name, gpu.index));
      g->set_memory_bytes(gpu.memory_bytes);
    }
    for (const char* t : {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K",
                          "q6_K", "iq4_nl", "iq4_xs"}) {
      info->add_types(t);
    }
    absl::StatusOr<v1::RegisterResponse> resp = link_->Register(req);
    if (resp.ok()) {
      {
        absl::MutexLock l(&mu_);
        worker_id_ = resp->worker_id();
        heartbeat_ = absl::Milliseconds(std::max<int64_t>(100, resp->heartbeat_ms()));
      }
      ++counters_.registrations;
      absl::FPrintF(stderr, "worker %s: registered as %s\n", options_.name, resp->worker_id());
      return absl::OkStatus();
    }
    if (!Retryable(resp.status())) return resp.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff.Next())));
  }
  return absl::CancelledError("stopped");
}

static bool SameLease(const v1::Lease& a, const v1::Lease& b) {
  return a.job_id() == b.job_id() && a.task_id() == b.task_id() && a.epoch() == b.epoch();
}

void WorkerAgent::Hold(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  held_.push_back(lease);
}

void WorkerAgent::Release(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  std::erase_if(held_, [&](const v1::Lease& h) { return SameLease(h, lease); });
  std::erase_if(lost_, [&](const v1::Lease& h) { return SameLease(h, lease); });
  if (progress_ && SameLease(progress_->lease(), lease)) progress_.reset();
}

bool WorkerAgent::Lost(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  return std::any_of(lost_.begin(), lost_.end(), [&](const v1::Lease& h) { return SameLease(h, lease); });
}

void WorkerAgent::HeartbeatLoop(const std::atomic<bool>& done) {
  auto period = [this] {
    absl::MutexLock l(&mu_);
    return heartbeat_;
  };
  absl::Time next = absl::Now() + period();
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (absl::Now() < next) continue;
    next = absl::Now() + period();
    v1::HeartbeatRequest req;
    {
      absl::MutexLock l(&mu_);
      if (held_.empty()) continue;
      req.set_worker_id(worker_id_);
      for (const v1::Lease& h : held_) *req.add_leases() = h;
      if (progress_) *req.add_progress() = *progress_;
    }
    const absl::StatusOr<v1::HeartbeatResponse> resp = link_->Heartbeat(req);
    absl::MutexLock l(&mu_);
    if (absl::IsNotFound(resp.status())) {
      lost_ = held_;  // the coordinator forgot us: nothing we hold is ours any more
    } else if (resp.ok()) {
      for (const v1::Lease& d : resp->drop()) lost_.push_back(d);
    }
  }
}

absl::StatusOr<std::optional<v1::TaskSpec>> WorkerAgent::AcquireOnce() {
  v1::AcquireTaskRequest req;
  {
    absl::MutexLock l(&mu_);
    req.set_worker_id(worker_id_);
  }
  // A long poll: the coordinator answers as soon as a task appears, so an
  // idle worker starts within milliseconds of a submit instead of a poll
  // period later.
  req.set_wait_ms(static_cast<int32_t>(absl::ToInt64Milliseconds(kAcquireWait)));
  absl::StatusOr<v1::AcquireTaskResponse> resp = link_->AcquireTask(req);
  if (!resp.ok()) return resp.status();
  if (!resp->assigned()) return std::optional<v1::TaskSpec>();
  Hold(resp->task().lease());
  return std::optional<v1::TaskSpec>(resp->task());
}

std::optional<WorkerAgent::Fetched> WorkerAgent::Prefetch(std::string buffer) {
  absl::StatusOr<std::optional<v1::TaskSpec>> task = AcquireOnce();
  if (!task.ok() || !task->has_value()) return std::nullopt;
  Fetched f;
  f.task = std::move(**task);
  f.owned = std::move(buffer);
  f.status = Download(&f);
  return f;
}

void WorkerAgent::ReportFailure(const v1::Lease& lease, const std::string& reason, bool permanent) {
  v1::FailTaskRequest req;
  *req.mutable_lease() = lease;
  req.set_reason(reason);
  req.set_permanent(permanent);
  // Best effort: a failure report that does not arrive ends as a lease
  // expiry, with the same outcome.
  (void)link_->FailTask(req);
}

void WorkerAgent::GiveBack(const v1::Lease& lease, const std::string& reason) {
  ReportFailure(lease, reason, /*permanent=*/false);
  Release(lease);
}

absl::Status WorkerAgent::Run(const std::atomic<bool>& stop) {
  if (absl::Status s = RegisterWithBackoff(stop); !s.ok()) return stop ? absl::OkStatus() : s;
  std::atomic<bool> done{false};
  std::thread heartbeat([&] { HeartbeatLoop(done); });
  Backoff backoff(absl::Milliseconds(100), options_.max_backoff);
  absl::Status result = absl::OkStatus();
  std::optional<Fetched> next;
  auto want_more = [&](int64_t extra) {
    return !stop && (options_.max_tasks == 0 || counters_.tasks_done + extra < options_.max_tasks);
  };
  while (want_more(0)) {
    Fetched current;
    if (next) {
      current = std::move(*next);
      next.reset();
    } else {
      const auto asked = std::chrono::steady_clock::now();
      absl::StatusOr<std::optional<v1::TaskSpec>> task = AcquireOnce();
      if (!task.ok() && absl::IsNotFound(task.status())) {  // the coordinator restarted and forgot us
        if (absl::Status r = RegisterWithBackoff(stop); !r.ok()) break;
        continue;
      }
      if (!task.ok()) {
        if (!Retryable(task.status())) {
          result = task.status();
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(backoff.Next())));
        continue;
      }
      backoff.Reset();
      if (!task->has_value()) {
        // The call waited for work already; a pause only if it came back at once.
        if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(100)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        continue;
      }
      current.task = std::move(**task);
      current.owned = std::move(spare_);
      current.status = Download(&current);
    }
    // Download the next task while this one is computed and uploaded.
    std::thread prefetch;
    if (want_more(1))
      prefetch =
          std::thread([this, &next, buffer = std::move(spare_)]() mutable { next = Prefetch(std::move(buffer)); });
    absl::Status p = current.status.ok() ? Process(current.task, current.source()) : current.status;
    Release(current.task.lease());
    // Counted now: the prefetch may be waiting for work for a while yet.
    if (p.ok()) {
      ++counters_.tasks_done;
    } else {
      ++counters_.tasks_failed;
      absl::FPrintF(stderr, "worker %s: task %d of %s: %s\n", options_.name, current.task.lease().task_id(),
                    current.task.lease().job_id(), p.message());
    }
    if (prefetch.joinable()) prefetch.join();
    if (current.mapped) current.mapped->DropRange(current.mapped_offset, current.source().size());
    spare_ = std::move(current.owned);  // its memory holds the download after next
  }
  if (next) GiveBack(next->task.lease(), "the worker is stopping");  // drain: hand it back
  done = true;
  heartbeat.join();
  return result;
}

bool WorkerAgent::ReadLocal(Fetched* fetched) {
  const v1::TaskSpec& task = fetched->task;
  if (options_.data_roots.empty() || task.source_path().empty() || task.source_bytes() <= 0) return false;
  const std::optional<std::string> real = PathInsideRoots(task.source_path(), options_.data_roots);
  if (!real) return false;
  // Mapped once per file (MappedFile refuses FIFOs and other non-files
  // without blocking), then read in place as the local path does. A
  // mapping kept from earlier tasks gets one fresh look if it disagrees,
  // in case the file was replaced since.
  const uint64_t offset = static_cast<uint64_t>(task.source_file_offset());
  const uint64_t size = static_cast<uint64_t>(task.source_bytes());
  auto matches = [&] {
    return task.source_file_offset() >= 0 && offset <= mapped_->size() && size <= mapped_->size() - offset &&
           Crc32c(mapped_->data() + offset, size) == task.source_crc32c();
  };
  const bool kept = mapped_ && mapped_->path() == *real;
  if (!kept || !matches()) {
    absl::StatusOr<MappedFile> file = MappedFile::Open(*real);
    if (!file.ok()) return false;
    mapped_ = std::make_shared<const MappedFile>(*std::move(file));
    // A different or changed copy is never trusted: fall back to the network.
    if (!matches()) return false;
  }
  fetched->mapped = mapped_;
  fetched->mapped_offset = offset;
  ++counters_.local_reads;
  return true;
}

absl::Status WorkerAgent::Stream(const v1::TaskSpec& task, const v1::ReadSourceRequest& what, int64_t total,
                                 int64_t* have, const std::function<absl::Status(const std::string&)>& sink) {
  int64_t stalled = 0;  // attempts in a row without progress
  while (*have < total && stalled < 5) {
    const int64_t before = *have;
    v1::ReadSourceRequest req = what;
    *req.mutable_lease() = task.lease();
    req.set_offset(*have);
    req.set_length(total - *have);
    bool bad_chunk = false;
    absl::Status sink_status;
    absl::Status s = link_->ReadSource(req, [&](const v1::DataChunk& chunk) {
      if (chunk.offset() != *have || Crc32c(chunk.data().data(), chunk.data().size()) != chunk.crc32c()) {
        bad_chunk = true;  // resume from what was verified
        return false;
      }
      sink_status = sink(chunk.data());
      if (!sink_status.ok()) return false;
      *have += static_cast<int64_t>(chunk.data().size());
      counters_.source_bytes_downloaded += static_cast<int64_t>(chunk.data().size());
      return true;
    });
    if (!sink_status.ok()) return sink_status;
    if (!s.ok() && !bad_chunk && !Retryable(s)) return s;
    stalled = *have > before ? 0 : stalled + 1;
  }
  if (*have != total) {
    return absl::UnavailableError(absl::StrFormat("download stopped at %d of %d bytes", *have, total));
  }
  return absl::OkStatus();
}

bool WorkerAgent::TakeKeptLayer(Fetched* fetched) {
  const v1::LayerSolveTask& solve = fetched->task.layer_solve();
  absl::MutexLock lock(&mu_);
  KeptLayer& kept = kept_layer_;
  if (!fetched->task.has_layer_solve()) return false;
  if (solve.input_result_crc32c() == 0 || kept.job_id != fetched->task.lease().job_id() ||
      kept.layer + 1 != solve.layer() || kept.result_crc != solve.input_result_crc32c() ||
      kept.activations.size() != static_cast<size_t>(solve.activation_bytes())) {
    kept = KeptLayer();  // another layer came here: the kept one will not be asked for
    return false;
  }
  fetched->owned = std::move(kept.activations);
  kept = KeptLayer();
  absl::FPrintF(stderr,
                "worker %s: layer %d of %s starts from the activations this worker kept (%d bytes not fetched)\n",
                options_.name, solve.layer() + 1, fetched->task.lease().job_id(), fetched->owned.size());
  return true;
}

absl::Status WorkerAgent::Download(Fetched* fetched) {
  const v1::TaskSpec& task = fetched->task;
  std::string* source = &fetched->owned;
  source->clear();                                     // keeps its memory
  if (task.has_type_costs()) return absl::OkStatus();  // it reads the whole model (ProcessChunk)
  if (task.has_calibration() || task.has_evaluation() || task.has_layer_solve()) {
    // Chunks and layers read the models (ProcessChunk); a pipeline stage
    // after the first, or a layer after the first, needs the activations
    // the one before it left.
    const int64_t total = task.has_evaluation()    ? task.evaluation().activation_bytes()
                          : task.has_layer_solve() ? task.layer_solve().activation_bytes()
                                                   : task.calibration().activation_bytes();
    if (total <= 0 || TakeKeptLayer(fetched)) return absl::OkStatus();
    if (options_.memory_bytes > 0 && static_cast<uint64_t>(total) > options_.memory_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("%s: %d bytes of input activations, more than this worker's --memory (%d)", task.tensor(),
                          total, options_.memory_bytes));
    }
    source->reserve(static_cast<size_t>(total));
    int64_t have = 0;
    v1::ReadSourceRequest activations;
    activations.set_activations(true);
    return Stream(task, activations, total, &have, [source](const std::string& data) {
      source->append(data);
      return absl::OkStatus();
    });
  }
  if (ReadLocal(fetched)) return absl::OkStatus();
  source->reserve(task.source_bytes());
  int64_t have = 0;
  return Stream(task, v1::ReadSourceRequest(), task.source_bytes(), &have, [source](const std::string& data) {
    source->append(data);
    return absl::OkStatus();
  });
}

absl::Status WorkerAgent::DownloadModel(const v1::TaskSpec& task, const std::string& destination, int part,
                                        int64_t total, bool base) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(destination).parent_path(), ec);
  const std::string partial = destination + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrFormat("%s: cannot write the model cache: %s", partial, std::strerror(errno)));
  }
  // Workers sharing a cache take turns; the second finds the file done.
  ::flock(fd, LOCK_EX);
  if (std::filesystem::file_size(destination, ec) == static_cast<uintmax_t>(total) && !ec) {
    ::unlink(partial.c_str());  // the empty one this open created
    ::close(fd);
    return absl::OkStatus();
  }
  struct stat st;
  int64_t have = ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;  // resume a cut download
  if (have > total) have = 0;
  absl::FPrintF(stderr, "worker %s: streaming %s (%d bytes) into %s\n", options_.name,
                base ? task.evaluation().base().path() : task.source_path(), total, destination);
  v1::ReadSourceRequest what;
  what.set_part(part);
  what.set_base(base);
  absl::Status s = Stream(task, what, total, &have, [&](const std::string& data) -> absl::Status {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n =
          options_.file_ops->PWrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(have + done));
      if (n <= 0) return absl::UnavailableError(absl::StrFormat("%s: %s", partial, std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  });
  if (s.ok() && options_.file_ops->FSync(fd) != 0)
    s = absl::UnavailableError(absl::StrFormat("%s: fsync: %s", partial, std::strerror(errno)));
  ::close(fd);
  if (s.ok() && options_.file_ops->RenameAt(AT_FDCWD, partial.c_str(), destination.c_str()) != 0) {
    s = absl::UnavailableError(absl::StrFormat("%s: rename: %s", destination, std::strerror(errno)));
  }
  return s;
}

absl::Status WorkerAgent::Upload(const v1::TaskSpec& task, std::string_view result) {
  const uint32_t crc = Crc32c(result.data(), result.size());
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (Lost(task.lease())) return absl::FailedPreconditionError("the lease was taken away");
    absl::StatusOr<int64_t> committed = link_->UploadOffset(task.lease());
    if (!committed.ok()) {
      if (Retryable(committed.status())) continue;
      return committed.status();
    }
    int64_t offset = *committed;
    if (offset < static_cast<int64_t>(result.size())) {
      absl::Status f = link_->UploadResult([&](v1::UploadChunk* chunk) {
        if (offset >= static_cast<int64_t>(result.size())) return CoordinatorLink::UploadStep::kClose;
        const size_t n = std::min(kChunk, result.size() - static_cast<size_t>(offset));
        *chunk->mutable_lease() = task.lease();
        chunk->set_offset(offset);
        chunk->set_data(result.data() + offset, n);
        chunk->set_crc32c(Crc32c(chunk->data().data(), n));
        offset += static_cast<int64_t>(n);
        return CoordinatorLink::UploadStep::kSend;
      });
      if (!f.ok()) {
        if (absl::IsFailedPrecondition(f) && f.message().find("stale") != absl::string_view::npos) return f;
        absl::FPrintF(stderr, "worker %s: upload of %s interrupted (%s); resuming from the committed offset\n",
                      options_.name, task.tensor(), f.message());
        continue;
      }
    }
    v1::CompleteTaskRequest done;
    *done.mutable_lease() = task.lease();
    done.set_size(static_cast<int64_t>(result.size()));
    done.set_crc32c(crc);
    absl::Status c = link_->CompleteTask(done);
    if (c.ok()) {
      counters_.result_bytes_uploaded += static_cast<int64_t>(result.size());
      return absl::OkStatus();
    }
    if (!Retryable(c)) return c;
  }
  return absl::UnavailableError("upload did not finish after 8 attempts");
}

absl::Status WorkerAgent::ProcessChunk(const v1::TaskSpec& task, std::string_view activations) {
  const ChunkRunner::Fetch fetch = [this, &task](const std::string& destination, int part, int64_t bytes, bool base) {
    return DownloadModel(task, destination, part, bytes, base);
  };
  absl::StatusOr<std::string> result =
      task.has_type_costs()    ? chunks_.MeasureTypes(task.type_costs(), fetch)
      : task.has_layer_solve() ? chunks_.SolveLayer(task.layer_solve(), activations, fetch,
                                                    [this, &task](const std::string& step) {
                                                      v1::TaskProgress p;
                                                      *p.mutable_lease() = task.lease();
                                                      p.set_step(step);
                                                      absl::MutexLock l(&mu_);
                                                      progress_ = std::move(p);
                                                    })
      : task.has_evaluation()  ? chunks_.Score(task.evaluation(), activations, fetch)
                               : chunks_.Run(task.source_path(), task.calibration(), activations, fetch);
  if (!result.ok()) {
    // Another worker may have the model: the coordinator retries elsewhere
    // and fails the job after its attempt limit, with this reason.
    ReportFailure(task.lease(), std::string(result.status().message()), /*permanent=*/false);
    return result.status();
  }
  if (task.has_layer_solve()) {  // kept for the next layer (see KeptLayer)
    const size_t keep = static_cast<size_t>(std::max<int64_t>(0, task.layer_solve().output_activation_bytes()));
    absl::MutexLock lock(&mu_);
    kept_layer_ = KeptLayer();
    if (keep > 0 && keep <= result->size()) {
      kept_layer_ = {task.lease().job_id(), task.layer_solve().layer(), Crc32c(result->data(), result->size()),
                     result->substr(0, keep)};
    }
  }
  return Upload(task, *result);
}

absl::Status WorkerAgent::Process(const v1::TaskSpec& task, std::string_view source) {
  if (task.has_calibration() || task.has_evaluation() || task.has_type_costs() || task.has_layer_solve()) {
    return ProcessChunk(task, source);
  }
  auto fail = [&](const std::string& reason, bool permanent) {
    ReportFailure(task.lease(), reason, permanent);
    return absl::InvalidArgumentError(reason);
  };
  const std::optional<GgmlType> src_type = ParseGgmlTypeName(task.source_type());
  const std::optional<GgmlType> dst_type = ParseGgmlTypeName(task.target_type());
  if (!src_type || !dst_type || (task.convert() && (!IsSupportedTargetType(*dst_type) || !CanDequantize(*src_type)))) {
    return fail(absl::StrFormat("this worker cannot convert %s to %s", task.source_type(), task.target_type()), false);
  }
  if (absl::Status v = ValidateRowData(*src_type, source.data(), source.size()); !v.ok()) {
    return fail(absl::StrFormat("invalid source data: %s", v.message()), true);
  }
  std::string_view result = source;
  if (task.convert()) {
    const int64_t n_per_row = task.n_per_row();
    const int64_t rows = task.n_rows();
    const size_t src_row = source.size() / static_cast<size_t>(rows);
    const size_t dst_row = RowSize(*dst_type, n_per_row);
    // Every byte is written below: growing keeps the old bytes, and only
    // new capacity is filled.
    result_.resize(dst_row * static_cast<size_t>(rows));
    result = result_;
    const float* imatrix = task.imatrix_size() > 0 ? task.imatrix().data() : nullptr;
    bool done = false;
    if (!options_.gpus.empty() && GpuSupports(*dst_type, imatrix != nullptr)) {
      // The GPU takes the whole task: the same recipe, so the same bits.
      std::vector<float> f32(static_cast<size_t>(rows * n_per_row));
      ParallelRows(options_.threads, rows, [&](int, int64_t first, int64_t count) {
        DequantizeToFloat(*src_type, source.data() + first * src_row, f32.data() + first * n_per_row,
                          count * n_per_row);
      });
      const int gpu = options_.gpus[static_cast<size_t>(counters_.tasks_done.load()) % options_.gpus.size()];
      const absl::Status g = QuantizeRowsOnGpu(gpu, *dst_type, f32.data(), result_.data(), rows, n_per_row, imatrix,
                                               options_.gpu_memory_bytes);
      if (g.ok()) {
        ++counters_.gpu_tasks;
        done = true;
      } else if (absl::IsResourceExhausted(g)) {
        // Not even a row fits beside what else holds the GPU: the cores
        // give the same bits.
        absl::FPrintF(stderr, "worker %s: GPU %d: %s; quantizing %s on the CPU\n", options_.name, gpu, g.message(),
                      task.tensor());
      } else {
        return fail(absl::StrFormat("GPU %d: %s", gpu, g.message()), false);
      }
    }
    if (!done) {
      scratch_.resize(static_cast<size_t>(std::max(1, options_.threads)));
      ParallelRows(options_.threads, rows, [&](int part, int64_t first, int64_t count) {
        ConvertRows(*src_type, source.data() + first * src_row, *dst_type, result_.data() + first * dst_row, count,
                    n_per_row, imatrix, &scratch_[static_cast<size_t>(part)]);
      });
    }
    if (absl::Status v = ValidateRowData(*dst_type, result.data(), result.size()); !v.ok()) {
      return fail(absl::StrFormat("quantizing to %s gave a non-finite scale (%s)", task.target_type(), v.message()),
                  true);
    }
  }
  return Upload(task, result);
}

}  // namespace quantfleet
