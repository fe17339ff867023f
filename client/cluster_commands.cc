#include "client/cluster_commands.h"

#include <google/protobuf/util/json_util.h>
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
#include "client/command_line.h"
#include "client/quantize_command.h"
#include "client/terminal_progress.h"
#include "core/util/local_process.h"
#include "core/util/status_macros.h"
#include "proto/channel_factory.h"

namespace quantfleet {
namespace fs = std::filesystem;

namespace {

constexpr char kUsage[] = R"(usage:
  quantfleet submit [--coordinator HOST:PORT] [--force] [--watch] [--json] [quantize options] IN OUT TYPE
  quantfleet submit --calibration TEXT [--chunks N] [--ctx C] [--gpu auto] [...] IN OUT TYPE
  quantfleet status  [--coordinator HOST:PORT] [--json] JOB
  quantfleet watch   [--coordinator HOST:PORT] [--json] JOB
  quantfleet jobs    [--coordinator HOST:PORT] [--json]
  quantfleet workers [--coordinator HOST:PORT] [--json]
  quantfleet cancel  [--coordinator HOST:PORT] [--json] JOB
  quantfleet cluster [--workers N] [--threads-per-worker N] [--calibration TEXT ...] [quantize options] IN OUT TYPE

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
)";

struct CommonFlags {
  bool help = false;  // -h or --help was given (nothing after it was parsed)
  std::string coordinator;
  ChannelSecurity security;
  bool json = false;
  bool force = false;
  bool watch = false;
  int workers = 2;
  int threads_per_worker = 0;
  std::string calibration;  // submit --calibration TEXT
  bool gpu = false;         // --gpu auto: calibrate on GPU workers
  int chunks = 0;
  int ctx = 0;
  std::vector<std::string> rest;
};

absl::StatusOr<CommonFlags> ParseCommon(const std::vector<std::string>& args) {
  CommonFlags f;
  std::string gpu;
  CommandLine line("quantfleet");
  line.Text({"--coordinator"}, &f.coordinator, "HOST:PORT")
      .Text({"--token-file"}, &f.security.token_file, "a file")
      .Text({"--tls-ca"}, &f.security.tls_ca, "a file")
      .Text({"--tls-cert"}, &f.security.tls_cert, "a file")
      .Text({"--tls-key"}, &f.security.tls_key, "a file")
      .Flag({"--json"}, &f.json)
      .Flag({"--force"}, &f.force)
      .Flag({"--watch"}, &f.watch)
      .Int({"--workers"}, &f.workers, 1, "a positive number")
      .Int({"--threads-per-worker"}, &f.threads_per_worker, 1, "a positive number")
      .Text({"--calibration"}, &f.calibration, "a text file")
      .Int({"--chunks"}, &f.chunks, 1, "a positive number")
      .Text({"--gpu"}, &gpu, "auto")
      .Int({"--ctx"}, &f.ctx, 1, "a positive number")
      .Rest(&f.rest);
  QF_ASSIGN_OR_RETURN(const bool run, line.Parse(args));
  f.help = !run;
  if (!gpu.empty() && gpu != "auto") {
    return absl::InvalidArgumentError(
        absl::StrFormat("--gpu %s: on the cluster, give --gpu auto (each GPU worker uses its own --gpu)", gpu));
  }
  f.gpu = gpu == "auto";
  // The subcommands' own parsers see --json too.
  if (f.json) f.rest.push_back("--json");
  // Environment defaults, so a home lab sets them once.
  if (f.security.token_file.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TOKEN_FILE")) f.security.token_file = v;
  }
  if (f.security.tls_ca.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_CA")) f.security.tls_ca = v;
  }
  if (f.security.tls_cert.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_CERT")) f.security.tls_cert = v;
  }
  if (f.security.tls_key.empty()) {
    if (const char* v = std::getenv("QUANTFLEET_TLS_KEY")) f.security.tls_key = v;
  }
  return f;
}

absl::StatusOr<std::unique_ptr<ClusterClient>> Connect(const CommonFlags& flags, absl::Duration timeout) {
  const std::string address = ClusterClient::DefaultAddress(flags.coordinator);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(address, flags.security);
  if (!channel.ok()) return channel.status();
  return std::make_unique<ClusterClient>(address, *channel, timeout);
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

int Fail(const absl::Status& s) {
  absl::FPrintF(stderr, "quantfleet: %s\n", s.message());
  return 1;
}

std::string Absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

absl::StatusOr<v1::SubmitJobRequest> BuildSubmit(const CommonFlags& flags) {
  std::vector<std::string> rest;
  for (const std::string& a : flags.rest) {
    if (a != "--json") rest.push_back(a);
  }
  // Said before the options are checked (submit takes --calibration for
  // itself, so quantize's "needs --calibration" would mislead).
  for (size_t i = 0; i < rest.size(); ++i) {
    std::string method;
    if (rest[i] == "--method" && i + 1 < rest.size()) method = rest[i + 1];
    if (absl::StartsWith(rest[i], "--method=")) method = rest[i].substr(9);
    if (!method.empty() && method != "rtn") {
      return absl::UnimplementedError(absl::StrFormat(
          "--method %s runs on one machine for now (quantfleet quantize --method %s --calibration TEXT ...); a "
          "cluster job rounds with each type's own quantizer",
          method, method));
    }
  }
  absl::StatusOr<QuantizeCommandArgs> q = ParseQuantizeArgs(rest);
  if (!q.ok()) return q.status();
  if (q->dry_run) return absl::InvalidArgumentError("--dry-run is for `quantfleet quantize`; submit runs the job");
  if (!q->gate.text.empty()) {
    return absl::UnimplementedError(
        "--eval and its limits run on one machine for now (quantfleet quantize --eval TEXT ...); measure a cluster "
        "job's artifact with quantfleet eval");
  }
  if (q->target.file_bytes > 0 || q->target.bits_per_weight > 0) {
    return absl::UnimplementedError(
        "--target-size and --target-bpw run on one machine for now (quantfleet quantize --target-size ...); a "
        "cluster job takes a file type");
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
  return req;
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
std::string CalibrationPlanText(const v1::Job& j) {
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

// Shows a job's progress until it ends; returns the exit code.
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
        : j.has_calibration()
            ? absl::StrFormat("%s %3.0f%%  calibration chunks %d/%d  perplexity %.4f  %.0f tokens/s  ETA %.0fs  %s",
                              JobStateName(j.state()), frac * 100, j.tensors_done(), j.tensors_total(), j.perplexity(),
                              CalibrationTokensPerSecond(j), eta, CalibrationPlanText(j))
            : absl::StrFormat("%s %3.0f%%  tensors %d/%d  %s/%s  ETA %.0fs  %s", JobStateName(j.state()), frac * 100,
                              j.tensors_done(), j.tensors_total(), HumanBytes(j.bytes_done()),
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
  if (!end.ok()) return Fail(end.status());
  if (end->state() == v1::JOB_SUCCEEDED) {
    if (!json) {
      absl::FPrintF(stderr, "job %s succeeded: %s (sha256 %s) in %.1f s\n", job_id, end->output(), end->sha256(),
                    (end->finished_unix_ms() - end->created_unix_ms()) / 1000.0);
      if (end->has_calibration())
        absl::FPrintF(stderr, "perplexity of the calibration text: %.4f\n", end->perplexity());
    }
    return 0;
  }
  absl::FPrintF(stderr, "job %s %s: %s\n", job_id, JobStateName(end->state()), end->error());
  return 1;
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
  if (int rc = WatchJob(client, job->id(), flags.json); rc != 0) return rc;
  // The coordinator starts the quantization as the calibration ends.
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<v1::Job> now = client.GetJob(job->id());
    if (!now.ok()) return Fail(now.status());
    if (!now->error().empty()) return Fail(absl::FailedPreconditionError(now->error()));
    if (!now->next_job_id().empty()) {
      const int rc = WatchJob(client, now->next_job_id(), flags.json);
      if (!flags.json) absl::PrintF("%s\n", now->next_job_id());
      return rc;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Fail(
      absl::DeadlineExceededError(absl::StrFormat("job %s finished but its quantization did not start", job->id())));
}

int Submit(const CommonFlags& flags) {
  absl::StatusOr<v1::SubmitJobRequest> req = BuildSubmit(flags);
  if (!req.ok()) return Fail(req.status());
  absl::StatusOr<std::unique_ptr<ClusterClient>> connected = Connect(flags, absl::Seconds(60));
  if (!connected.ok()) return Fail(connected.status());
  ClusterClient& client = **connected;
  if (flags.gpu && flags.calibration.empty()) {
    return Fail(absl::InvalidArgumentError(
        "--gpu auto goes with --calibration; quantization tasks run where each worker's own --gpu says"));
  }
  if (!flags.calibration.empty()) return SubmitCalibrated(client, *req, flags);
  absl::StatusOr<v1::Job> job = client.Submit(*req);
  if (!job.ok()) return Fail(job.status());
  if (flags.json) {
    absl::PrintF("%s\n", ToJson(*job));
  } else {
    absl::FPrintF(stderr, "submitted %s -> %s as %s (%d tasks)\n", job->input(), job->output(),
                  job->options().file_type(), job->tasks_total());
  }
  if (flags.watch) {
    const int rc = WatchJob(client, job->id(), flags.json);
    if (!flags.json) absl::PrintF("%s\n", job->id());
    return rc;
  }
  if (!flags.json) absl::PrintF("%s\n", job->id());
  return 0;
}

int PrintJob(const v1::Job& j, bool json) {
  if (json) {
    absl::PrintF("%s\n", ToJson(j));
    return 0;
  }
  absl::PrintF("job       %s\nstate     %s\ninput     %s\noutput    %s\ntype      %s\n", j.id(),
               JobStateName(j.state()), j.input(), j.output(), j.options().file_type());
  absl::PrintF("tasks     %d/%d\ntensors   %d/%d\nbytes     %s/%s\n", j.tasks_done(), j.tasks_total(), j.tensors_done(),
               j.tensors_total(), HumanBytes(j.bytes_done()), HumanBytes(j.bytes_total()));
  if (!j.sha256().empty()) absl::PrintF("sha256    %s\n", j.sha256());
  if (j.has_calibration()) {
    absl::PrintF("perplexity %.4f\n", j.perplexity());
    if (j.has_plan()) absl::PrintF("plan      %s\n", CalibrationPlanText(j));
  }
  if (!j.waiting().empty()) absl::PrintF("waiting   %s\n", j.waiting());
  if (!j.next_job_id().empty()) absl::PrintF("next      %s (the quantization with this imatrix)\n", j.next_job_id());
  if (!j.error().empty()) absl::PrintF("error     %s\n", j.error());
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
  const bool calibrated = !flags.calibration.empty();
  if (calibrated) roots.push_back(fs::path(Absolute(flags.calibration)).parent_path().string());
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
      address, grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), absl::Seconds(30));
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
    // Calibrating workers read the model where it is, rather than stream
    // a copy into a cache.
    if (calibrated) argv.insert(argv.end(), {"--data-root", fs::path(req->input()).parent_path().string()});
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
    rc = WatchJob(*client, job->id(), flags.json);
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
