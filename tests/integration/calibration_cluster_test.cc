// Importance matrices computed by the cluster: real coordinator and worker
// processes on loopback, workers reading the model under --data-root or
// streaming it once into their cache. The
// file must be the bytes `quantfleet imatrix` writes on one machine (chunk
// statistics are added in chunk order whoever computed them), whatever the
// number of workers and whatever happens to them; a calibrated job's
// artifact must be the bytes `quantfleet quantize --imatrix` gives with
// that file.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

class CalibrationCluster : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_TRUE(WriteTestVocab(dir_ + "/vocab.gguf").ok());
    ASSERT_TRUE(WriteTestModel(CalibratedSpec(), Calibrated()).ok());
    std::ofstream text(Text());
    for (int i = 0; i < 40; ++i) text << "pack my box with five dozen liquor jugs and the quick brown fox ";
  }

  // A small F16 model with the test vocabulary, without outliers.
  TestModelSpec CalibratedSpec() const {
    TestModelSpec spec;
    spec.n_layer = 2;
    spec.n_embd = 128;
    spec.n_ff = 320;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.type = GgmlType::kF16;
    spec.outliers = false;
    spec.zero_rows = false;
    spec.vocab_from = dir_ + "/vocab.gguf";
    return spec;
  }

  std::string Calibrated() const { return Out("calibrated-f16.gguf"); }
  std::string Text() const { return Out("calibration.txt"); }

  // The one-machine file, with the same (absolute) paths as the cluster's.
  std::vector<uint8_t> LocalImatrix() {
    ProcessResult r = RunProcess({Bin("quantfleet"), "imatrix", "-m", Calibrated(), "-f", Text(), "-o",
                                  Out("local.imatrix.gguf"), "-c", "64", "--chunks", "8"},
                                 absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const size_t at = r.output.find("PPL = ");
    if (at != std::string::npos) local_perplexity_ = r.output.substr(at + 6, r.output.find(' ', at + 6) - at - 6);
    return ReadFile(Out("local.imatrix.gguf"));
  }

  std::string local_perplexity_;

  ProcessResult ClusterImatrix(const std::string& out) { return ClusterImatrixOf(Calibrated(), out); }
  ProcessResult ClusterImatrixOf(const std::string& model, const std::string& out) {
    return Cli({"imatrix", "-m", model, "-f", Text(), "-o", out, "-c", "64", "--chunks", "8"}, absl::Minutes(3));
  }

  ChildProcess* StartDataWorker(const std::string& name, std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--data-root", dir_ + "/models"});
    return StartWorker(name, extra);
  }

  // Four layers, so that workers holding part of it form a pipeline.
  std::string Deep() const { return Out("deep-f16.gguf"); }
  std::vector<uint8_t> DeepLocalImatrix() {
    TestModelSpec spec = CalibratedSpec();
    spec.n_layer = 4;
    EXPECT_TRUE(WriteTestModel(spec, Deep()).ok());
    ProcessResult r = RunProcess({Bin("quantfleet"), "imatrix", "-m", Deep(), "-f", Text(), "-o",
                                  Out("deep-local.imatrix.gguf"), "-c", "64", "--chunks", "8"},
                                 absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const size_t at = r.output.find("PPL = ");
    if (at != std::string::npos) local_perplexity_ = r.output.substr(at + 6, r.output.find(' ', at + 6) - at - 6);
    return ReadFile(Out("deep-local.imatrix.gguf"));
  }
  // --memory for a worker that may hold `share` of the deep model.
  std::vector<std::string> Holding(double share) const {
    return {"--memory", std::to_string(static_cast<uint64_t>(static_cast<double>(fs::file_size(Deep())) * share))};
  }
  std::vector<int> StageEnds(const std::string& job) {
    const nlohmann::json j = Status(job);
    std::vector<int> ends;
    if (j.is_object() && j.contains("plan") && j["plan"].contains("stageEndLayers")) {
      for (const nlohmann::json& e : j["plan"]["stageEndLayers"]) ends.push_back(e.get<int>());
    }
    return ends;
  }
};

TEST_F(CalibrationCluster, SameBytesAsTheLocalRunWithOneOrThreeWorkers) {
  const std::vector<uint8_t> local = LocalImatrix();
  ASSERT_FALSE(local.empty());
  StartCoordinator();
  StartDataWorker("w1");
  ProcessResult one = ClusterImatrix(Out("one.imatrix.gguf"));
  ASSERT_EQ(one.exit_code, 0) << one.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("one.imatrix.gguf")) == local) << "1 worker: not the local bytes";
  StartDataWorker("w2");
  StartDataWorker("w3");
  ProcessResult three = ClusterImatrix(Out("three.imatrix.gguf"));
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_TRUE(ReadFile(Out("three.imatrix.gguf")) == local) << "3 workers: not the local bytes";
  // watch shows the chunks and the running perplexity; the final one is the local run's.
  EXPECT_NE(three.output.find("calibration chunks 8/8  perplexity "), std::string::npos) << three.output;
  ASSERT_FALSE(local_perplexity_.empty());
  EXPECT_NE(three.output.find("perplexity of the calibration text: " + local_perplexity_), std::string::npos)
      << three.output << "\nlocal: " << local_perplexity_;
}

