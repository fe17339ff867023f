#include "proto/channel_factory.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "core/io/mapped_file.h"
#include "core/util/status_macros.h"

namespace quantfleet {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) { return ReadRegularFile(path, 1 << 20); }

std::string DefaultCoordinatorAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("QUANTFLEET_COORDINATOR"); env != nullptr && *env != '\0') return env;
  return "127.0.0.1:7070";
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address, const ChannelSecurity& sec) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (sec.tls_ca.empty()) {
    if (!sec.token_file.empty()) {
      return absl::InvalidArgumentError(
          "a token is only sent over TLS: pass --tls-ca with the coordinator's CA certificate");
    }
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  QF_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadSecretFile(sec.tls_ca));
  if (!sec.tls_cert.empty()) {
    QF_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadSecretFile(sec.tls_cert));
    QF_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadSecretFile(sec.tls_key));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::SslCredentials(ssl);
  if (!sec.token_file.empty()) {
    QF_ASSIGN_OR_RETURN(std::string token, ReadSecretFile(sec.token_file));
    creds = grpc::CompositeChannelCredentials(
        creds, grpc::AccessTokenCredentials(std::string(absl::StripAsciiWhitespace(token))));
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

}  // namespace quantfleet
