// An evaluation report (core/calibration/evaluation.h) as JSON, the same
// for `quantfleet eval --json`, `quantize --eval` and `fit --eval`.
//
// Thread-safety: pure function.
#ifndef QUANTFLEET_CLIENT_EVAL_REPORT_JSON_H_
#define QUANTFLEET_CLIENT_EVAL_REPORT_JSON_H_

#include "core/calibration/evaluation.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

nlohmann::json ReportJson(const EvalReport& r);

}  // namespace quantfleet

#endif  // QUANTFLEET_CLIENT_EVAL_REPORT_JSON_H_