// A worker's chunk runs its products over all its threads: the sums must
// not depend on how many (the one-machine run gives each chunk one).
TEST_F(CalibrationCluster, AWorkerOnSeveralThreadsGivesTheLocalBytes) {
  const std::vector<uint8_t> local = LocalImatrix();
  ASSERT_FALSE(local.empty());
  StartCoordinator();
  StartDataWorker("wide", {"--threads", "3"});
  ProcessResult r = ClusterImatrix(Out("wide.imatrix.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("wide.imatrix.gguf")) == local) << "a worker on 3 threads: not the local bytes";
}

TEST_F(CalibrationCluster, AWorkerKilledMidChunkChangesNothing) {
  const std::vector<uint8_t> local = LocalImatrix();
  StartCoordinator();
  ChildProcess* doomed = StartDataWorker("doomed", {"--fault-stall-ms", "3000"});
  std::thread killer([doomed] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // it holds a chunk, stalled
    doomed->Signal(SIGKILL);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  StartDataWorker("survivor");
  ProcessResult r = ClusterImatrix(Out("cluster.imatrix.gguf"));
  killer.join();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(Out("cluster.imatrix.gguf")) == local);
}

TEST_F(CalibrationCluster, CoordinatorKilledAndRestartedKeepsFinishedChunksAndTheJobCarriesOn) {
  const std::vector<uint8_t> local = LocalImatrix();
  StartCoordinator();
  StartDataWorker("w1", {"--fault-stall-ms", "150"});
  StartDataWorker("w2", {"--fault-stall-ms", "150"});
  ProcessResult submitted = Cli({"submit", "--json", "--calibration", Text(), "--ctx", "64", "--chunks", "8",
                                 Calibrated(), Out("unused.gguf"), "Q8_0"},
                                absl::Seconds(2));  // the client watches; cut it short
  (void)submitted;
  std::string job;
  const int64_t done = WaitForTasksDone(3, &job);
  ASSERT_GE(done, 3);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(5));
  StartCoordinator();
  EXPECT_GE(TasksDone(job), done) << "finished chunks must survive the restart";
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("unused.gguf.imatrix.gguf")) == local);
  // The client is long gone: the coordinator starts the quantization itself.
  std::string next;
  for (int i = 0; i < 100 && next.empty(); ++i) {
    const nlohmann::json j = Status(job);
    if (j.is_object() && j.contains("nextJobId")) next = j["nextJobId"].get<std::string>();
    if (next.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(next.empty()) << "no quantization after the calibration";
  ProcessResult q = Cli({"watch", next}, absl::Minutes(3));
  ASSERT_EQ(q.exit_code, 0) << q.output;
  ProcessResult ref = RunProcess({Bin("quantfleet"), "quantize", "--imatrix", Out("unused.gguf.imatrix.gguf"),
                                  Calibrated(), Out("reference-Q8_0.gguf"), "Q8_0"},
                                 absl::Minutes(2));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  EXPECT_TRUE(ReadFile(Out("unused.gguf")) == ReadFile(Out("reference-Q8_0.gguf")));
}

TEST_F(CalibrationCluster, CalibratedJobQuantizesWithTheImatrixItComputed) {
  const std::vector<uint8_t> local = LocalImatrix();
  StartCoordinator();
  StartDataWorker("w1");
  StartDataWorker("w2");
  ProcessResult r = Cli({"submit", "--watch", "--calibration", Text(), "--ctx", "64", "--chunks", "8", Calibrated(),
                         Out("calibrated-Q4_K_M.gguf"), "Q4_K_M"},
                        absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string imatrix = Out("calibrated-Q4_K_M.gguf.imatrix.gguf");
  EXPECT_TRUE(ReadFile(imatrix) == local) << "the imatrix beside the artifact is not the local one";
  ProcessResult ref = RunProcess(
      {Bin("quantfleet"), "quantize", "--imatrix", imatrix, Calibrated(), Out("reference-Q4_K_M.gguf"), "Q4_K_M"},
      absl::Minutes(2));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  EXPECT_TRUE(ReadFile(Out("calibrated-Q4_K_M.gguf")) == ReadFile(Out("reference-Q4_K_M.gguf")));
  ProcessResult inspect = RunProcess({Bin("quantfleet"), "inspect", Out("calibrated-Q4_K_M.gguf")}, absl::Minutes(1));
  EXPECT_NE(inspect.output.find(imatrix), std::string::npos) << "quantize.imatrix.file should hold " << imatrix;
}

// `quantfleet cluster --calibration`: a coordinator and workers on this
// machine compute the importance matrix, then quantize with it, and stop.
TEST_F(CalibrationCluster, TheOneShotLocalClusterCalibratesToo) {
  const std::vector<uint8_t> local = LocalImatrix();
  ProcessResult r = RunProcess({Bin("quantfleet"), "cluster", "--workers", "2", "--calibration", Text(), "--ctx", "64",
                                "--chunks", "8", Calibrated(), Out("one-shot-Q4_K_M.gguf"), "Q4_K_M"},
                               absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(Out("one-shot-Q4_K_M.gguf.imatrix.gguf")) == local);
  ProcessResult ref = RunProcess({Bin("quantfleet"), "quantize", "--imatrix", Out("one-shot-Q4_K_M.gguf.imatrix.gguf"),
                                  Calibrated(), Out("one-shot-reference.gguf"), "Q4_K_M"},
                                 absl::Minutes(2));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  EXPECT_TRUE(ReadFile(Out("one-shot-Q4_K_M.gguf")) == ReadFile(Out("one-shot-reference.gguf")));
}

TEST_F(CalibrationCluster, AWorkerWithoutTheModelStreamsItOnceIntoItsCache) {
  const std::vector<uint8_t> local = LocalImatrix();
  StartCoordinator();
  StartWorker("remote", {"--cache-dir", dir_ + "/cache"});  // no --data-root
  ProcessResult first = ClusterImatrix(Out("first.imatrix.gguf"));
  ASSERT_EQ(first.exit_code, 0) << first.output << ReadText(dir_ + "/worker-remote.log");
  EXPECT_TRUE(ReadFile(Out("first.imatrix.gguf")) == local);
  ProcessResult second = ClusterImatrix(Out("second.imatrix.gguf"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_TRUE(ReadFile(Out("second.imatrix.gguf")) == local);
  const std::string log = ReadText(dir_ + "/worker-remote.log");
  size_t streams = 0;
  for (size_t at = log.find("streaming"); at != std::string::npos; at = log.find("streaming", at + 1)) ++streams;
  EXPECT_EQ(streams, 1u) << "the cached model should serve the second job\n" << log;
  size_t cached = 0;
  for (const auto& entry : fs::directory_iterator(dir_ + "/cache")) {
    cached += entry.path().extension() == ".gguf" && fs::file_size(entry.path()) == fs::file_size(Calibrated());
  }
  EXPECT_EQ(cached, 1u);
}

TEST_F(CalibrationCluster, AMixtureOfExpertsStreamedToTwoWorkersGivesTheLocalBytes) {
  TestModelSpec spec = CalibratedSpec();
  spec.n_ff = 256;
  spec.n_expert = 4;
  const std::string moe = Out("moe-f16.gguf");
  ASSERT_TRUE(WriteTestModel(spec, moe).ok());
  ProcessResult local = RunProcess({Bin("quantfleet"), "imatrix", "-m", moe, "-f", Text(), "-o",
                                    Out("moe-local.imatrix.gguf"), "-c", "64", "--chunks", "6"},
                                   absl::Minutes(2));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  StartCoordinator();
  StartWorker("a", {"--cache-dir", dir_ + "/cache-a"});
  StartWorker("b", {"--cache-dir", dir_ + "/cache-b"});
  ProcessResult r =
      Cli({"imatrix", "-m", moe, "-f", Text(), "-o", Out("moe-cluster.imatrix.gguf"), "-c", "64", "--chunks", "6"},
          absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ReadFile(Out("moe-cluster.imatrix.gguf")) == ReadFile(Out("moe-local.imatrix.gguf")));
}

TEST_F(CalibrationCluster, ASplitModelIsStreamedPartByPartAndGivesTheLocalBytes) {
  TestModelSpec spec = CalibratedSpec();
  spec.n_split = 3;
  const std::string split = Out("split-00001-of-00003.gguf");
  ASSERT_TRUE(WriteTestModel(spec, split).ok());
  ProcessResult local = RunProcess({Bin("quantfleet"), "imatrix", "-m", split, "-f", Text(), "-o",
                                    Out("split-local.imatrix.gguf"), "-c", "64", "--chunks", "8"},
                                   absl::Minutes(2));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  StartCoordinator();
  StartWorker("remote", {"--cache-dir", dir_ + "/cache"});  // no --data-root
  ProcessResult r = ClusterImatrixOf(split, Out("split-cluster.imatrix.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.output << ReadText(dir_ + "/worker-remote.log");
  EXPECT_TRUE(ReadFile(Out("split-cluster.imatrix.gguf")) == ReadFile(Out("split-local.imatrix.gguf")));
  // The three parts sit side by side in one folder of the cache, whole.
  std::map<std::string, uintmax_t> cached;
  for (const auto& entry : fs::recursive_directory_iterator(dir_ + "/cache")) {
    if (entry.is_regular_file()) cached[entry.path().filename().string()] = fs::file_size(entry.path());
  }
  ASSERT_EQ(cached.size(), 3u);
  for (int i = 1; i <= 3; ++i) {
    const std::string name = absl::StrFormat("split-%05d-of-00003.gguf", i);
    EXPECT_EQ(cached[name], fs::file_size(Out(name))) << name;
  }
}

// A GPU calibration never falls back to the CPU workers: the job waits for
// GPU workers and says so; --gpu without --calibration is refused.
TEST_F(CalibrationCluster, AGpuCalibrationWaitsForGpuWorkers) {
  StartCoordinator();
  StartDataWorker("cpu-only", {"--gpu", "none"});
  WaitForAliveWorkers(1);
  ProcessResult plain = Cli({"submit", "--gpu", "auto", Calibrated(), Out("plain.gguf"), "Q8_0"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.output.find("--gpu auto goes with --calibration"), std::string::npos) << plain.output;
  ProcessResult submitted = Cli({"submit", "--calibration", Text(), "--ctx", "64", "--chunks", "8", "--gpu", "auto",
                                 Calibrated(), Out("gpu.gguf"), "Q8_0"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job = OnlyJob();
  ASSERT_FALSE(job.empty());
  std::string waiting;
  for (int i = 0; i < 100 && waiting.empty(); ++i) {
    const nlohmann::json j = Status(job);
    if (j.is_object() && j.contains("waiting")) waiting = j["waiting"].get<std::string>();
    if (waiting.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(waiting.find("the 0 live GPU workers' memory"), std::string::npos) << waiting;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(TasksDone(job), 0) << "a CPU worker took a GPU job's chunk";
  EXPECT_EQ(Cli({"cancel", job}).exit_code, 0);
}

TEST_F(CalibrationCluster, AnUnwritableCacheFailsTheJobWithTheReason) {
  StartCoordinator(2, {"--max-attempts", "2"});
  StartWorker("blind", {"--cache-dir", "/proc/quantfleet-cache"});
  ProcessResult r = ClusterImatrix(Out("never.imatrix.gguf"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write the model cache"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(Out("never.imatrix.gguf")));
}

TEST_F(CalibrationCluster, BadCalibrationRequestsAreRefusedAtSubmit) {
  StartCoordinator();
  // The fixture's quantization model has no tokenizer.
  ProcessResult no_vocab = Cli({"imatrix", "-m", Model(), "-f", Text(), "-o", Out("a.imatrix.gguf")});
  EXPECT_EQ(no_vocab.exit_code, 1);
  EXPECT_NE(no_vocab.output.find("tokenizer.ggml.model is missing"), std::string::npos) << no_vocab.output;
  // A text outside the coordinator's roots.
  std::ofstream(dir_ + "/outside.txt") << "text";
  ProcessResult outside =
      Cli({"imatrix", "-m", Calibrated(), "-f", dir_ + "/outside.txt", "-o", Out("b.imatrix.gguf")});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.output.find("outside.txt"), std::string::npos) << outside.output;
  // Too short for the context.
  ProcessResult short_text =
      Cli({"imatrix", "-m", Calibrated(), "-f", Text(), "-o", Out("c.imatrix.gguf"), "-c", "4096"});
  EXPECT_EQ(short_text.exit_code, 1);
  EXPECT_NE(short_text.output.find("needs at least 8192"), std::string::npos) << short_text.output;
  for (const char* f : {"a.imatrix.gguf", "b.imatrix.gguf", "c.imatrix.gguf"}) EXPECT_FALSE(fs::exists(Out(f)));
}

TEST_F(CalibrationCluster, AModelNoWorkerCanHoldRunsAsAPipelineWithTheLocalBytes) {
  const std::vector<uint8_t> local = DeepLocalImatrix();
  ASSERT_FALSE(local.empty());
  StartCoordinator();
  StartDataWorker("s1", Holding(0.6));
  // One worker cannot hold the model: the job waits and says why.
  ProcessResult two;
  std::thread client([&] { two = ClusterImatrixOf(Deep(), Out("two.imatrix.gguf")); });
  std::string job, waiting;
  for (int i = 0; i < 200 && waiting.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (job.empty()) job = OnlyJob();
    const nlohmann::json j = job.empty() ? nlohmann::json() : Status(job);
    if (j.is_object() && j.contains("waiting")) waiting = j["waiting"].get<std::string>();
  }
  EXPECT_NE(waiting.find("waiting for workers that can hold the model"), std::string::npos) << waiting;
  EXPECT_EQ(TasksDone(job), 0);
  StartDataWorker("s2", Holding(0.6));
  client.join();
  ASSERT_EQ(two.exit_code, 0) << two.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_EQ(StageEnds(job), (std::vector<int>{2, 4})) << "two equal workers split the four layers evenly";
  EXPECT_TRUE(ReadFile(Out("two.imatrix.gguf")) == local) << "2 stages: not the local bytes";
  EXPECT_NE(two.output.find("pipeline of 2 stages (layers 0-1, 2-3)"), std::string::npos) << two.output;
  ASSERT_FALSE(local_perplexity_.empty());
  EXPECT_NE(two.output.find("perplexity of the calibration text: " + local_perplexity_), std::string::npos)
      << two.output << "\nlocal: " << local_perplexity_;
  // Three workers: three stages, the same bytes.
  StartDataWorker("s3", Holding(0.6));
  WaitForAliveWorkers(3);
  ProcessResult three = ClusterImatrixOf(Deep(), Out("three.imatrix.gguf"));
  ASSERT_EQ(three.exit_code, 0) << three.output;
  EXPECT_NE(three.output.find("pipeline of 3 stages"), std::string::npos) << three.output;
  EXPECT_TRUE(ReadFile(Out("three.imatrix.gguf")) == local) << "3 stages: not the local bytes";
}

TEST_F(CalibrationCluster, APipelinedCalibratedJobQuantizesEachLayerFirstWhereItWasHeld) {
  const std::vector<uint8_t> local = DeepLocalImatrix();
  StartCoordinator();
  StartDataWorker("s1", Holding(0.6));
  StartDataWorker("s2", Holding(0.6));
  WaitForAliveWorkers(2);
  ProcessResult r = Cli({"submit", "--watch", "--calibration", Text(), "--ctx", "64", "--chunks", "8", Deep(),
                         Out("deep-Q4_K_M.gguf"), "Q4_K_M"},
                        absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string imatrix = Out("deep-Q4_K_M.gguf.imatrix.gguf");
  EXPECT_TRUE(ReadFile(imatrix) == local) << "the pipeline's imatrix is not the local one";
  ProcessResult ref = RunProcess(
      {Bin("quantfleet"), "quantize", "--imatrix", imatrix, Deep(), Out("reference-deep-Q4_K_M.gguf"), "Q4_K_M"},
      absl::Minutes(2));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  EXPECT_TRUE(ReadFile(Out("deep-Q4_K_M.gguf")) == ReadFile(Out("reference-deep-Q4_K_M.gguf")));
  // The quantization knows which worker held which layer: two each.
  const nlohmann::json jobs = nlohmann::json::parse(Cli({"jobs", "--json"}).output, nullptr, false);
  ASSERT_TRUE(jobs.is_object() && jobs.contains("jobs"));
  std::vector<std::string> holders;
  for (const nlohmann::json& j : jobs["jobs"]) {
    if (!j.contains("layerWorkers")) continue;
    for (const nlohmann::json& n : j["layerWorkers"]) holders.push_back(n.get<std::string>());
  }
  ASSERT_EQ(holders.size(), 4u) << jobs.dump();
  EXPECT_EQ(holders[0], holders[1]);
  EXPECT_EQ(holders[2], holders[3]);
  EXPECT_NE(holders[1], holders[2]);
  for (const std::string& h : holders) EXPECT_TRUE(h == "s1" || h == "s2") << h;
}

TEST_F(CalibrationCluster, APipelineSurvivesLosingAStageWorkerAndTheCoordinator) {
  const std::vector<uint8_t> local = DeepLocalImatrix();
  StartCoordinator();
  std::vector<std::string> slow = Holding(0.6);
  slow.insert(slow.end(), {"--fault-stall-ms", "300"});
  StartDataWorker("s1", Holding(0.6));
  ChildProcess* doomed = StartDataWorker("s2", slow);
  WaitForAliveWorkers(2);
  ProcessResult submitted = Cli({"submit", "--json", "--calibration", Text(), "--ctx", "64", "--chunks", "8", Deep(),
                                 Out("deep-Q8_0.gguf"), "Q8_0"},
                                absl::Seconds(2));
  (void)submitted;
  std::string job;
  const int64_t done = WaitForTasksDone(4, &job);
  ASSERT_GE(done, 4) << ReadText(dir_ + "/coordinator.log");
  ASSERT_EQ(StageEnds(job).size(), 2u);
  // A stage's worker dies; then the coordinator. A new process takes the
  // stage over, and the restarted coordinator keeps the plan and the
  // finished stages.
  doomed->Signal(SIGKILL);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(5));
  StartCoordinator();
  EXPECT_GE(TasksDone(job), done - 2) << "finished stages must survive the restart (all but the unsynced)";
  EXPECT_EQ(StageEnds(job), (std::vector<int>{2, 4}));
  // s1 holds one stage again; nobody can take the other, and the job says so.
  const std::string waiting = WaitForField(job, "waiting", "waits for a worker", 100);
  EXPECT_NE(waiting.find("waits for a worker that can hold it"), std::string::npos) << waiting;
  // Progress per stage: the first stage is never behind the second.
  const nlohmann::json now = Status(job);
  ASSERT_TRUE(now.is_object() && now.contains("stageChunksDone")) << now.dump();
  std::vector<int64_t> per_stage;
  for (const nlohmann::json& v : now["stageChunksDone"]) {
    per_stage.push_back(v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>());
  }
  ASSERT_EQ(per_stage.size(), 2u);
  EXPECT_GE(per_stage[0], per_stage[1]);
  EXPECT_GE(per_stage[0] + per_stage[1], done - 2);
  StartDataWorker("s2", Holding(0.6));
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("deep-Q8_0.gguf.imatrix.gguf")) == local);
}

}  // namespace
}  // namespace quantfleet
