#include "client/cluster_commands.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cluster_client.h"
#include "client/cluster_flags.h"
#include "client/job_watch.h"
#include "client/quantize_command.h"
#include "client/terminal_progress.h"
#include "core/safetensors/safetensors_checkpoint.h"
#include "core/util/local_process.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace fs = std::filesystem;

namespace {

constexpr char kUsage[] = R"(usage:
  quantfleet submit [--coordinator HOST:PORT] [--force] [--watch] [--json] [quantize options] IN OUT TYPE
  quantfleet submit --calibration TEXT [--chunks N] [--ctx C] [--gpu auto] [...] IN OUT TYPE
  quantfleet submit --calibration TEXT --target-size SIZE [...] IN OUT TYPE
  quantfleet submit --method gptq|awq|awq+gptq --calibration TEXT [--chunks N] [--ctx C] [...] IN OUT TYPE
  quantfleet submit --eval TEXT [--max-kld X] [--max-ppl-ratio R] [--eval-ctx C] [--eval-chunks N] [...] IN OUT TYPE
  quantfleet status  [--coordinator HOST:PORT] [--json] JOB
  quantfleet watch   [--coordinator HOST:PORT] [--json] JOB
  quantfleet jobs    [--coordinator HOST:PORT] [--json]
  quantfleet workers [--coordinator HOST:PORT] [--json]
  quantfleet cancel  [--coordinator HOST:PORT] [--json] JOB
  quantfleet cluster [--workers N] [--threads-per-worker N] [--calibration TEXT ...] [--eval TEXT ...] [quantize options] IN OUT TYPE

The coordinator is --coordinator, else $QUANTFLEET_COORDINATOR, else 127.0.0.1:7070.
Beyond loopback, connect with TLS and the client token: --tls-ca FILE --token-file FILE
(or $QUANTFLEET_TLS_CA and $QUANTFLEET_TOKEN_FILE), plus --tls-cert/--tls-key for mTLS
($QUANTFLEET_TLS_CERT, $QUANTFLEET_TLS_KEY). `quantfleet certs init` creates them all.
Paths are on the coordinator, inside its --allow-root directories; relative paths are
made absolute here. `submit` prints the job id as its last line; `watch` shows a live
progress bar (tensors and bytes done, per-worker throughput, ETA) and exits 0 only when
the job succeeded. `cluster` starts a coordinator and workers on this machine, runs one
job through them, and stops them: the same bytes as `quantfleet quantize`.
The quantize options are those of `quantfleet quantize --help`.

With --calibration TEXT, the workers first compute the importance matrix of IN over
TEXT (chunks of --ctx tokens, 512 by default, at most --chunks of them; workers read the
model under their --data-root or stream it into their cache), written beside the
artifact as OUT.imatrix.gguf; then the coordinator quantizes OUT with it, as
`llama-quantize --imatrix OUT.imatrix.gguf` would. submit prints the calibration job;
`status` on it names the quantization job (next) once that starts. With --gpu auto the
chunks run on the workers' GPUs only (dense F32/F16/BF16 models).

With --target-size SIZE (or --target-bpw BITS) and --calibration TEXT, the types are
chosen for the size as `quantfleet quantize --target-size` chooses them, the measuring
spread over the workers: after the importance matrix, a type-choice job has each worker
measure what every candidate type of one layer's matrices costs over TEXT (chunks of
--ctx tokens, 256 by default, at most --chunks, 8 by default; a worker must hold the
model), the coordinator allocates the bytes (the choice in OUT.types.json), and the
quantization follows with the chosen types.

With --method gptq, awq or awq+gptq and --calibration TEXT, the job is `quantfleet
quantize --method` spread over the workers, with the same bytes on the same kind of CPU:
the layers are solved one after another (one task each, on any worker: it streams the
model into its cache or reads it under --data-root, starts from the activations the
layer before it left with the coordinator, and leaves its own; --chunks, 8 by default,
of --ctx tokens, 256 by default), while the other tensors are quantized as in any job.
A killed worker or coordinator costs at most the layer in flight. No imatrix is
computed: the importance weights are each layer's own (or --imatrix FILE's). Each
worker holding a layer holds every chunk's activations (chunks x ctx x n_embd floats).

