#include "client/cluster_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/str_format.h"
#include "proto/channel_factory.h"
#include "proto/status_mapping.h"

namespace quantfleet {

namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& address) {
  if (s.ok()) return absl::OkStatus();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && s.error_message().find("ssl") == std::string::npos &&
      s.error_message().find("handshake") == std::string::npos) {
    // A TLS server that wants a client certificate closes the connection
    // during the handshake, which gRPC reports only as a closed socket.
    const bool closed = s.error_message().find("Socket closed") != std::string::npos;
    return absl::UnavailableError(
        absl::StrFormat("cannot reach the coordinator at %s (%s); is quantfleet-coordinator running there?%s", address,
                        s.error_message(),
                        closed ? " If it requires client certificates (mTLS), pass --tls-cert and --tls-key "
                                 "($QUANTFLEET_TLS_CERT, $QUANTFLEET_TLS_KEY)."
                               : ""));
  }
  return FromGrpcStatus(s);
}

}  // namespace

std::string JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_QUEUED:
      return "QUEUED";
    case v1::JOB_RUNNING:
      return "RUNNING";
    case v1::JOB_SUCCEEDED:
      return "SUCCEEDED";
    case v1::JOB_FAILED:
      return "FAILED";
    case v1::JOB_CANCELLED:
      return "CANCELLED";
    default:
      return "UNKNOWN";
  }
}

std::string ClusterClient::DefaultAddress(const std::string& flag) { return DefaultCoordinatorAddress(flag); }

ClusterClient::ClusterClient(const std::string& address, std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
    : address_(address), timeout_(timeout), stub_(v1::JobService::NewStub(channel)) {}

std::unique_ptr<grpc::ClientContext> ClusterClient::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_)));
  return ctx;
}

absl::StatusOr<v1::Job> ClusterClient::Submit(const v1::SubmitJobRequest& request) {
  v1::Job job;
  absl::Status s = FromGrpc(stub_->SubmitJob(Context().get(), request, &job), address_);
  if (!s.ok()) return s;
  return job;
}

absl::StatusOr<v1::Job> ClusterClient::GetJob(const std::string& job_id) {
  v1::JobRequest req;
  req.set_job_id(job_id);
  v1::Job job;
  absl::Status s = FromGrpc(stub_->GetJob(Context().get(), req, &job), address_);
  if (!s.ok()) return s;
  return job;
}

absl::StatusOr<v1::ListJobsResponse> ClusterClient::ListJobs() {
  v1::ListJobsResponse resp;
  absl::Status s = FromGrpc(stub_->ListJobs(Context().get(), v1::ListJobsRequest(), &resp), address_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::Job> ClusterClient::Cancel(const std::string& job_id) {
  v1::JobRequest req;
  req.set_job_id(job_id);
  v1::Job job;
  absl::Status s = FromGrpc(stub_->CancelJob(Context().get(), req, &job), address_);
  if (!s.ok()) return s;
  return job;
}

absl::StatusOr<v1::ListWorkersResponse> ClusterClient::ListWorkers() {
  v1::ListWorkersResponse resp;
  absl::Status s = FromGrpc(stub_->ListWorkers(Context().get(), v1::ListWorkersRequest(), &resp), address_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::Job> ClusterClient::Watch(const std::string& job_id,
                                             const std::function<void(const v1::JobEvent&)>& on_event) {
  // A watch lasts as long as the job; progress keeps the stream alive, so
  // there is no overall deadline, and a dropped stream is reopened.
  v1::Job last;
  for (int attempt = 0; attempt < 20; ++attempt) {
    grpc::ClientContext ctx;
    v1::JobRequest req;
    req.set_job_id(job_id);
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub_->WatchJob(&ctx, req);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      last = event.job();
      on_event(event);
    }
    const grpc::Status s = reader->Finish();
    if (s.ok()) return last;
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return FromGrpc(s, address_);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return absl::UnavailableError(absl::StrFormat("lost the coordinator at %s while watching %s", address_, job_id));
}

}  // namespace quantfleet
