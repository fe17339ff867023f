#include "coordinator/grpc_services.h"

#include <thread>

#include "coordinator/access_control.h"
#include "coordinator/request_limits.h"
#include "core/util/crc32c.h"
#include "proto/status_mapping.h"

namespace quantfleet {

namespace {

// A listing reply stays far below the 4 MiB a default gRPC client accepts,
// however many records there are: the newest (last) ones are kept, in
// their order, and the reply says how many older ones were left out.
constexpr size_t kMaxListingBytes = size_t{2} << 20;

template <typename Record, typename Reply>
void KeepNewest(std::vector<Record> records, google::protobuf::RepeatedPtrField<Record>* out, Reply* reply) {
  size_t bytes = 0, first = records.size();
  while (first > 0 && bytes + records[first - 1].ByteSizeLong() <= kMaxListingBytes) {
    bytes += records[--first].ByteSizeLong();
  }
  for (size_t i = first; i < records.size(); ++i) *out->Add() = std::move(records[i]);
  reply->set_omitted(static_cast<int32_t>(first));
}

}  // namespace

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req, v1::Job* resp) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  if (absl::Status s = CheckSubmitRequest(*req); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<v1::Job> job = c_->Submit(*req);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *resp = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::JobRequest* req, v1::Job* resp) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  absl::StatusOr<v1::Job> job = c_->GetJob(req->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *resp = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest*,
                                      v1::ListJobsResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  KeepNewest(c_->ListJobs(), resp->mutable_jobs(), resp);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* ctx, const v1::JobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  std::string last;
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    absl::StatusOr<v1::JobEvent> event = c_->Snapshot(req->job_id());
    if (!event.ok()) return ToGrpcStatus(event.status());
    std::string now = event->SerializeAsString();
    if (now != last) {
      if (!writer->Write(*event)) return grpc::Status::CANCELLED;
      last = std::move(now);
    }
    const v1::JobState state = event->job().state();
    if (state == v1::JOB_SUCCEEDED || state == v1::JOB_FAILED || state == v1::JOB_CANCELLED) {
      return grpc::Status::OK;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* ctx, const v1::JobRequest* req, v1::Job* resp) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  absl::StatusOr<v1::Job> job = c_->Cancel(req->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *resp = *job;
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest*,
                                         v1::ListWorkersResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kClientRole, roles_); !a.ok()) return a;
  KeepNewest(c_->ListWorkers(), resp->mutable_workers(), resp);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  if (absl::Status s = CheckWorkerInfo(req->info()); !s.ok()) return ToGrpcStatus(s);
  *resp = c_->Register(req->info());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::AcquireTask(grpc::ServerContext* ctx, const v1::AcquireTaskRequest* req,
                                            v1::AcquireTaskResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  absl::StatusOr<v1::AcquireTaskResponse> r =
      c_->Acquire(req->worker_id(), absl::Milliseconds(req->wait_ms()), [ctx] { return ctx->IsCancelled(); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  absl::StatusOr<v1::HeartbeatResponse> r = c_->Heartbeat(*req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::ReadSource(grpc::ServerContext* ctx, const v1::ReadSourceRequest* req,
                                           grpc::ServerWriter<v1::DataChunk>* writer) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  if (absl::Status s = CheckByteRange(req->offset(), req->length()); !s.ok()) return ToGrpcStatus(s);
  int64_t offset = req->offset();
  const int64_t end = req->offset() + req->length();
  while (offset < end) {
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    absl::StatusOr<std::string> data =
        c_->ReadSource(req->lease(), offset, end - offset, req->activations(), {req->part(), req->base()});
    if (!data.ok()) return ToGrpcStatus(data.status());
    if (data->empty()) break;
    v1::DataChunk chunk;
    chunk.set_offset(offset);
    chunk.set_crc32c(Crc32c(data->data(), data->size()));
    offset += static_cast<int64_t>(data->size());
    chunk.set_data(std::move(*data));
    if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::UploadResult(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadChunk>* reader,
                                             v1::UploadResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  v1::UploadChunk chunk;
  int64_t committed = 0;
  while (reader->Read(&chunk)) {
    absl::StatusOr<int64_t> c = c_->Upload(chunk.lease(), chunk.offset(), chunk.data(), chunk.crc32c());
    if (!c.ok()) return ToGrpcStatus(c.status());
    committed = *c;
  }
  resp->set_committed(committed);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::GetUploadOffset(grpc::ServerContext* ctx, const v1::Lease* req,
                                                v1::UploadResponse* resp) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  absl::StatusOr<int64_t> c = c_->UploadOffset(*req);
  if (!c.ok()) return ToGrpcStatus(c.status());
  resp->set_committed(*c);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::CompleteTask(grpc::ServerContext* ctx, const v1::CompleteTaskRequest* req, v1::Empty*) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  return ToGrpcStatus(c_->Complete(req->lease(), req->size(), req->crc32c()));
}

grpc::Status WorkerServiceImpl::FailTask(grpc::ServerContext* ctx, const v1::FailTaskRequest* req, v1::Empty*) {
  if (grpc::Status a = RequireRole(ctx, kWorkerRole, roles_); !a.ok()) return a;
  return ToGrpcStatus(c_->Fail(req->lease(), ClipReason(req->reason()), req->permanent()));
}

}  // namespace quantfleet
