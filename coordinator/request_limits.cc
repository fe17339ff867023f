#include "coordinator/request_limits.h"

#include <limits>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

namespace v1 = quantfleet::v1;

absl::Status CheckString(const std::string& value, size_t limit, const char* field) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s is %d bytes long; the limit is %d", field, value.size(), limit));
}

template <typename Repeated>
absl::Status CheckStrings(const Repeated& values, size_t limit, const char* field) {
  if (static_cast<size_t>(values.size()) > kMaxRepeated) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s has %d entries; the limit is %d", field, values.size(), kMaxRepeated));
  }
  for (const std::string& v : values) QF_RETURN_IF_ERROR(CheckString(v, limit, field));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckSubmitRequest(const v1::SubmitJobRequest& r) {
  QF_RETURN_IF_ERROR(CheckString(r.request_id(), kMaxNameBytes, "the request id"));
  QF_RETURN_IF_ERROR(CheckString(r.input(), kMaxWirePathBytes, "the input path"));
  QF_RETURN_IF_ERROR(CheckString(r.output(), kMaxWirePathBytes, "the output path"));
  QF_RETURN_IF_ERROR(CheckStrings(r.layer_workers(), kMaxNameBytes, "layer_workers"));
  const v1::QuantizeOptions& o = r.has_calibrated()    ? r.calibrated().options()
                                 : r.has_type_choice() ? r.type_choice().options()
                                                       : r.options();
  QF_RETURN_IF_ERROR(CheckString(o.file_type(), kMaxNameBytes, "the file type"));
  QF_RETURN_IF_ERROR(CheckString(o.output_tensor_type(), kMaxNameBytes, "the output tensor type"));
  QF_RETURN_IF_ERROR(CheckString(o.token_embedding_type(), kMaxNameBytes, "the token embedding type"));
  QF_RETURN_IF_ERROR(CheckString(o.imatrix(), kMaxWirePathBytes, "the imatrix path"));
  QF_RETURN_IF_ERROR(CheckStrings(o.tensor_types(), kMaxOptionBytes, "a tensor type"));
  QF_RETURN_IF_ERROR(CheckStrings(o.override_kv(), kMaxOptionBytes, "an --override-kv"));
  QF_RETURN_IF_ERROR(CheckStrings(o.include_weights(), kMaxOptionBytes, "an --include-weights"));
  QF_RETURN_IF_ERROR(CheckStrings(o.exclude_weights(), kMaxOptionBytes, "an --exclude-weights"));
  QF_RETURN_IF_ERROR(CheckString(o.method().name(), kMaxNameBytes, "the method"));
  QF_RETURN_IF_ERROR(CheckString(o.method().text(), kMaxWirePathBytes, "the method's calibration text path"));
  if (r.has_calibration() || r.has_calibrated()) {
    const v1::CalibrationOptions& c = r.has_calibrated() ? r.calibrated().calibration() : r.calibration();
    QF_RETURN_IF_ERROR(CheckString(c.text(), kMaxWirePathBytes, "the calibration text path"));
  }
  for (const v1::TargetSizeOptions* t : {&r.target(), &r.type_choice().target()}) {
    QF_RETURN_IF_ERROR(CheckString(t->text(), kMaxWirePathBytes, "the type choice's text path"));
    if (t->file_bytes() < 0 || !(t->bits_per_weight() >= 0) || t->ctx() < 0 || t->max_chunks() < 0) {
      return absl::InvalidArgumentError("the target size, bits per weight, ctx and chunks cannot be negative");
    }
  }
  for (const v1::EvaluationOptions* e : {&r.evaluation(), &r.evaluate()}) {
    QF_RETURN_IF_ERROR(CheckString(e->text(), kMaxWirePathBytes, "the evaluation text path"));
    QF_RETURN_IF_ERROR(CheckString(e->base(), kMaxWirePathBytes, "the base model path"));
    QF_RETURN_IF_ERROR(CheckString(e->accept_as(), kMaxWirePathBytes, "the accepted model path"));
    if (!(e->max_kld() >= 0) || !(e->max_ppl_ratio() >= 0)) {  // NaN too
      return absl::InvalidArgumentError("the evaluation's limits must be numbers, 0 (none) or more");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckWorkerInfo(const v1::WorkerInfo& w) {
  if (w.name().empty()) return absl::InvalidArgumentError("the worker has no name");
  QF_RETURN_IF_ERROR(CheckString(w.name(), kMaxNameBytes, "the worker name"));
  QF_RETURN_IF_ERROR(CheckString(w.hostname(), kMaxNameBytes, "the host name"));
  QF_RETURN_IF_ERROR(CheckString(w.incarnation(), kMaxNameBytes, "the incarnation"));
  QF_RETURN_IF_ERROR(CheckStrings(w.types(), kMaxNameBytes, "a type name"));
  QF_RETURN_IF_ERROR(CheckStrings(w.data_roots(), kMaxWirePathBytes, "a data root"));
  if (static_cast<size_t>(w.gpus_size()) > kMaxRepeated) {
    return absl::InvalidArgumentError(absl::StrFormat("%d GPUs; the limit is %d", w.gpus_size(), kMaxRepeated));
  }
  for (const v1::Gpu& g : w.gpus()) QF_RETURN_IF_ERROR(CheckString(g.name(), kMaxNameBytes, "a GPU name"));
  if (w.threads() < 0 || w.memory_bytes() < 0 || w.gpu_memory_bytes() < 0) {
    return absl::InvalidArgumentError("threads and memory sizes cannot be negative");
  }
  return absl::OkStatus();
}

absl::Status CheckByteRange(int64_t offset, int64_t length) {
  if (offset < 0 || length <= 0 || offset > std::numeric_limits<int64_t>::max() - length) {
    return absl::OutOfRangeError(absl::StrFormat("the byte range [%d, +%d) is impossible", offset, length));
  }
  return absl::OkStatus();
}

std::string ClipReason(std::string_view reason) {
  if (reason.size() <= kMaxReasonBytes) return std::string(reason);
  constexpr std::string_view kCut = " [... cut]";
  size_t keep = kMaxReasonBytes - kCut.size();
  // Back up to a UTF-8 lead byte so the kept text stays valid.
  while (keep > 0 && (static_cast<unsigned char>(reason[keep]) & 0xC0) == 0x80) --keep;
  return std::string(reason.substr(0, keep)) + std::string(kCut);
}

}  // namespace quantfleet
