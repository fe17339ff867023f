#include "coordinator/access_control.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace quantfleet {
namespace {

// Compares without an early exit, so timing does not reveal a prefix.
bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

TokenAuthProcessor::TokenAuthProcessor(std::string client_token, std::string worker_token)
    : client_token_(std::move(client_token)), worker_token_(std::move(worker_token)) {}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& metadata, grpc::AuthContext* context,
                                         OutputMetadata* consumed, OutputMetadata*) {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "no token: pass --token-file with the coordinator's client or worker token");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ")) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the authorization header is not a bearer token");
  }
  const std::string token(value);
  const char* role = nullptr;
  if (SameSecret(token, client_token_)) role = kClientRole;
  if (SameSecret(token, worker_token_)) role = kWorkerRole;
  if (role == nullptr) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong token");
  consumed->insert(std::make_pair(std::string(it->first.data(), it->first.size()),
                                  std::string(it->second.data(), it->second.size())));
  context->AddProperty(kRoleProperty, role);
  return grpc::Status::OK;
}

grpc::Status RequireRole(const grpc::ServerContext* context, const char* role, bool enforced) {
  if (!enforced) return grpc::Status::OK;
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  for (const grpc::string_ref& r : auth->FindPropertyValues(kRoleProperty)) {
    if (std::string(r.data(), r.size()) == role) return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      std::string("this call needs the ") + role + " token, not the one given");
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  return absl::StartsWith(host, "127.") || host == "::1" || host == "localhost";
}

}  // namespace quantfleet
