// quantfleet-faulty-worker: quantfleet-worker with its link to the
// coordinator wrapped to inject the faults a network and a slow machine
// cause, for the cluster's fault tests. Built with the tests only; the
// production worker has no such flags.
//
//   --fault-stall-ms N           pause N ms before uploading each result (a
//                                slow worker: time to kill or stop it mid-task)
//   --fault-corrupt-first-chunk  flip a byte of the first uploaded chunk after
//                                its CRC32C was computed (corruption in transit)
//   --fault-cut-first-upload     send half a chunk on the first upload stream, then
//                                cancel it, as a dropped connection does
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/util/crc32c.h"
#include "worker/worker_daemon.h"

ABSL_FLAG(int, fault_stall_ms, 0, "pause this long before uploading each result");
ABSL_FLAG(bool, fault_corrupt_first_chunk, false, "flip a byte of the first uploaded chunk");
ABSL_FLAG(bool, fault_cut_first_upload, false, "cut the first upload stream after half a chunk");

namespace quantfleet {
namespace {

namespace v1 = quantfleet::v1;

// Thread-safety: as CoordinatorLink; the one-shot faults are atomics and
// the stalled leases are guarded by mu_.
class FaultyLink : public CoordinatorLink {
 public:
  explicit FaultyLink(std::unique_ptr<CoordinatorLink> inner)
      : inner_(std::move(inner)),
        stall_(std::chrono::milliseconds(absl::GetFlag(FLAGS_fault_stall_ms))),
        corrupt_(absl::GetFlag(FLAGS_fault_corrupt_first_chunk)),
        cut_(absl::GetFlag(FLAGS_fault_cut_first_upload)) {}

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& r) override { return inner_->Register(r); }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& r) override {
    return inner_->Heartbeat(r);
  }
  absl::StatusOr<v1::AcquireTaskResponse> AcquireTask(const v1::AcquireTaskRequest& r) override {
    return inner_->AcquireTask(r);
  }
  absl::Status FailTask(const v1::FailTaskRequest& r) override { return inner_->FailTask(r); }
  absl::Status ReadSource(const v1::ReadSourceRequest& r,
                          const std::function<bool(const v1::DataChunk&)>& on_chunk) override {
    return inner_->ReadSource(r, on_chunk);
  }
  absl::Status CompleteTask(const v1::CompleteTaskRequest& r) override { return inner_->CompleteTask(r); }

  // A result's upload starts by asking for the committed offset: the stall
  // happens there, once per lease.
  absl::StatusOr<int64_t> UploadOffset(const v1::Lease& lease) override {
    const std::string key = absl::StrFormat("%s/%d/%d", lease.job_id(), lease.task_id(), lease.epoch());
    bool stall = false;
    {
      absl::MutexLock l(&mu_);
      stall = stall_.count() > 0 && key != last_stalled_;
      if (stall) last_stalled_ = key;
    }
    if (stall) std::this_thread::sleep_for(stall_);
    return inner_->UploadOffset(lease);
  }

  absl::Status UploadResult(const std::function<UploadStep(v1::UploadChunk*)>& next) override {
    if (cut_.exchange(false)) {
      // The connection drops mid-stream: half a chunk goes out, then the
      // stream is cancelled with the rest unsent.
      int sent = 0;
      (void)inner_->UploadResult([&](v1::UploadChunk* chunk) {
        if (sent++ > 0) return UploadStep::kAbort;
        const UploadStep step = next(chunk);
        if (step != UploadStep::kSend) return step;
        chunk->mutable_data()->resize(chunk->data().size() / 2);
        chunk->set_crc32c(Crc32c(chunk->data().data(), chunk->data().size()));
        return UploadStep::kSend;
      });
      return absl::UnavailableError("upload result: the connection was cut (injected fault)");
    }
    return inner_->UploadResult([&](v1::UploadChunk* chunk) {
      const UploadStep step = next(chunk);
      if (step == UploadStep::kSend && !chunk->data().empty() && corrupt_.exchange(false)) {
        (*chunk->mutable_data())[chunk->data().size() / 2] ^= 0x10;
      }
      return step;
    });
  }

 private:
  const std::unique_ptr<CoordinatorLink> inner_;
  const std::chrono::milliseconds stall_;
  std::atomic<bool> corrupt_;
  std::atomic<bool> cut_;
  absl::Mutex mu_;
  std::string last_stalled_ ABSL_GUARDED_BY(mu_);
};

}  // namespace
}  // namespace quantfleet

int main(int argc, char** argv) {
  return quantfleet::RunWorkerDaemon(argc, argv, [](std::unique_ptr<quantfleet::CoordinatorLink> link) {
    return std::make_unique<quantfleet::FaultyLink>(std::move(link));
  });
}
