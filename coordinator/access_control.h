// Who may call the coordinator: bearer tokens (over TLS only) map a caller
// to a role, "client" (JobService) or "worker" (WorkerService).
//
// Thread-safety: immutable after construction; gRPC calls Process
// concurrently.
#ifndef QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_
#define QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <string>

namespace quantfleet {

inline constexpr char kRoleProperty[] = "quantfleet-role";
inline constexpr char kClientRole[] = "client";
inline constexpr char kWorkerRole[] = "worker";

// Rejects calls without a known token (UNAUTHENTICATED) and records the
// caller's role in the auth context.
class TokenAuthProcessor : public grpc::AuthMetadataProcessor {
 public:
  TokenAuthProcessor(std::string client_token, std::string worker_token);
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata* consumed,
                       OutputMetadata* response) override;

 private:
  const std::string client_token_;
  const std::string worker_token_;
};

// OK when access control is off, or the caller has `role`; otherwise
// PERMISSION_DENIED saying which token the call needs.
grpc::Status RequireRole(const grpc::ServerContext* context, const char* role, bool enforced);

// True for 127.0.0.0/8, ::1 and localhost listen addresses.
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_
