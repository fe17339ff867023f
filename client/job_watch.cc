// See job_watch.h.
#include "client/job_watch.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/terminal_progress.h"

namespace quantfleet {

namespace {

int FailWith(const absl::Status& s) {
  absl::FPrintF(stderr, "quantfleet: %s\n", s.message());
  return 1;
}

// Tokens run through the model per second since the job was submitted.
double CalibrationTokensPerSecond(const v1::Job& j) {
  const int ctx = j.calibration().ctx() > 0 ? j.calibration().ctx() : 512;
  const int64_t end_ms = j.finished_unix_ms() > 0 ? j.finished_unix_ms() : absl::ToUnixMillis(absl::Now());
  const double secs = static_cast<double>(end_ms - j.created_unix_ms()) / 1000.0;
  return secs > 0 ? static_cast<double>(j.tensors_done() * ctx) / secs : 0;
}

// "data-parallel", "pipeline of 2 stages (layers 0-15, 16-31)", or empty
// while the job waits for workers.
std::string StagePlanText(const v1::Job& j) {
  const auto& ends = j.plan().stage_end_layers();
  if (ends.empty()) return "";
  if (ends.size() == 1) return "data-parallel";
  std::vector<std::string> ranges;
  for (int s = 0; s < ends.size(); ++s) {
    ranges.push_back(absl::StrFormat("%d-%d", s == 0 ? 0 : ends[s - 1], ends[s] - 1));
  }
  std::string text = absl::StrFormat("pipeline of %d stages (layers %s)", ends.size(), absl::StrJoin(ranges, ", "));
  if (j.stage_chunks_done_size() == ends.size() && j.state() == v1::JOB_RUNNING) {
    absl::StrAppend(&text, ", chunks done per stage ", absl::StrJoin(j.stage_chunks_done(), "/"));
  }
  return text;
}

// "gptq: layers 2/32 solved  " for a layerwise quantization, else empty.
std::string LayersText(const v1::Job& j) {
  if (!j.has_options() || !j.options().has_method()) return "";
  return absl::StrFormat("%s: layers %d/%d solved%s  ", j.options().method().name(), j.layers_done(), j.layers_total(),
                         j.layer_progress().empty() ? "" : absl::StrFormat(" (%s)", j.layer_progress()));
}

// "12.6 MiB" or "4.5 bits per weight".
std::string TargetText(const v1::TargetSizeOptions& t) {
  return t.file_bytes() > 0 ? HumanBytes(static_cast<uint64_t>(t.file_bytes()))
                            : absl::StrFormat("%g bits per weight", t.bits_per_weight());
}

}  // namespace

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string ReportLine(const v1::EvaluationReport& r) {
  return absl::StrFormat("PPL(Q) %.4f, PPL(base) %.4f, ratio %.4f, mean KLD %.6f ± %.6f, same top %.2f%%", r.ppl(),
                         r.ppl_base(), r.ppl_ratio(), r.kld(), r.kld_uncertainty(), 100 * r.same_top());
}

int WatchJob(ClusterClient& client, const std::string& job_id, bool json) {
  const bool tty = ::isatty(STDERR_FILENO) && !json;
  const absl::Time start = absl::Now();
  absl::Time last_line = absl::InfinitePast();
  bool drew = false;
  absl::StatusOr<v1::Job> end = client.Watch(job_id, [&](const v1::JobEvent& e) {
    const v1::Job& j = e.job();
    if (json) {
      std::string line = ToJson(e);
      line.erase(std::remove(line.begin(), line.end(), '\n'), line.end());
      absl::PrintF("%s\n", line);
      std::fflush(stdout);
      return;
    }
    const double frac =
        j.bytes_total() ? static_cast<double>(j.bytes_done()) / static_cast<double>(j.bytes_total()) : 0;
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    const double eta = frac > 0.001 ? secs * (1 - frac) / frac : 0;
    std::vector<std::string> rates;
    for (const v1::WorkerProgress& w : e.workers()) {
      rates.push_back(absl::StrFormat("%s %s/s", w.name(), HumanBytes(static_cast<uint64_t>(w.bytes_per_second()))));
    }
    const std::string text =
        !j.waiting().empty() ? absl::StrFormat("%s  %s", JobStateName(j.state()), j.waiting())
        : j.has_type_choice()
            ? absl::StrFormat("%s %3.0f%%  measuring types: %d/%d groups of matrices  ETA %.0fs",
                              JobStateName(j.state()), frac * 100, j.tensors_done(), j.tensors_total(), eta)
        : j.has_evaluation()
            ? absl::StrFormat("%s %3.0f%%  evaluation chunks %d/%d  %s  ETA %.0fs  %s", JobStateName(j.state()),
                              frac * 100, j.tensors_done(), j.tensors_total(),
                              j.report().positions() > 0 ? ReportLine(j.report()) : "", eta, StagePlanText(j))
        : j.has_calibration()
            ? absl::StrFormat("%s %3.0f%%  calibration chunks %d/%d  perplexity %.4f  %.0f tokens/s  ETA %.0fs  %s",
                              JobStateName(j.state()), frac * 100, j.tensors_done(), j.tensors_total(), j.perplexity(),
                              CalibrationTokensPerSecond(j), eta, StagePlanText(j))
            : absl::StrFormat("%s %3.0f%%  %stensors %d/%d  %s/%s  ETA %.0fs  %s", JobStateName(j.state()), frac * 100,
                              LayersText(j), j.tensors_done(), j.tensors_total(), HumanBytes(j.bytes_done()),
                              HumanBytes(j.bytes_total()), eta, absl::StrJoin(rates, ", "));
    if (tty) {
      const int filled = static_cast<int>(frac * 30);
      absl::FPrintF(stderr, "\r[%s%s] %s\033[K", std::string(filled, '#'), std::string(30 - filled, '.'), text);
      drew = true;
    } else if (absl::Now() - last_line >= absl::Seconds(1) || j.state() != v1::JOB_RUNNING) {
      absl::PrintF("%s\n", text);
      std::fflush(stdout);
      last_line = absl::Now();
    }
  });
  if (drew) absl::FPrintF(stderr, "\n");
  if (!end.ok()) return FailWith(end.status());
  if (end->state() == v1::JOB_SUCCEEDED) {
    if (!json) {
      absl::FPrintF(stderr, "job %s succeeded: %s (sha256 %s) in %.1f s\n", job_id, end->output(), end->sha256(),
                    (end->finished_unix_ms() - end->created_unix_ms()) / 1000.0);
      if (end->has_calibration())
        absl::FPrintF(stderr, "perplexity of the calibration text: %.4f\n", end->perplexity());
      if (end->has_evaluation()) absl::FPrintF(stderr, "%s\n", ReportLine(end->report()));
      if (end->has_type_choice()) {
        absl::FPrintF(stderr, "types chosen for %s: expected KLD %.6f (the sum of each matrix's own)\n",
                      TargetText(end->type_choice().target()), end->expected_kld());
      }
    }
    return 0;
  }
  if (!json && end->has_evaluation() && end->report().positions() > 0) {
    absl::FPrintF(stderr, "%s\n", ReportLine(end->report()));
  }
  absl::FPrintF(stderr, "job %s %s: %s\n", job_id, JobStateName(end->state()), end->error());
  return 1;
}

int PrintJob(const v1::Job& j, bool json) {
  if (json) {
    absl::PrintF("%s\n", ToJson(j));
    return 0;
  }
  absl::PrintF("job       %s\nstate     %s\ninput     %s\noutput    %s\n", j.id(), JobStateName(j.state()), j.input(),
               j.output());
  if (j.has_options()) absl::PrintF("type      %s\n", j.options().file_type());
  if (j.has_type_choice()) {
    absl::PrintF("type      %s, a type per matrix for %s\n", j.type_choice().options().file_type(),
                 TargetText(j.type_choice().target()));
    if (j.state() == v1::JOB_SUCCEEDED) absl::PrintF("expected  KLD %.6f\n", j.expected_kld());
  }
  if (j.has_calibration()) absl::PrintF("imatrix   over %s\n", j.calibration().text());
  if (j.has_evaluation()) absl::PrintF("measured  against %s over %s\n", j.evaluation().base(), j.evaluation().text());
  if (j.has_options() && j.options().has_method()) {
    absl::PrintF("method    %s over %s, layers %d/%d solved\n", j.options().method().name(),
                 j.options().method().text(), j.layers_done(), j.layers_total());
    if (!j.layer_progress().empty()) absl::PrintF("solving   %s\n", j.layer_progress());
  }
  absl::PrintF("tasks     %d/%d\ntensors   %d/%d\nbytes     %s/%s\n", j.tasks_done(), j.tasks_total(), j.tensors_done(),
               j.tensors_total(), HumanBytes(j.bytes_done()), HumanBytes(j.bytes_total()));
  if (!j.sha256().empty()) absl::PrintF("sha256    %s\n", j.sha256());
  if (j.has_calibration()) absl::PrintF("perplexity %.4f\n", j.perplexity());
  if (j.has_plan()) absl::PrintF("plan      %s\n", StagePlanText(j));
  if (!j.waiting().empty()) absl::PrintF("waiting   %s\n", j.waiting());
  if (j.has_evaluation() && j.report().positions() > 0) absl::PrintF("quality   %s\n", ReportLine(j.report()));
  if (!j.next_job_id().empty()) {
    absl::PrintF("next      %s (%s)\n", j.next_job_id(),
                 j.then().has_evaluation() ? "the evaluation of this artifact"
                 : j.then().has_target()   ? "the choice of types for its size"
                 : j.has_type_choice()     ? "the quantization with these types"
                                           : "the quantization with this imatrix");
  }
  if (!j.error().empty()) absl::PrintF("error     %s\n", j.error());
  return 0;
}

int WatchChain(ClusterClient& client, const std::string& job_id, bool json, std::string* last) {
  std::string id = job_id;
  for (;;) {
    *last = id;
    if (const int rc = WatchJob(client, id, json); rc != 0) return rc;
    // A job that others follow names the next once the coordinator has
    // started it (opened and planned its inputs) after the job ended.
    std::string next;
    for (int i = 0; i < 1500 && next.empty(); ++i) {  // at most 5 minutes
      absl::StatusOr<v1::Job> now = client.GetJob(id);
      if (!now.ok()) return FailWith(now.status());
      if (!now->has_then()) return 0;
      if (!now->error().empty()) return FailWith(absl::FailedPreconditionError(now->error()));
      next = now->next_job_id();
      if (next.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (next.empty()) {
      return FailWith(absl::DeadlineExceededError(
          absl::StrFormat("job %s finished but the job that follows it did not start", id)));
    }
    id = next;
  }
}

}  // namespace quantfleet