With --eval TEXT, the artifact is measured before it is delivered, as `quantfleet
quantize --eval` measures it: it is written as OUT.unmeasured.gguf, then an evaluation
job runs OUT and IN over TEXT on the workers (each holds both models) and writes the
report to OUT.eval.json; the artifact then moves to OUT, or, over --max-kld (mean KL
divergence, nats) or --max-ppl-ratio (PPL(OUT)/PPL(IN)), to OUT.rejected.gguf and the
evaluation job fails saying why. `watch`, `status` and the status page show PPL and KLD.
)";

int Fail(const absl::Status& s) {
  absl::FPrintF(stderr, "quantfleet: %s\n", s.message());
  return 1;
}

absl::StatusOr<v1::SubmitJobRequest> BuildSubmit(const CommonFlags& flags) {
  std::vector<std::string> rest;
  for (const std::string& a : flags.rest) {
    if (a != "--json") rest.push_back(a);
  }
  // A method takes --calibration as its text (parsed here, where quantize's
  // own parser would ask for it again).
  std::string method = "rtn";
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == "--method" && i + 1 < rest.size()) method = rest[i + 1];
    if (absl::StartsWith(rest[i], "--method=")) method = rest[i].substr(9);
  }
  for (const std::string& a : rest) {
    if (a == "--format" || absl::StartsWith(a, "--format=")) {
      return absl::UnimplementedError(
          "--format gptq|awq writes a checkpoint folder on one machine for now (quantfleet quantize --format ...); "
          "the cluster writes GGUF files");
    }
  }
  const bool layerwise = method != "rtn";
  if (layerwise && !flags.calibration.empty()) rest.insert(rest.begin(), {"--calibration", flags.calibration});
  absl::StatusOr<QuantizeCommandArgs> q = ParseQuantizeArgs(rest);
  if (!q.ok()) return q.status();
  if (q->dry_run) return absl::InvalidArgumentError("--dry-run is for `quantfleet quantize`; submit runs the job");
  const bool sized = q->target.file_bytes > 0 || q->target.bits_per_weight > 0;
  if (layerwise && sized) {
    return absl::UnimplementedError(absl::StrFormat(
        "--method %s with --target-size runs on one machine for now (quantfleet quantize); on the cluster, give a "
        "type",
        method));
  }
  if (layerwise && flags.gpu) {
    return absl::UnimplementedError(
        absl::StrFormat("--method %s runs on the workers' CPUs for now; drop --gpu auto", method));
  }
  if (sized && flags.calibration.empty()) {
    return absl::InvalidArgumentError(
        "--target-size and --target-bpw on the cluster need --calibration TEXT: the workers compute the importance "
        "matrix over it, then measure each matrix's types on it");
  }
  v1::SubmitJobRequest req;
  std::mt19937_64 gen(std::random_device{}());
  req.set_request_id(absl::StrFormat("%016x%016x", gen(), gen()));
  req.set_input(Absolute(q->input));
  req.set_output(Absolute(q->output));
  req.set_force(flags.force);
  v1::QuantizeOptions* o = req.mutable_options();
  o->set_file_type(std::string(q->options.file_type.name));
  if (q->options.output_tensor_type) o->set_output_tensor_type(std::string(TypeName(*q->options.output_tensor_type)));
  if (q->options.token_embedding_type) {
    o->set_token_embedding_type(std::string(TypeName(*q->options.token_embedding_type)));
  }
  o->set_leave_output_tensor(q->options.leave_output_tensor);
  o->set_pure(q->options.pure);
  o->set_allow_requantize(q->options.allow_requantize);
  for (const std::string& t : q->raw_tensor_types) o->add_tensor_types(t);
  for (const std::string& kv : q->raw_kv_overrides) o->add_override_kv(kv);
  o->set_imatrix(Absolute(q->options.imatrix_path));
  for (const std::string& w : q->options.include_weights) o->add_include_weights(w);
  for (const std::string& w : q->options.exclude_weights) o->add_exclude_weights(w);
  if (layerwise) {  // its defaults are quantize's, so the same command gives the same bytes
    v1::LayerwiseMethod* m = o->mutable_method();
    m->set_name(method);
    m->set_text(Absolute(flags.calibration));
    m->set_ctx(flags.ctx > 0 ? flags.ctx : q->target.ctx);
    m->set_max_chunks(flags.chunks > 0 ? flags.chunks : q->target.chunks);
    if (q->damp_given) m->set_damp(q->damp);
    m->set_act_order(q->act_order);
  }
  if (sized) {  // a type per matrix for the size, measured on the calibration text
    v1::TargetSizeOptions* t = req.mutable_target();
    t->set_file_bytes(static_cast<int64_t>(q->target.file_bytes));
    t->set_bits_per_weight(q->target.bits_per_weight);
    t->set_text(Absolute(flags.calibration));
    t->set_ctx(flags.ctx);
    t->set_max_chunks(flags.chunks);
  }
  if (!q->gate.text.empty()) {  // measured before it is delivered
    v1::EvaluationOptions* e = req.mutable_evaluate();
    e->set_text(Absolute(q->gate.text));
    e->set_ctx(q->gate.ctx);
    e->set_max_chunks(q->gate.chunks);
    e->set_max_kld(q->gate.max_kld);
    e->set_max_ppl_ratio(q->gate.max_ppl_ratio);
  }
  return req;
}

