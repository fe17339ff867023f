// `quantfleet eval --coordinator ...`: an evaluation job on the cluster,
// followed to its end with its running numbers on stderr, then the report
// printed as the one-machine `quantfleet eval` prints it (the same
// numbers: the workers' positions are summed in chunk order).
#include <unistd.h>

#include <cmath>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/cluster_flags.h"
#include "client/command_line.h"
#include "client/eval_command.h"
#include "client/job_watch.h"
#include "core/calibration/eval_report_json.h"
#include "proto/eval_report_wire.h"

namespace quantfleet {

namespace {

int Fail(const std::string& message) {
  absl::FPrintF(stderr, "quantfleet eval: %s\n", message);
  return 1;
}

// A limit: a finite number of at least `least` (above 0 when it is 0).
std::function<absl::Status(const std::string&)> Limit(const char* flag, double least, double* out) {
  return [flag, least, out](const std::string& v) -> absl::Status {
    if (!absl::SimpleAtod(v, out) || !std::isfinite(*out) || *out < least || !(*out > 0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s '%s': expected %s", flag, v, least > 0 ? absl::StrFormat("%g or more", least) : "a positive number"));
    }
    return absl::OkStatus();
  };
}

}  // namespace

int RunClusterEval(const std::vector<std::string>& args) {
  absl::StatusOr<CommonFlags> flags = ParseCommon(args);
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  v1::SubmitJobRequest request;
  request.set_force(true);  // as a report printed again replaces the last
  std::string base, model, text, output = "eval.json";
  double max_kld = 0, max_ppl_ratio = 0;
  int ctx = flags->ctx > 0 ? flags->ctx : 512;
  bool json = false;
  CommandLine line("quantfleet eval --coordinator");
  line.Text({"--base"}, &base, "a file")
      .Text({"-m", "--model"}, &model, "a file")
      .Text({"-f", "--file"}, &text, "a file")
      .Text({"-o", "--output"}, &output, "a file")
      .Int({"-c"}, &ctx, 16, "a number of tokens, 16 or more")
      .Value({"--max-kld"}, "a positive number", Limit("--max-kld", 0, &max_kld))
      .Value({"--max-ppl-ratio"}, "a number of 1 or more", Limit("--max-ppl-ratio", 1, &max_ppl_ratio))
      .Refuse({"-t", "--threads"}, absl::InvalidArgumentError("-t: on the cluster each worker uses its own --threads"))
      .Flag({"--json"}, &json);
  absl::StatusOr<bool> parsed = line.Parse(flags->rest);
  if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
  if (base.empty() || model.empty() || text.empty()) {
    return Fail("give the base model (--base), the model to measure (--model) and the text (-f)");
  }
  std::mt19937_64 gen(std::random_device{}());
  request.set_request_id(absl::StrFormat("%016x%016x", gen(), gen()));
  request.set_input(Absolute(model));
  request.set_output(Absolute(output));
  v1::EvaluationOptions* e = request.mutable_evaluation();
  e->set_base(Absolute(base));
  e->set_text(Absolute(text));
  e->set_ctx(ctx);
  e->set_max_chunks(flags->chunks);
  e->set_max_kld(max_kld);
  e->set_max_ppl_ratio(max_ppl_ratio);

  absl::StatusOr<std::unique_ptr<ClusterClient>> connected = Connect(*flags, absl::Seconds(60));
  if (!connected.ok()) return Fail(std::string(connected.status().message()));
  ClusterClient& client = **connected;
  absl::StatusOr<v1::Job> job = client.Submit(request);
  if (!job.ok()) return Fail(std::string(job.status().message()));
  absl::FPrintF(stderr, "quantfleet eval: job %s: %s against %s over %s, %d chunks of %d tokens\n", job->id(),
                request.input(), e->base(), e->text(), job->tensors_total(), ctx);
  // Progress on stderr, so that stdout holds the report alone.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  int64_t shown = -1;
  absl::StatusOr<v1::Job> end = client.Watch(job->id(), [&](const v1::JobEvent& event) {
    const v1::Job& j = event.job();
    if (!j.waiting().empty() && tty) absl::FPrintF(stderr, "\r%s\033[K", j.waiting());
    if (j.report().chunks() == shown || j.report().positions() == 0) return;
    shown = j.report().chunks();
    absl::FPrintF(stderr, "%schunk %d/%d: %s%s", tty ? "\r" : "", shown, j.tensors_total(), ReportLine(j.report()),
                  tty ? "\033[K" : "\n");
  });
  if (tty) absl::FPrintF(stderr, "\n");
  if (!end.ok()) return Fail(std::string(end.status().message()));
  const bool measured = end->report().positions() > 0 && !end->sha256().empty();
  if (measured) {
    const EvalReport report = ReportFromProto(end->report());
    if (json) {
      absl::PrintF("%s\n", ReportJson(report).dump(2));
    } else {
      PrintEvalReport(report);
    }
  }
  if (end->state() != v1::JOB_SUCCEEDED) {
    return Fail(absl::StrFormat("job %s %s: %s", end->id(), JobStateName(end->state()), end->error()));
  }
  absl::FPrintF(stderr, "quantfleet eval: report written on the coordinator to %s\n", end->output());
  return 0;
}

}  // namespace quantfleet
