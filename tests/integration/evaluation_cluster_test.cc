// Quality measured by the cluster on the trained model of ../shared/models
// (evaluations, and the choice of types for a file size):
// real coordinator and worker processes on loopback, one worker reading
// the models under its --data-root and one streaming them into its cache.
// The report must be the one `quantfleet eval` gives on one machine with
// the workers' thread count (the workers' scored positions are summed in
// chunk order); a quantization
// submitted with --eval must reach its output only within its gate, and
// otherwise be kept as OUT.rejected.gguf with the job failed saying why; a
// quantization submitted with --target-size must be the bytes `quantfleet
// quantize --target-size` writes with the same imatrix and text.
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <thread>

#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

class EvaluationCluster : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    const char* env = std::getenv("QUANTFLEET_SHARED_MODELS");
    const std::string shared = std::string(env != nullptr ? env : QUANTFLEET_DEFAULT_SHARED_MODELS) + "/pystdlib-tiny";
    std::error_code ec;
    fs::copy_file(shared + "/model-f16.gguf", Base(), ec);
    ASSERT_FALSE(ec) << shared << "/model-f16.gguf: " << ec.message();
    fs::copy_file(shared + "/eval.txt", Text(), ec);
    ASSERT_FALSE(ec) << shared << "/eval.txt: " << ec.message();
    fs::copy_file(shared + "/calib.txt", Calibration(), ec);
    ASSERT_FALSE(ec) << shared << "/calib.txt: " << ec.message();
  }

  std::string Base() const { return Out("trained-f16.gguf"); }
  std::string Text() const { return Out("eval.txt"); }
  std::string Calibration() const { return Out("calib.txt"); }
  std::vector<std::string> EvalFlags() const { return {"-f", Text(), "-c", "128", "--chunks", "6"}; }

  // The trained model quantized on one machine.
  std::string Quantized(const std::string& type) {
    const std::string out = Out("trained-" + type + ".gguf");
    ProcessResult r = RunProcess({Bin("quantfleet"), "quantize", Base(), out, type}, absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }

  // `argv` run with its stderr kept aside (in stderr.log): stdout alone.
  ProcessResult Stdout(std::vector<std::string> argv, absl::Duration timeout) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$@\" 2>>" + dir_ + "/stderr.log", "sh"});
    return RunProcess(argv, timeout);
  }

  // `quantfleet eval --json` on this machine: the report alone on stdout.
  // One thread, as the fixture's workers run: OpenBLAS's sums follow its
  // thread count, which moves the fifth digit of a perplexity.
  std::string LocalReport(const std::string& model) {
    std::vector<std::string> argv = {Bin("quantfleet"), "eval", "--base", Base(), "--model", model,
                                     "--json",          "-t",   "1"};
    for (const std::string& f : EvalFlags()) argv.push_back(f);
    ProcessResult r = Stdout(argv, absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output << ReadText(dir_ + "/stderr.log");
    return r.output;
  }

  void StartWorkers() {
    StartWorker("reader", {"--data-root", dir_ + "/models"});
    StartWorker("streamer", {"--cache-dir", dir_ + "/cache"});
  }
};

TEST_F(EvaluationCluster, SameReportAsTheLocalRunAndThePageShowsIt) {
  const std::string q4 = Quantized("Q4_K_M");
  const std::string local = LocalReport(q4);
  ASSERT_NE(local.find("\"kld\""), std::string::npos) << local;
  const int metrics_port = FreeLoopbackPort();
  StartCoordinator(2, {"--metrics-listen", absl::StrFormat("127.0.0.1:%d", metrics_port)});
  StartWorkers();
  std::vector<std::string> argv = {
      Bin("quantfleet"),  "eval",  "--coordinator", address_, "--base", Base(), "--model", q4, "-o",
      Out("report.json"), "--json"};
  for (const std::string& f : EvalFlags()) argv.push_back(f);
  ProcessResult cluster = Stdout(argv, absl::Minutes(3));
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output << ReadText(dir_ + "/stderr.log")
                                  << ReadText(dir_ + "/coordinator.log");
  EXPECT_EQ(cluster.output, local) << "the cluster's report differs from the local run's";
  // The report file the coordinator wrote is the same report.
  EXPECT_EQ(nlohmann::json::parse(ReadText(Out("report.json")), nullptr, false),
            nlohmann::json::parse(local, nullptr, false));
  // Both workers took chunks: one read the models in place, one streamed them.
  EXPECT_FALSE(fs::is_empty(dir_ + "/cache")) << "the streaming worker fetched nothing";

  // The job's record carries the numbers, and the status page shows them.
  const nlohmann::json jobs = nlohmann::json::parse(Cli({"jobs", "--json"}).output, nullptr, false);
  ASSERT_TRUE(jobs.contains("jobs") && jobs["jobs"].size() == 1) << jobs.dump();
  const nlohmann::json& job = jobs["jobs"][0];
  const nlohmann::json want = nlohmann::json::parse(local, nullptr, false);
  EXPECT_EQ(job["report"]["kld"].get<double>(), want["kld"]["value"].get<double>());
  EXPECT_EQ(job["report"]["ppl"].get<double>(), want["ppl"]["value"].get<double>());
  ProcessResult dom = RenderedDom(absl::StrFormat("http://127.0.0.1:%d/", metrics_port), dir_ + "/chromium");
  ASSERT_EQ(dom.exit_code, 0) << "headless Chromium failed (is the chromium package installed?): " << dom.output;
  std::smatch row;
  ASSERT_TRUE(std::regex_search(
      dom.output, row,
      std::regex("<tr class=\"job state-succeeded\" data-job=\"" + job["id"].get<std::string>() + "\">.*?</tr>")))
      << dom.output;
  EXPECT_NE(row.str().find("evaluation"), std::string::npos) << row.str();
  EXPECT_NE(row.str().find(absl::StrFormat("mean KLD %.6f", want["kld"]["value"].get<double>())), std::string::npos)
      << row.str();
}