// Submits an importance-matrix job and follows it to its end.
int RunCalibration(ClusterClient& client, v1::SubmitJobRequest request, bool json) {
  std::mt19937_64 gen(std::random_device{}());
  request.set_request_id(absl::StrFormat("%016x%016x", gen(), gen()));
  absl::StatusOr<v1::Job> job = client.Submit(request);
  if (!job.ok()) return Fail(job.status());
  if (!json) {
    absl::FPrintF(stderr, "calibration %s: %s over %s in %d chunks -> %s\n", job->id(), job->input(),
                  request.calibration().text(), job->tensors_total(), job->output());
  }
  return WatchJob(client, job->id(), json);
}

// A calibrated job: the coordinator computes OUT.imatrix.gguf, then
// quantizes with it. With --watch, follows both phases.
int SubmitCalibrated(ClusterClient& client, v1::SubmitJobRequest request, const CommonFlags& flags) {
  if (!request.options().imatrix().empty()) {
    return Fail(absl::InvalidArgumentError("--calibration computes the imatrix; drop --imatrix"));
  }
  const v1::QuantizeOptions options = request.options();
  v1::CalibratedQuantization* calibrated = request.mutable_calibrated();  // takes the options' place
  *calibrated->mutable_options() = options;
  v1::CalibrationOptions* c = calibrated->mutable_calibration();
  c->set_text(Absolute(flags.calibration));
  c->set_ctx(flags.ctx);
  c->set_max_chunks(flags.chunks);
  c->set_gpu(flags.gpu);
  absl::StatusOr<v1::Job> job = client.Submit(request);
  if (!job.ok()) return Fail(job.status());
  if (!flags.json) {
    absl::FPrintF(stderr, "submitted %s: the importance matrix of %s over %s (%d chunks) -> %s, then %s as %s\n",
                  job->id(), job->input(), c->text(), job->tensors_total(), job->output(), request.output(),
                  calibrated->options().file_type());
  }
  if (!flags.watch) {
    absl::PrintF("%s\n", flags.json ? ToJson(*job) : job->id());
    return 0;
  }
  // The coordinator starts the quantization as the calibration ends (and
  // its evaluation after it).
  std::string last;
  const int rc = WatchChain(client, job->id(), flags.json, &last);
  if (!flags.json) absl::PrintF("%s\n", last);
  return rc;
}

// How long a call may take. The coordinator converts a checkpoint folder
// while it takes the job (rows into memory for a quantization; the whole
// GGUF once for jobs whose workers copy the model), which takes minutes
// for a large model: the submit then waits for it, and says so.
absl::Duration CallTimeout(const v1::SubmitJobRequest& request, bool json) {
  if (!IsCheckpointDir(request.input())) return absl::Seconds(60);
  if (!json) {
    absl::FPrintF(stderr, "%s is a checkpoint folder: the coordinator converts it as it takes the job\n",
                  request.input());
  }
  return absl::Hours(6);
}

