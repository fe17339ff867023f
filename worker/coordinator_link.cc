#include "worker/coordinator_link.h"

#include <chrono>

#include "proto/quantfleet.grpc.pb.h"
#include "proto/status_mapping.h"

namespace quantfleet {

namespace {

class GrpcCoordinatorLink : public CoordinatorLink {
 public:
  GrpcCoordinatorLink(std::shared_ptr<grpc::Channel> channel, absl::Duration rpc_timeout)
      : stub_(v1::WorkerService::NewStub(channel)), rpc_timeout_(rpc_timeout) {}

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override {
    v1::RegisterResponse response;
    const grpc::Status status = stub_->Register(Context().get(), request, &response);
    return Result(status, "register", std::move(response));
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    v1::HeartbeatResponse response;
    const grpc::Status status = stub_->Heartbeat(Context().get(), request, &response);
    return Result(status, "heartbeat", std::move(response));
  }

  absl::StatusOr<v1::AcquireTaskResponse> AcquireTask(const v1::AcquireTaskRequest& request) override {
    v1::AcquireTaskResponse response;
    const grpc::Status status = stub_->AcquireTask(Context().get(), request, &response);
    return Result(status, "acquire task", std::move(response));
  }

  absl::Status FailTask(const v1::FailTaskRequest& request) override {
    v1::Empty empty;
    return FromGrpcStatus(stub_->FailTask(Context().get(), request, &empty), "fail task");
  }

  absl::Status ReadSource(const v1::ReadSourceRequest& request,
                          const std::function<bool(const v1::DataChunk&)>& on_chunk) override {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    std::unique_ptr<grpc::ClientReader<v1::DataChunk>> reader = stub_->ReadSource(ctx.get(), request);
    v1::DataChunk chunk;
    while (reader->Read(&chunk)) {
      if (!on_chunk(chunk)) {
        ctx->TryCancel();
        break;
      }
    }
    return FromGrpcStatus(reader->Finish(), "download source");
  }

  absl::StatusOr<int64_t> UploadOffset(const v1::Lease& lease) override {
    v1::UploadResponse response;
    absl::Status s = FromGrpcStatus(stub_->GetUploadOffset(Context().get(), lease, &response), "upload offset");
    if (!s.ok()) return s;
    return response.committed();
  }

  absl::Status UploadResult(const std::function<UploadStep(v1::UploadChunk*)>& next) override {
    std::unique_ptr<grpc::ClientContext> ctx = Context();
    v1::UploadResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::UploadChunk>> writer = stub_->UploadResult(ctx.get(), &response);
    v1::UploadChunk chunk;
    for (;;) {
      const UploadStep step = next(&chunk);
      if (step == UploadStep::kAbort) {
        ctx->TryCancel();
        return FromGrpcStatus(writer->Finish(), "upload result");
      }
      if (step == UploadStep::kClose || !writer->Write(chunk)) break;  // a refused write: Finish says why
    }
    writer->WritesDone();
    return FromGrpcStatus(writer->Finish(), "upload result");
  }

  absl::Status CompleteTask(const v1::CompleteTaskRequest& request) override {
    v1::Empty empty;
    return FromGrpcStatus(stub_->CompleteTask(Context().get(), request, &empty), "complete task");
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(rpc_timeout_)));
    return ctx;
  }

  template <typename Response>
  static absl::StatusOr<Response> Result(const grpc::Status& status, const char* what, Response response) {
    absl::Status s = FromGrpcStatus(status, what);
    if (!s.ok()) return s;
    return response;
  }

  const std::unique_ptr<v1::WorkerService::Stub> stub_;
  const absl::Duration rpc_timeout_;
};

}  // namespace

std::unique_ptr<CoordinatorLink> NewGrpcCoordinatorLink(std::shared_ptr<grpc::Channel> channel,
                                                        absl::Duration rpc_timeout) {
  return std::make_unique<GrpcCoordinatorLink>(std::move(channel), rpc_timeout);
}

}  // namespace quantfleet
