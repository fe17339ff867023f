// absl::Status <-> grpc::Status: the codes are the same numbers in both
// (canonical codes), so only the message is shaped.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_PROTO_STATUS_MAPPING_H_
#define QUANTFLEET_PROTO_STATUS_MAPPING_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace quantfleet {

grpc::Status ToGrpcStatus(const absl::Status& status);
// `what` (the call, e.g. "register") prefixes the message when not empty.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what = "");

}  // namespace quantfleet

#endif  // QUANTFLEET_PROTO_STATUS_MAPPING_H_