int Submit(const CommonFlags& flags) {
  absl::StatusOr<v1::SubmitJobRequest> req = BuildSubmit(flags);
  if (!req.ok()) return Fail(req.status());
  absl::StatusOr<std::unique_ptr<ClusterClient>> connected = Connect(flags, CallTimeout(*req, flags.json));
  if (!connected.ok()) return Fail(connected.status());
  ClusterClient& client = **connected;
  if (flags.gpu && flags.calibration.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--gpu auto goes with --calibration; quantization tasks run where each worker's own --gpu says"));
  }
  if (!flags.calibration.empty() && !req->options().has_method()) return SubmitCalibrated(client, *req, flags);
  absl::StatusOr<v1::Job> job = client.Submit(*req);
  if (!job.ok()) return Fail(job.status());
  if (flags.json) {
    absl::PrintF("%s\n", ToJson(*job));
  } else {
    absl::FPrintF(stderr, "submitted %s -> %s as %s%s (%d tasks)\n", job->input(), job->output(),
                  job->options().file_type(),
                  job->options().has_method() ? " by " + job->options().method().name() : "", job->tasks_total());
  }
  if (flags.watch) {  // the job, then its evaluation if it has one
    std::string last;
    const int rc = WatchChain(client, job->id(), flags.json, &last);
    if (!flags.json) absl::PrintF("%s\n", last);
    return rc;
  }
  if (!flags.json) absl::PrintF("%s\n", job->id());
  return 0;
}

void StopAll(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) ::kill(p, SIGTERM);
  for (pid_t p : pids) {
    int status;
    for (int i = 0; i < 100 && ::waitpid(p, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::waitpid(p, &status, WNOHANG) == 0) {
      ::kill(p, SIGKILL);
      ::waitpid(p, &status, 0);
    }
  }
}

int LocalCluster(const CommonFlags& flags) {
  absl::StatusOr<v1::SubmitJobRequest> req = BuildSubmit(flags);
  if (!req.ok()) return Fail(req.status());
  req->set_force(true);  // a local run replaces its output, as quantize does
  const fs::path bin = fs::read_symlink("/proc/self/exe").parent_path();
  const std::string coordinator_bin = (bin / "quantfleet-coordinator").string();
  const std::string worker_bin = (bin / "quantfleet-worker").string();
  if (!fs::exists(coordinator_bin) || !fs::exists(worker_bin)) {
    return Fail(absl::NotFoundError(
        absl::StrFormat("quantfleet-coordinator and quantfleet-worker must be installed beside %s", bin.string())));
  }
  char state_tmpl[] = "/tmp/quantfleet-cluster-XXXXXX";
  if (::mkdtemp(state_tmpl) == nullptr) return Fail(absl::InternalError("cannot create a state directory in /tmp"));
  const std::string state = state_tmpl;
  const int port = FreeLoopbackPort();
  const std::string address = absl::StrFormat("127.0.0.1:%d", port);
  std::vector<std::string> roots = {fs::path(req->input()).parent_path().string(),
                                    fs::path(req->output()).parent_path().string()};
  if (!req->options().imatrix().empty()) roots.push_back(fs::path(req->options().imatrix()).parent_path().string());
  const bool layerwise = req->options().has_method();
  const bool calibrated = !flags.calibration.empty() && !layerwise;
  const bool measured = req->has_evaluate();
  if (!flags.calibration.empty()) roots.push_back(fs::path(Absolute(flags.calibration)).parent_path().string());
  if (measured) roots.push_back(fs::path(req->evaluate().text()).parent_path().string());
  std::vector<pid_t> pids;
  const pid_t coordinator = SpawnWithLog(
      {coordinator_bin, "--listen", address, "--state-dir", state, "--allow-root", absl::StrJoin(roots, ","),
       "--lease-seconds", "30", "--heartbeat-seconds", "2", "--drain-seconds", "0"},
      state + "/coordinator.log");
  if (coordinator < 0) return Fail(absl::InternalError("cannot start quantfleet-coordinator"));
  pids.push_back(coordinator);
  // Connect only once the port is open: a gRPC channel that fails its
  // first connection waits out a reconnect backoff of seconds.
  const bool up = WaitForLoopbackPort(port, absl::Seconds(20));
  auto client = std::make_unique<ClusterClient>(
      address, grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), CallTimeout(*req, flags.json));
  if (!up) {
    StopAll(pids);
    return Fail(
        absl::UnavailableError(absl::StrFormat("the local coordinator did not start; see %s/coordinator.log", state)));
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int threads = flags.threads_per_worker > 0 ? flags.threads_per_worker : std::max(1, cores / flags.workers);
  for (int i = 0; i < flags.workers; ++i) {
    std::vector<std::string> argv = {
        worker_bin,  "--coordinator",      address, "--name", absl::StrFormat("local-%d", i + 1),
        "--threads", absl::StrCat(threads)};
    // Calibrating and evaluating workers read the models where they are,
    // rather than stream copies into a cache.
    std::vector<std::string> data_roots;
    if (calibrated || measured || layerwise) data_roots.push_back(fs::path(req->input()).parent_path().string());
    if (measured) data_roots.push_back(fs::path(req->output()).parent_path().string());
    if (!data_roots.empty()) argv.insert(argv.end(), {"--data-root", absl::StrJoin(data_roots, ",")});
    pids.push_back(SpawnWithLog(argv, absl::StrFormat("%s/worker-%d.log", state, i + 1)));
  }
  if (!flags.json) {
    absl::FPrintF(stderr, "local cluster: coordinator on %s, %d workers x %d threads\n", address, flags.workers,
                  threads);
  }
  int rc;
  if (calibrated) {  // the importance matrix, then the quantization with it
    CommonFlags watching = flags;
    watching.watch = true;
    rc = SubmitCalibrated(*client, *req, watching);
  } else if (absl::StatusOr<v1::Job> job = client->Submit(*req); !job.ok()) {
    rc = Fail(job.status());
  } else {
    std::string last;
    rc = WatchChain(*client, job->id(), flags.json, &last);
  }
  client.reset();  // close the channel: an open one holds up the coordinator's shutdown
  // Workers first (they drain), then the coordinator.
  StopAll(std::vector<pid_t>(pids.begin() + 1, pids.end()));
  StopAll({coordinator});
  if (rc == 0) {
    fs::remove_all(state);
  } else {
    absl::FPrintF(stderr, "logs kept in %s\n", state);
  }
  return rc;
}

}  // namespace

