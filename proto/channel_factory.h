// Builds gRPC channels to a coordinator: plain on loopback, or TLS (with a
// client certificate for mTLS) and a bearer token. Used by the quantfleet
// command, the client library and workers: the wire's client side.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_PROTO_CHANNEL_FACTORY_H_
#define QUANTFLEET_PROTO_CHANNEL_FACTORY_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace quantfleet {

struct ChannelSecurity {
  std::string token_file;  // bearer token (client or worker role)
  std::string tls_ca;      // PEM file of the CA that signed the coordinator's certificate
  std::string tls_cert;    // client certificate (mTLS), optional
  std::string tls_key;
};

// Errors: INVALID_ARGUMENT for a token without TLS (tokens are never sent
// in the clear) and NOT_FOUND for unreadable files, naming them.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address, const ChannelSecurity& security);

// Reads a whole file of at most 1 MiB (a token, a certificate); errors
// name it.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// The coordinator to talk to: `flag` when given, else $QUANTFLEET_COORDINATOR,
// else 127.0.0.1:7070.
std::string DefaultCoordinatorAddress(const std::string& flag);

}  // namespace quantfleet

#endif  // QUANTFLEET_PROTO_CHANNEL_FACTORY_H_
