// Who may call the coordinator: bearer tokens (over TLS only) map a caller
// to a role, "client" (JobService) or "worker" (WorkerService).
//
// Roles are decided per call, from that call's own token: gRPC shares one
// AuthContext among all the calls of a connection, so nothing learnt from
// one call may be left there for the next.
//
// Thread-safety: immutable after construction; gRPC calls Process and the
// services call RequireRole concurrently.
#ifndef QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_
#define QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>
#include <string>

namespace quantfleet {

inline constexpr char kClientRole[] = "client";
inline constexpr char kWorkerRole[] = "worker";

// The two tokens and the role each grants.
class TokenRoles {
 public:
  TokenRoles(std::string client_token, std::string worker_token);
  // The role the value of an "authorization" header grants ("Bearer
  // TOKEN"), or nullptr for a missing, malformed or unknown token.
  const char* RoleOf(std::string_view authorization) const;

 private:
  const std::string client_token_;
  const std::string worker_token_;
};

// Rejects calls without a known token (UNAUTHENTICATED) before any
// service sees them. It leaves the header in the call's metadata, where
// RequireRole reads it.
class TokenAuthProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenAuthProcessor(std::shared_ptr<const TokenRoles> roles) : roles_(std::move(roles)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata* consumed,
                       OutputMetadata* response) override;

 private:
  const std::shared_ptr<const TokenRoles> roles_;
};

// OK when `roles` is null (no tokens configured), or this call's token
// grants `role`; otherwise PERMISSION_DENIED saying which token the call
// needs.
grpc::Status RequireRole(const grpc::ServerContext* context, const char* role, const TokenRoles* roles);

// True for 127.0.0.0/8, ::1 and localhost listen addresses.
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_ACCESS_CONTROL_H_
