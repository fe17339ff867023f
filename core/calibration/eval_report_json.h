// An evaluation report (eval_statistics.h) as JSON, the same for
// `quantfleet eval --json`, `quantize --eval`, `fit --eval` and the report
// a cluster evaluation job writes.
//
// Thread-safety: pure function.
#ifndef QUANTFLEET_CORE_CALIBRATION_EVAL_REPORT_JSON_H_
#define QUANTFLEET_CORE_CALIBRATION_EVAL_REPORT_JSON_H_

#include "core/calibration/eval_statistics.h"
#include "nlohmann/json.hpp"

namespace quantfleet {

nlohmann::json ReportJson(const EvalReport& r);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_EVAL_REPORT_JSON_H_
