// What a peer may send: bounds on every string and repeated field that a
// client or a worker puts in a request the coordinator stores, lists or
// echoes, checked at the gRPC edge before the service sees the request.
// Without them one oversized record (a 3 MiB failure reason, a 1 MiB worker
// name) would make `quantfleet jobs` or `quantfleet workers` unanswerable
// for ever, and offset arithmetic on wire values could overflow.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_COORDINATOR_REQUEST_LIMITS_H_
#define QUANTFLEET_COORDINATOR_REQUEST_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

inline constexpr size_t kMaxNameBytes = 128;       // worker names, host names, ids, GPU names, type names
inline constexpr size_t kMaxWirePathBytes = 4096;  // paths (the path policy refuses past 1024 with its reason)
inline constexpr size_t kMaxOptionBytes = 1024;    // one option: NAME=TYPE, KEY=TYPE:VALUE
inline constexpr size_t kMaxRepeated = 4096;       // entries of one repeated field (layers, types, roots)
inline constexpr size_t kMaxReasonBytes = 4096;    // a failure reason kept; longer ones are cut

// INVALID_ARGUMENT naming the field and its limit.
absl::Status CheckSubmitRequest(const quantfleet::v1::SubmitJobRequest& request);
absl::Status CheckWorkerInfo(const quantfleet::v1::WorkerInfo& info);

// [offset, offset + length) of a read: OUT_OF_RANGE for a negative offset,
// a length <= 0, or an end past INT64_MAX.
absl::Status CheckByteRange(int64_t offset, int64_t length);

// `reason` cut to kMaxReasonBytes (at a UTF-8 boundary), saying so.
std::string ClipReason(std::string_view reason);

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_REQUEST_LIMITS_H_
