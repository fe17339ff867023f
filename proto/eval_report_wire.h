// An evaluation report (core/calibration/eval_statistics.h) and its wire
// form, EvaluationReport: the coordinator sends what its workers measured,
// the client prints it as `quantfleet eval` does.
//
// Thread-safety: pure functions.
#ifndef QUANTFLEET_PROTO_EVAL_REPORT_WIRE_H_
#define QUANTFLEET_PROTO_EVAL_REPORT_WIRE_H_

#include "core/calibration/eval_statistics.h"
#include "proto/quantfleet.pb.h"

namespace quantfleet {

quantfleet::v1::EvaluationReport ReportToProto(const EvalReport& r);
EvalReport ReportFromProto(const quantfleet::v1::EvaluationReport& p);

}  // namespace quantfleet

#endif  // QUANTFLEET_PROTO_EVAL_REPORT_WIRE_H_
