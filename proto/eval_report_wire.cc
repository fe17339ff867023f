// See eval_report_wire.h.
#include "proto/eval_report_wire.h"

namespace quantfleet {

v1::EvaluationReport ReportToProto(const EvalReport& r) {
  v1::EvaluationReport p;
  p.set_chunks(r.chunks);
  p.set_positions(r.positions);
  p.set_ppl(r.ppl.value);
  p.set_ppl_uncertainty(r.ppl.uncertainty);
  p.set_ppl_base(r.ppl_base.value);
  p.set_ppl_base_uncertainty(r.ppl_base.uncertainty);
  p.set_ln_ppl_correlation(r.ln_ppl_correlation);
  p.set_ln_ppl_ratio(r.ln_ppl_ratio.value);
  p.set_ln_ppl_ratio_uncertainty(r.ln_ppl_ratio.uncertainty);
  p.set_ppl_ratio(r.ppl_ratio.value);
  p.set_ppl_ratio_uncertainty(r.ppl_ratio.uncertainty);
  p.set_kld(r.kld.value);
  p.set_kld_uncertainty(r.kld.uncertainty);
  p.set_kld_median(r.kld_median);
  p.set_kld_p90(r.kld_p90);
  p.set_kld_p95(r.kld_p95);
  p.set_kld_p99(r.kld_p99);
  p.set_kld_p999(r.kld_p999);
  p.set_kld_max(r.kld_max);
  p.set_same_top(r.same_top.value);
  p.set_same_top_uncertainty(r.same_top.uncertainty);
  p.set_delta_p(r.delta_p.value);
  p.set_delta_p_uncertainty(r.delta_p.uncertainty);
  p.set_delta_p_rms(r.delta_p_rms.value);
  p.set_delta_p_rms_uncertainty(r.delta_p_rms.uncertainty);
  return p;
}

EvalReport ReportFromProto(const v1::EvaluationReport& p) {
  EvalReport r;
  r.chunks = p.chunks();
  r.positions = p.positions();
  r.ppl = {p.ppl(), p.ppl_uncertainty()};
  r.ppl_base = {p.ppl_base(), p.ppl_base_uncertainty()};
  r.ln_ppl_correlation = p.ln_ppl_correlation();
  r.ln_ppl_ratio = {p.ln_ppl_ratio(), p.ln_ppl_ratio_uncertainty()};
  r.ppl_ratio = {p.ppl_ratio(), p.ppl_ratio_uncertainty()};
  r.kld = {p.kld(), p.kld_uncertainty()};
  r.kld_median = p.kld_median();
  r.kld_p90 = p.kld_p90();
  r.kld_p95 = p.kld_p95();
  r.kld_p99 = p.kld_p99();
  r.kld_p999 = p.kld_p999();
  r.kld_max = p.kld_max();
  r.same_top = {p.same_top(), p.same_top_uncertainty()};
  r.delta_p = {p.delta_p(), p.delta_p_uncertainty()};
  r.delta_p_rms = {p.delta_p_rms(), p.delta_p_rms_uncertainty()};
  return r;
}

}  // namespace quantfleet
