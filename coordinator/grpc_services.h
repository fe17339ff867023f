// gRPC adapters for the coordinator: JobService for clients and
// WorkerService for workers. They translate messages and statuses and
// move bulk data in CRC32C-checked chunks; all decisions are the
// Coordinator's.
//
// Thread-safety: gRPC calls the handlers concurrently; the Coordinator is
// thread-safe.
#ifndef QUANTFLEET_COORDINATOR_GRPC_SERVICES_H_
#define QUANTFLEET_COORDINATOR_GRPC_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "coordinator/access_control.h"
#include "coordinator/coordinator.h"
#include "proto/quantfleet.grpc.pb.h"

namespace quantfleet {

class JobServiceImpl final : public quantfleet::v1::JobService::Service {
 public:
  // With `roles` (not owned; null: no tokens), every call needs the client
  // role (see access_control.h).
  JobServiceImpl(Coordinator* c, const TokenRoles* roles) : c_(c), roles_(roles) {}
  grpc::Status SubmitJob(grpc::ServerContext*, const quantfleet::v1::SubmitJobRequest* req,
                         quantfleet::v1::Job* resp) override;
  grpc::Status GetJob(grpc::ServerContext*, const quantfleet::v1::JobRequest* req, quantfleet::v1::Job* resp) override;
  grpc::Status ListJobs(grpc::ServerContext*, const quantfleet::v1::ListJobsRequest*,
                        quantfleet::v1::ListJobsResponse* resp) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const quantfleet::v1::JobRequest* req,
                        grpc::ServerWriter<quantfleet::v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext*, const quantfleet::v1::JobRequest* req,
                         quantfleet::v1::Job* resp) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const quantfleet::v1::ListWorkersRequest*,
                           quantfleet::v1::ListWorkersResponse* resp) override;

 private:
  Coordinator* c_;
  const TokenRoles* roles_;
};

class WorkerServiceImpl final : public quantfleet::v1::WorkerService::Service {
 public:
  // With `roles` (not owned; null: no tokens), every call needs the worker
  // role.
  WorkerServiceImpl(Coordinator* c, const TokenRoles* roles) : c_(c), roles_(roles) {}
  grpc::Status Register(grpc::ServerContext*, const quantfleet::v1::RegisterRequest* req,
                        quantfleet::v1::RegisterResponse* resp) override;
  grpc::Status AcquireTask(grpc::ServerContext*, const quantfleet::v1::AcquireTaskRequest* req,
                           quantfleet::v1::AcquireTaskResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const quantfleet::v1::HeartbeatRequest* req,
                         quantfleet::v1::HeartbeatResponse* resp) override;
  grpc::Status ReadSource(grpc::ServerContext* ctx, const quantfleet::v1::ReadSourceRequest* req,
                          grpc::ServerWriter<quantfleet::v1::DataChunk>* writer) override;
  grpc::Status UploadResult(grpc::ServerContext* ctx, grpc::ServerReader<quantfleet::v1::UploadChunk>* reader,
                            quantfleet::v1::UploadResponse* resp) override;
  grpc::Status GetUploadOffset(grpc::ServerContext*, const quantfleet::v1::Lease* req,
                               quantfleet::v1::UploadResponse* resp) override;
  grpc::Status CompleteTask(grpc::ServerContext*, const quantfleet::v1::CompleteTaskRequest* req,
                            quantfleet::v1::Empty*) override;
  grpc::Status FailTask(grpc::ServerContext*, const quantfleet::v1::FailTaskRequest* req,
                        quantfleet::v1::Empty*) override;

 private:
  Coordinator* c_;
  const TokenRoles* roles_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_GRPC_SERVICES_H_