TEST_F(EvaluationCluster, SubmitEvalDeliversWithinTheGateAndKeepsWhatFailsIt) {
  const std::vector<uint8_t> reference = ReadFile(Quantized("Q3_K_M"));
  ASSERT_FALSE(reference.empty());
  StartCoordinator();
  StartWorkers();
  std::vector<std::string> gate = {"--eval", Text(), "--eval-ctx", "128", "--eval-chunks", "6"};
  // Over the gate: no OUT, the artifact kept as OUT.rejected.gguf.
  std::vector<std::string> strict = {"submit", "--watch", "--force"};
  strict.insert(strict.end(), gate.begin(), gate.end());
  strict.insert(strict.end(), {"--max-kld", "0.000001", Base(), Out("strict.gguf"), "Q3_K_M"});
  ProcessResult rejected = Cli(strict, absl::Minutes(3));
  EXPECT_EQ(rejected.exit_code, 1) << rejected.output;
  EXPECT_NE(rejected.output.find("is over --max-kld 1e-06; the model is kept as " + Out("strict.rejected.gguf")),
            std::string::npos)
      << rejected.output;
  EXPECT_FALSE(fs::exists(Out("strict.gguf")));
  EXPECT_FALSE(fs::exists(Out("strict.unmeasured.gguf")));
  EXPECT_TRUE(ReadFile(Out("strict.rejected.gguf")) == reference) << "the rejected artifact is not the quantization";
  const nlohmann::json report = nlohmann::json::parse(ReadText(Out("strict.eval.json")), nullptr, false);
  ASSERT_TRUE(report.contains("kld")) << ReadText(Out("strict.eval.json"));
  EXPECT_GT(report["kld"]["value"].get<double>(), 0.000001);

  // Within the gate: the same bytes at OUT, and the job chain succeeds.
  std::vector<std::string> lenient = {"submit", "--watch", "--force"};
  lenient.insert(lenient.end(), gate.begin(), gate.end());
  lenient.insert(lenient.end(), {"--max-kld", "1", "--max-ppl-ratio", "1.5", Base(), Out("lenient.gguf"), "Q3_K_M"});
  ProcessResult accepted = Cli(lenient, absl::Minutes(3));
  ASSERT_EQ(accepted.exit_code, 0) << accepted.output;
  EXPECT_TRUE(ReadFile(Out("lenient.gguf")) == reference) << "the delivered artifact is not the quantization";
  EXPECT_FALSE(fs::exists(Out("lenient.unmeasured.gguf")));
  EXPECT_FALSE(fs::exists(Out("lenient.rejected.gguf")));
  EXPECT_NE(accepted.output.find("mean KLD"), std::string::npos) << accepted.output;
}

