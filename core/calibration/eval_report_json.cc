// See eval_report_json.h.
#include "core/calibration/eval_report_json.h"

namespace quantfleet {

namespace {

nlohmann::json EstimateJson(const Estimate& e) { return {{"value", e.value}, {"uncertainty", e.uncertainty}}; }

}  // namespace

nlohmann::json ReportJson(const EvalReport& r) {
  return {{"chunks", r.chunks},
          {"positions", r.positions},
          {"ppl", EstimateJson(r.ppl)},
          {"ppl_base", EstimateJson(r.ppl_base)},
          {"ln_ppl_correlation", r.ln_ppl_correlation},
          {"ln_ppl_ratio", EstimateJson(r.ln_ppl_ratio)},
          {"ppl_ratio", EstimateJson(r.ppl_ratio)},
          {"kld", EstimateJson(r.kld)},
          {"kld_median", r.kld_median},
          {"kld_p90", r.kld_p90},
          {"kld_p95", r.kld_p95},
          {"kld_p99", r.kld_p99},
          {"kld_p999", r.kld_p999},
          {"kld_max", r.kld_max},
          {"same_top", EstimateJson(r.same_top)},
          {"delta_p", EstimateJson(r.delta_p)},
          {"delta_p_rms", EstimateJson(r.delta_p_rms)}};
}

}  // namespace quantfleet
