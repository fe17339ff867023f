// The C++ client library for a quantfleet coordinator (JobService): what
// the quantfleet command uses, and what a scripted user links.
//
// Every call has a deadline; errors come back as absl::Status with the
// server's code and message. Thread-safety: a ClusterClient may be used
// from several threads (gRPC stubs are thread-safe).
#ifndef QUANTFLEET_CLIENT_CLUSTER_CLIENT_H_
#define QUANTFLEET_CLIENT_CLUSTER_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/quantfleet.grpc.pb.h"

namespace quantfleet {

class ClusterClient {
 public:
  // `address` is HOST:PORT (for messages); `channel` connects to it.
  ClusterClient(const std::string& address, std::shared_ptr<grpc::Channel> channel,
                absl::Duration timeout = absl::Seconds(30));

  // The address from --coordinator, else $QUANTFLEET_COORDINATOR, else
  // 127.0.0.1:7070.
  static std::string DefaultAddress(const std::string& flag);

  absl::StatusOr<quantfleet::v1::Job> Submit(const quantfleet::v1::SubmitJobRequest& request);
  absl::StatusOr<quantfleet::v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<quantfleet::v1::ListJobsResponse> ListJobs();
  absl::StatusOr<quantfleet::v1::Job> Cancel(const std::string& job_id);
  absl::StatusOr<quantfleet::v1::ListWorkersResponse> ListWorkers();
  // Calls `on_event` for every progress event until the job ends; returns
  // the last event's job.
  absl::StatusOr<quantfleet::v1::Job> Watch(const std::string& job_id,
                                            const std::function<void(const quantfleet::v1::JobEvent&)>& on_event);

  const std::string& address() const { return address_; }

 private:
  std::unique_ptr<grpc::ClientContext> Context() const;
  std::string address_;
  absl::Duration timeout_;
  std::unique_ptr<quantfleet::v1::JobService::Stub> stub_;
};

// "RUNNING", "SUCCEEDED", ...
std::string JobStateName(quantfleet::v1::JobState state);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_CLUSTER_CLIENT_H_
