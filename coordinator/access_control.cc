#include "coordinator/access_control.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace quantfleet {
namespace {

constexpr char kAuthorization[] = "authorization";

// Compares without an early exit, so timing does not reveal a prefix.
bool SameSecret(std::string_view a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

TokenRoles::TokenRoles(std::string client_token, std::string worker_token)
    : client_token_(std::move(client_token)), worker_token_(std::move(worker_token)) {}

const char* TokenRoles::RoleOf(std::string_view authorization) const {
  absl::string_view value(authorization.data(), authorization.size());
  if (!absl::ConsumePrefix(&value, "Bearer ")) return nullptr;
  const std::string_view token(value.data(), value.size());
  if (SameSecret(token, client_token_)) return kClientRole;
  if (SameSecret(token, worker_token_)) return kWorkerRole;
  return nullptr;
}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& metadata, grpc::AuthContext*, OutputMetadata*,
                                         OutputMetadata*) {
  auto it = metadata.find(kAuthorization);
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "no token: pass --token-file with the coordinator's client or worker token");
  }
  const std::string_view value(it->second.data(), it->second.size());
  if (!absl::StartsWith(absl::string_view(value.data(), value.size()), "Bearer ")) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the authorization header is not a bearer token");
  }
  if (roles_->RoleOf(value) == nullptr) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong token");
  return grpc::Status::OK;
}

grpc::Status RequireRole(const grpc::ServerContext* context, const char* role, const TokenRoles* roles) {
  if (roles == nullptr) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(kAuthorization);
  const char* granted =
      it == metadata.end() ? nullptr : roles->RoleOf(std::string_view(it->second.data(), it->second.size()));
  if (granted != nullptr && std::string_view(granted) == role) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      std::string("this call needs the ") + role + " token, not the one given");
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  return absl::StartsWith(host, "127.") || host == "::1" || host == "localhost";
}

}  // namespace quantfleet