int RunClusterImatrix(const std::vector<std::string>& args) {
  absl::StatusOr<CommonFlags> flags = ParseCommon(args);
  if (!flags.ok()) return Fail(flags.status());
  if (flags->help) {
    absl::PrintF("%s", kUsage);
    return 0;
  }
  v1::SubmitJobRequest request;
  request.set_force(true);  // as `quantfleet imatrix` replaces its output
  request.set_output(Absolute("imatrix.gguf"));
  v1::CalibrationOptions* o = request.mutable_calibration();
  o->set_ctx(flags->ctx);
  o->set_max_chunks(flags->chunks);
  o->set_gpu(flags->gpu);
  const std::vector<std::string>& rest = flags->rest;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& a = rest[i];
    auto value = [&]() -> std::string { return i + 1 < rest.size() ? rest[++i] : ""; };
    if (a == "-m" || a == "--model") {
      request.set_input(Absolute(value()));
    } else if (a == "-f" || a == "--file") {
      o->set_text(Absolute(value()));
    } else if (a == "-o" || a == "--output") {
      request.set_output(Absolute(value()));
    } else if (a == "-c") {
      int ctx = 0;
      if (!absl::SimpleAtoi(value(), &ctx) || ctx < 16) return Fail(absl::InvalidArgumentError("-c needs 16 or more"));
      o->set_ctx(ctx);
    } else if (a == "--process-output") {
      o->set_process_output(true);
    } else if (a == "--parse-special") {
      o->set_parse_special(true);
    } else if (a == "--json") {
      continue;
    } else {
      return Fail(absl::InvalidArgumentError(
          absl::StrFormat("%s is not available with --coordinator (the cluster writes GGUF, with perplexity)", a)));
    }
  }
  if (request.input().empty() || o->text().empty()) {
    return Fail(absl::InvalidArgumentError("give the model (-m) and the calibration text (-f)"));
  }
  absl::StatusOr<std::unique_ptr<ClusterClient>> connected = Connect(*flags, absl::Seconds(60));
  if (!connected.ok()) return Fail(connected.status());
  return RunCalibration(**connected, request, flags->json);
}

bool IsClusterCommand(const std::string& c) {
  return c == "submit" || c == "status" || c == "watch" || c == "jobs" || c == "workers" || c == "cancel" ||
         c == "cluster";
}