TEST_F(EvaluationCluster, AWorkerAndTheCoordinatorKilledMidJobChangeNothing) {
  const std::string q4 = Quantized("Q4_K_M");
  const nlohmann::json local = nlohmann::json::parse(LocalReport(q4), nullptr, false);
  ASSERT_TRUE(local.contains("kld"));
  StartCoordinator();
  ChildProcess* doomed = StartWorker("doomed", {"--data-root", dir_ + "/models", "--fault-stall-ms", "600"});
  StartWorker("slow", {"--cache-dir", dir_ + "/cache", "--fault-stall-ms", "600"});
  std::vector<std::string> argv = {
      Bin("quantfleet"), "eval", "--coordinator", address_, "--base", Base(), "--model", q4, "-o", Out("report.json")};
  for (const std::string& f : EvalFlags()) argv.push_back(f);
  auto client = std::make_unique<ChildProcess>(argv, dir_ + "/client.log");  // watching; it dies with the coordinator
  std::string job;
  const int64_t done = WaitForTasksDone(2, &job);
  ASSERT_GE(done, 2);
  ASSERT_LT(done, 6) << "the job finished before the faults";
  doomed->Signal(SIGKILL);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(5));
  StartCoordinator();
  EXPECT_GE(TasksDone(job), done) << "finished chunks must survive the restart";
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_EQ(nlohmann::json::parse(ReadText(Out("report.json")), nullptr, false), local);
  // The record's report covers every chunk, those done before the restart too.
  const nlohmann::json status = Status(job);
  EXPECT_EQ(status["report"]["chunks"].get<int>(), 6) << status.dump();
  EXPECT_EQ(status["report"]["kld"].get<double>(), local["kld"]["value"].get<double>());
}

TEST_F(EvaluationCluster, ModelsNoWorkerCanHoldRunAsAPipelineWithTheLocalReport) {
  const std::string q4 = Quantized("Q4_K_M");
  const std::string local = LocalReport(q4);
  // Each worker may hold two thirds of both models: a pipeline of two stages.
  const uint64_t both = fs::file_size(Base()) + fs::file_size(q4);
  const std::string memory = absl::StrCat(both * 2 / 3);
  StartCoordinator();
  StartWorker("front", {"--data-root", dir_ + "/models", "--memory", memory});
  StartWorker("back", {"--cache-dir", dir_ + "/cache", "--memory", memory});
  std::vector<std::string> argv = {
      Bin("quantfleet"),  "eval",  "--coordinator", address_, "--base", Base(), "--model", q4, "-o",
      Out("report.json"), "--json"};
  for (const std::string& f : EvalFlags()) argv.push_back(f);
  ProcessResult cluster = Stdout(argv, absl::Minutes(3));
  ASSERT_EQ(cluster.exit_code, 0) << cluster.output << ReadText(dir_ + "/stderr.log");
  EXPECT_EQ(cluster.output, local) << "the pipeline's report differs from the local run's";
  const nlohmann::json jobs = nlohmann::json::parse(Cli({"jobs", "--json"}).output, nullptr, false);
  ASSERT_TRUE(jobs.contains("jobs") && jobs["jobs"].size() == 1) << jobs.dump();
  EXPECT_EQ(jobs["jobs"][0]["plan"]["stageEndLayers"].size(), 2u) << jobs.dump();
}

TEST_F(EvaluationCluster, SubmitTargetSizeChoosesTheLocalTypesThenMeasuresTheFile) {
  StartCoordinator();
  StartWorkers();
  // The whole chain: the imatrix, the type choice, the quantization, its evaluation.
  ProcessResult sized = Cli({"submit",
                             "--watch",
                             "--force",
                             "--calibration",
                             Calibration(),
                             "--ctx",
                             "64",
                             "--chunks",
                             "2",
                             "--target-size",
                             "12.5MiB",
                             "--eval",
                             Text(),
                             "--eval-ctx",
                             "128",
                             "--eval-chunks",
                             "4",
                             "--max-kld",
                             "1",
                             Base(),
                             Out("sized.gguf"),
                             "Q4_K_M"},
                            absl::Minutes(4));
  ASSERT_EQ(sized.exit_code, 0) << sized.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_NE(sized.output.find("types chosen for 12.5 MiB: expected KLD"), std::string::npos) << sized.output;
  ASSERT_TRUE(fs::exists(Out("sized.gguf")));
  EXPECT_LE(fs::file_size(Out("sized.gguf")), 12.5 * 1024 * 1024);
  const nlohmann::json choice = nlohmann::json::parse(ReadText(Out("sized.types.json")), nullptr, false);
  ASSERT_TRUE(choice.contains("types")) << ReadText(Out("sized.types.json"));
  EXPECT_EQ(choice["types"].size(), 30u) << choice.dump();  // 4 layers of 7 matrices, embeddings and output
  EXPECT_TRUE(fs::exists(Out("sized.eval.json")));
  // One machine, the same imatrix (by the same path: it is recorded in the
  // file), the same text and the workers' thread count.
  ProcessResult local = RunProcess(
      {Bin("quantfleet"), "quantize", "--threads", "1", "--imatrix", Out("sized.gguf.imatrix.gguf"), "--target-size",
       "12.5MiB", "--calibration", Calibration(), "--ctx", "64", "--chunks", "2", Base(), Out("local.gguf"), "Q4_K_M"},
      absl::Minutes(3));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  EXPECT_TRUE(ReadFile(Out("sized.gguf")) == ReadFile(Out("local.gguf")))
      << "the cluster's sized file differs from `quantfleet quantize --target-size`";
}

