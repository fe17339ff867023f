// The worker's link to its coordinator: the WorkerService calls the agent
// makes, with absl::Status results. NewGrpcCoordinatorLink is the real one;
// fault tests wrap it to delay, corrupt or cut what passes through, so the
// production worker carries no test hooks.
//
// Thread-safety: implementations are called from the agent's task loop, its
// prefetch thread and its heartbeat thread at once, and must allow that.
#ifndef QUANTFLEET_WORKER_COORDINATOR_LINK_H_
#define QUANTFLEET_WORKER_COORDINATOR_LINK_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;

  virtual absl::StatusOr<quantfleet::v1::RegisterResponse> Register(const quantfleet::v1::RegisterRequest& request) = 0;
  virtual absl::StatusOr<quantfleet::v1::HeartbeatResponse> Heartbeat(
      const quantfleet::v1::HeartbeatRequest& request) = 0;
  virtual absl::StatusOr<quantfleet::v1::AcquireTaskResponse> AcquireTask(
      const quantfleet::v1::AcquireTaskRequest& request) = 0;
  virtual absl::Status FailTask(const quantfleet::v1::FailTaskRequest& request) = 0;
  // Streams what `request` names, chunk by chunk, to `on_chunk`; when it
  // returns false the stream is cancelled. Returns the stream's status.
  virtual absl::Status ReadSource(const quantfleet::v1::ReadSourceRequest& request,
                                  const std::function<bool(const quantfleet::v1::DataChunk&)>& on_chunk) = 0;
  // The bytes of the lease's result the coordinator has committed.
  virtual absl::StatusOr<int64_t> UploadOffset(const quantfleet::v1::Lease& lease) = 0;
  // What an upload stream does next: send the chunk just filled, close the
  // stream, or drop it mid-flight (the coordinator keeps what it committed).
  enum class UploadStep { kSend, kClose, kAbort };
  // One upload stream, driven by `next` until it says close or abort.
  // Returns the stream's status (CANCELLED after an abort).
  virtual absl::Status UploadResult(const std::function<UploadStep(quantfleet::v1::UploadChunk*)>& next) = 0;
  virtual absl::Status CompleteTask(const quantfleet::v1::CompleteTaskRequest& request) = 0;
};

// Over gRPC; every call has `rpc_timeout` as its deadline, and its error
// names the call ("register: ...").
std::unique_ptr<CoordinatorLink> NewGrpcCoordinatorLink(std::shared_ptr<grpc::Channel> channel,
                                                        absl::Duration rpc_timeout);

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_COORDINATOR_LINK_H_