int RunClusterCommand(const std::string& command, const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") {
      absl::PrintF("%s", kUsage);
      return 0;
    }
  }
  absl::StatusOr<CommonFlags> flags = ParseCommon(args);
  if (!flags.ok()) return Fail(flags.status());
  if (command == "submit") return Submit(*flags);
  if (command == "cluster") return LocalCluster(*flags);
  std::vector<std::string> positional;
  for (const std::string& a : flags->rest) {
    if (a == "--json") continue;
    if (!a.empty() && a[0] == '-') return Fail(absl::InvalidArgumentError(absl::StrFormat("unknown option '%s'", a)));
    positional.push_back(a);
  }
  absl::StatusOr<std::unique_ptr<ClusterClient>> connected = Connect(*flags, absl::Seconds(30));
  if (!connected.ok()) return Fail(connected.status());
  ClusterClient& client = **connected;
  const bool needs_job = command == "status" || command == "watch" || command == "cancel";
  if (needs_job && positional.size() != 1) {
    return Fail(
        absl::InvalidArgumentError(absl::StrFormat("usage: quantfleet %s [--coordinator HOST:PORT] JOB", command)));
  }
  if (command == "status" || command == "cancel") {
    absl::StatusOr<v1::Job> j = command == "status" ? client.GetJob(positional[0]) : client.Cancel(positional[0]);
    if (!j.ok()) return Fail(j.status());
    return PrintJob(*j, flags->json);
  }
  if (command == "watch") return WatchJob(client, positional[0], flags->json);
  if (command == "jobs") {
    absl::StatusOr<v1::ListJobsResponse> jobs = client.ListJobs();
    if (!jobs.ok()) return Fail(jobs.status());
    if (flags->json) {
      absl::PrintF("%s\n", ToJson(*jobs));
      return 0;
    }
    if (jobs->omitted() > 0) absl::PrintF("(%d older jobs not shown)\n", jobs->omitted());
    absl::PrintF("%-18s %-10s %9s %-7s %s\n", "JOB", "STATE", "PROGRESS", "TYPE", "OUTPUT");
    for (const v1::Job& j : jobs->jobs()) {
      absl::PrintF("%-18s %-10s %8.1f%% %-7s %s\n", j.id(), JobStateName(j.state()),
                   j.bytes_total() ? 100.0 * j.bytes_done() / j.bytes_total() : 100.0, j.options().file_type(),
                   j.output());
    }
    return 0;
  }
  if (command == "workers") {
    absl::StatusOr<v1::ListWorkersResponse> workers = client.ListWorkers();
    if (!workers.ok()) return Fail(workers.status());
    if (flags->json) {
      absl::PrintF("%s\n", ToJson(*workers));
      return 0;
    }
    if (workers->omitted() > 0) absl::PrintF("(%d earlier workers not shown)\n", workers->omitted());
    absl::PrintF("%-24s %-16s %-6s %7s %10s %5s %6s %10s %12s %s\n", "WORKER", "HOST", "ALIVE", "THREADS", "MEMORY",
                 "HELD", "DONE", "BYTES", "RATE", "GPUS");
    for (const v1::WorkerStatus& w : workers->workers()) {
      std::vector<std::string> gpus;
      for (const v1::Gpu& g : w.info().gpus()) gpus.push_back(g.name());
      const std::string rate =
          w.bytes_per_second() > 0 ? HumanBytes(static_cast<uint64_t>(w.bytes_per_second())) + "/s" : "-";
      const std::string memory =
          w.info().memory_bytes() > 0 ? HumanBytes(static_cast<uint64_t>(w.info().memory_bytes())) : "no limit";
      absl::PrintF("%-24s %-16s %-6s %7d %10s %5d %6d %10s %12s %s\n", w.worker_id(), w.info().hostname(),
                   w.alive() ? "yes" : "no", w.info().threads(), memory, w.tasks_held(), w.tasks_done(),
                   HumanBytes(w.bytes_done()), rate, gpus.empty() ? "none" : absl::StrJoin(gpus, ","));
    }
    return 0;
  }
  return Fail(absl::InvalidArgumentError(absl::StrFormat("unknown command '%s'", command)));
}

}  // namespace quantfleet