TEST_F(EvaluationCluster, BadEvaluationsAndChainsAreRefusedAtSubmitWithTheReason) {
  const std::string q4 = Quantized("Q4_0");
  StartCoordinator();
  auto eval = [&](const std::string& base, const std::string& model, const std::string& text,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"eval", "--base", base, "--model", model, "-f", text, "-o", Out("bad.json")};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  };
  auto expect_refused = [](const ProcessResult& r, const std::string& says) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << "expected '" << says << "' in: " << r.output;
  };
  // Another model's quantization: the fixture's model has other shapes.
  expect_refused(eval(Model(), q4, Text()), "are not the same model");
  // A base outside the coordinator's roots.
  std::error_code ec;
  fs::copy_file(Base(), dir_ + "/outside-f16.gguf", ec);
  expect_refused(eval(dir_ + "/outside-f16.gguf", q4, Text()), "outside-f16.gguf");
  // A text too short for one chunk of the context.
  expect_refused(eval(Base(), q4, Text(), {"-c", "100000"}), "eval.txt");
  // A limit that is no limit.
  expect_refused(eval(Base(), q4, Text(), {"--max-ppl-ratio", "0.5"}), "--max-ppl-ratio '0.5'");
  EXPECT_FALSE(fs::exists(Out("bad.json")));
  // A chain is checked whole before its first job runs: an evaluation text
  // that does not exist fails the submit, not the evaluation hours later.
  ProcessResult chain = Cli({"submit", "--calibration", Calibration(), "--target-size", "12MiB", "--eval",
                             Out("missing.txt"), Base(), Out("chain.gguf"), "Q4_K_M"});
  expect_refused(chain, "missing.txt");
  // A size below what the smallest types allow is refused when the type
  // choice starts, after the imatrix it needs, naming the smallest.
  StartWorkers();
  const nlohmann::json jobs = nlohmann::json::parse(Cli({"jobs", "--json"}).output, nullptr, false);
  EXPECT_TRUE(!jobs.contains("jobs") || jobs["jobs"].empty()) << jobs.dump();
  ProcessResult tiny = Cli({"submit", "--watch", "--calibration", Calibration(), "--ctx", "64", "--chunks", "2",
                            "--target-size", "1MiB", Base(), Out("tiny.gguf"), "Q4_K_M"},
                           absl::Minutes(3));
  expect_refused(tiny, "cannot hold this model");
  EXPECT_FALSE(fs::exists(Out("tiny.gguf")));
}

TEST_F(EvaluationCluster, TheOneShotLocalClusterMeasuresItsArtifactToo) {
  const std::vector<uint8_t> reference = ReadFile(Quantized("Q4_K_M"));
  ProcessResult r = RunProcess({Bin("quantfleet"), "cluster", "--workers", "2", "--eval", Text(), "--eval-ctx", "128",
                                "--eval-chunks", "4", "--max-kld", "1", Base(), Out("one-shot.gguf"), "Q4_K_M"},
                               absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(Out("one-shot.gguf")) == reference) << "not the bytes of quantfleet quantize";
  EXPECT_FALSE(fs::exists(Out("one-shot.unmeasured.gguf")));
  const nlohmann::json report = nlohmann::json::parse(ReadText(Out("one-shot.eval.json")), nullptr, false);
  ASSERT_TRUE(report.contains("kld")) << ReadText(Out("one-shot.eval.json"));
  EXPECT_EQ(report["chunks"].get<int>(), 4);
  EXPECT_GT(report["kld"]["value"].get<double>(), 0);
}

TEST_F(EvaluationCluster, WaitsForAWorkerThatHoldsBothModelsAndSaysSo) {
  const std::string q4 = Quantized("Q4_0");
  StartCoordinator();
  StartWorker("small", {"--data-root", dir_ + "/models", "--memory", "1000000"});
  ProcessResult submitted =
      RunProcess({Bin("quantfleet"), "eval", "--coordinator", address_, "--base", Base(), "--model", q4, "-o",
                  Out("waiting.json"), "-f", Text(), "-c", "128", "--chunks", "2"},
                 absl::Seconds(3));
  // The command waits with the job; the job says what it waits for.
  const std::string job = OnlyJob();
  ASSERT_FALSE(job.empty());
  std::string waiting;
  for (int i = 0; i < 100 && waiting.empty(); ++i) {
    waiting = Status(job).value("waiting", "");
    if (waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(waiting.find("waiting for workers that can hold both models"), std::string::npos) << waiting;
  // A worker that can hold them finishes it.
  StartWorker("big", {"--data-root", dir_ + "/models"});
  ProcessResult watched = Cli({"watch", job}, absl::Minutes(2));
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_TRUE(fs::exists(Out("waiting.json")));
}

}  // namespace
}  // namespace quantfleet
