// GPTQ and AWQ on the cluster (`submit --method`): real coordinator and
// worker processes on loopback. The artifact must be the bytes `quantfleet
// quantize --method` writes on one machine, whatever the number of
// workers, their threads, and what happens to them or to the coordinator
// while a layer is in flight.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

class LayerwiseCluster : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    ASSERT_TRUE(WriteTestVocab(dir_ + "/vocab.gguf").ok());
    ASSERT_TRUE(WriteTestModel(Spec(4, 512, 0), Calibrated()).ok());
    std::ofstream text(Text());
    for (int i = 0; i < 40; ++i) text << "pack my box with five dozen liquor jugs and the quick brown fox ";
  }

  // An F16 model with the test vocabulary, 256 wide (whole Q4_K blocks).
  TestModelSpec Spec(int n_layer, int n_ff, int n_expert) const {
    TestModelSpec spec;
    spec.n_layer = n_layer;
    spec.n_embd = 256;
    spec.n_ff = n_ff;
    spec.n_head = 4;
    spec.n_head_kv = 2;
    spec.n_expert = n_expert;
    spec.type = GgmlType::kF16;
    spec.outliers = false;
    spec.zero_rows = false;
    spec.vocab_from = dir_ + "/vocab.gguf";
    return spec;
  }

  std::string Calibrated() const { return Out("calibrated-f16.gguf"); }
  std::string Text() const { return Out("calibration.txt"); }

  // What `quantize --method` writes on one machine, on two threads (the
  // workers run one each).
  std::vector<uint8_t> Local(const std::string& method, const std::string& type) {
    const std::string out = Out("local-" + method + "-" + type + ".gguf");
    ProcessResult r = RunProcess({Bin("quantfleet"), "quantize", "--method", method, "--calibration", Text(),
                                  "--chunks", "4", "--ctx", "64", Calibrated(), out, type, "2"},
                                 absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return ReadFile(out);
  }

  std::vector<std::string> SubmitArgs(const std::string& method, const std::string& out, const std::string& type) {
    return {"submit", "--force", "--method", method,       "--calibration", Text(), "--chunks",
            "4",      "--ctx",   "64",       Calibrated(), Out(out),        type};
  }
};

TEST_F(LayerwiseCluster, EachMethodOnTwoWorkersGivesTheLocalBytesAndWatchCountsTheLayers) {
  StartCoordinator();
  StartWorker("w1", {"--data-root", dir_ + "/models"});
  StartWorker("w2", {"--cache-dir", dir_ + "/cache"});  // streams the model once
  for (const std::string method : {"gptq", "awq", "awq+gptq"}) {
    const std::vector<uint8_t> local = Local(method, "Q4_K_M");
    ASSERT_FALSE(local.empty());
    std::vector<std::string> args = SubmitArgs(method, "cluster-" + method + ".gguf", "Q4_K_M");
    args.insert(args.begin() + 1, "--watch");
    ProcessResult r = Cli(args, absl::Minutes(3));
    ASSERT_EQ(r.exit_code, 0) << r.output << ReadText(dir_ + "/coordinator.log");
    EXPECT_TRUE(ReadFile(Out("cluster-" + method + ".gguf")) == local) << method << ": not the local bytes";
    EXPECT_NE(r.output.find(method + ": layers 4/4 solved"), std::string::npos) << r.output;
  }
  // A layer mostly runs where the one before it ran, from the activations
  // that worker kept.
  const std::string logs = ReadText(dir_ + "/worker-w1.log") + ReadText(dir_ + "/worker-w2.log");
  EXPECT_NE(logs.find("starts from the activations this worker kept"), std::string::npos) << logs;
  // Rounding to nearest on one machine is another file: the method ran.
  ASSERT_EQ(
      RunProcess({Bin("quantfleet"), "quantize", Calibrated(), Out("rtn.gguf"), "Q4_K_M"}, absl::Minutes(1)).exit_code,
      0);
  EXPECT_FALSE(ReadFile(Out("rtn.gguf")) == ReadFile(Out("cluster-gptq.gguf")));
}

TEST_F(LayerwiseCluster, AWorkerKilledWhileSolvingALayerAndTheCoordinatorRestartedChangeNothing) {
  const std::vector<uint8_t> local = Local("awq+gptq", "Q4_K_M");
  ASSERT_FALSE(local.empty());
  StartCoordinator();
  // The first worker takes layer 0 first (layers go before row tasks) and
  // stalls on it; it is killed holding it.
  ChildProcess* doomed = StartWorker("doomed", {"--data-root", dir_ + "/models", "--fault-stall-ms", "4000"});
  WaitForAliveWorkers(1);
  ProcessResult submitted = Cli(SubmitArgs("awq+gptq", "cluster.gguf", "Q4_K_M"));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  std::string job = OnlyJob();
  ASSERT_FALSE(job.empty());
  // Its heartbeats say where it is with the layer; status shows it.
  const std::string progress = WaitForField(job, "layerProgress", "activations out", 60);
  EXPECT_NE(progress.find("layer 1 of 4 on doomed"), std::string::npos) << progress;
  EXPECT_NE(progress.find(": activations out: chunk 4 of 4"), std::string::npos) << progress;
  EXPECT_EQ(Int64Field(job, "layersDone"), 0);
  doomed->Signal(SIGKILL);
  StartWorker("s1", {"--data-root", dir_ + "/models", "--fault-stall-ms", "200"});
  // Once two layers are durable the coordinator is killed, and restarted.
  int64_t layers = 0;
  for (int i = 0; i < 600 && layers < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    layers = Int64Field(job, "layersDone");
  }
  ASSERT_GE(layers, 2) << ReadText(dir_ + "/coordinator.log");
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(5));
  StartCoordinator();
  EXPECT_GE(Int64Field(job, "layersDone"), 1) << "durable layers must survive the restart";
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("cluster.gguf")) == local) << "not the local bytes after the faults";
  EXPECT_FALSE(fs::exists(Out("cluster.gguf") + ".quantfleet-" + job + ".part")) << "the partial file stayed";
}

TEST_F(LayerwiseCluster, AWorkerStoppedPastItsLeaseLosesTheLayerAndItsLateResultIsRefused) {
  const std::vector<uint8_t> local = Local("gptq", "Q4_K_M");
  StartCoordinator();
  ChildProcess* paused = StartWorker("paused", {"--data-root", dir_ + "/models", "--fault-stall-ms", "1500"});
  WaitForAliveWorkers(1);
  ProcessResult submitted = Cli(SubmitArgs("gptq", "cluster.gguf", "Q4_K_M"));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job = OnlyJob();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  paused->Signal(SIGSTOP);  // holding layer 0, past its 2 s lease
  StartWorker("s1", {"--data-root", dir_ + "/models"});
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  paused->Signal(SIGCONT);  // its upload comes late, under a lease it lost
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("cluster.gguf")) == local);
  const std::string log = ReadText(dir_ + "/worker-paused.log");
  EXPECT_TRUE(log.find("drop its task") != std::string::npos || log.find("taken away") != std::string::npos)
      << "the late result was not refused:\n"
      << log;
}

TEST_F(LayerwiseCluster, AMixtureOfExpertsWithAnImatrixGivesTheLocalBytes) {
  const std::string moe = Out("moe-f16.gguf");
  ASSERT_TRUE(WriteTestModel(Spec(2, 256, 4), moe).ok());
  // The experts' importance weights travel with each layer's task.
  ASSERT_EQ(RunProcess({Bin("quantfleet"), "imatrix", "-m", moe, "-f", Text(), "-o", Out("moe.imatrix.gguf"), "-c",
                        "64", "--chunks", "4"},
                       absl::Minutes(2))
                .exit_code,
            0);
  ProcessResult local =
      RunProcess({Bin("quantfleet"), "quantize", "--method", "awq+gptq", "--imatrix", Out("moe.imatrix.gguf"),
                  "--calibration", Text(), "--chunks", "4", "--ctx", "64", moe, Out("moe-local.gguf"), "Q4_K_M", "2"},
                 absl::Minutes(2));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  StartCoordinator();
  StartWorker("a", {"--cache-dir", dir_ + "/cache-a"});
  StartWorker("b", {"--cache-dir", dir_ + "/cache-b"});
  ProcessResult r =
      Cli({"submit", "--watch", "--method", "awq+gptq", "--imatrix", Out("moe.imatrix.gguf"), "--calibration", Text(),
           "--chunks", "4", "--ctx", "64", moe, Out("moe-cluster.gguf"), "Q4_K_M"},
          absl::Minutes(3));
  ASSERT_EQ(r.exit_code, 0) << r.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("moe-cluster.gguf")) == ReadFile(Out("moe-local.gguf")));
  EXPECT_NE(r.output.find("awq+gptq: layers 2/2 solved"), std::string::npos) << r.output;
}

TEST_F(LayerwiseCluster, ALayerGoesOnlyToAWorkerWhoseMemoryHoldsItAndTheJobSaysSoMeanwhile) {
  const std::vector<uint8_t> local = Local("gptq", "Q4_K_M");
  StartCoordinator();
  // 1 MiB: less than a layer's Hessians; it quantizes the other tensors.
  StartWorker("small", {"--data-root", dir_ + "/models", "--memory", "1MiB"});
  WaitForAliveWorkers(1);
  ProcessResult submitted = Cli(SubmitArgs("gptq", "cluster.gguf", "Q4_K_M"));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string job = OnlyJob();
  const std::string waiting = WaitForField(job, "waiting", "wait for a worker that can hold one");
  EXPECT_NE(waiting.find("wait for a worker that can hold one (--memory)"), std::string::npos) << waiting;
  EXPECT_EQ(Int64Field(job, "layersDone"), 0);
  StartWorker("large", {"--data-root", dir_ + "/models"});
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  EXPECT_TRUE(ReadFile(Out("cluster.gguf")) == local);
  EXPECT_TRUE(Status(job).value("waiting", "").empty());
}

TEST_F(LayerwiseCluster, BadRequestsAreRefusedAtSubmitSayingWhy) {
  StartCoordinator();
  ProcessResult no_text = Cli({"submit", "--method", "gptq", Calibrated(), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(no_text.exit_code, 1);
  EXPECT_NE(no_text.output.find("--method gptq needs --calibration TEXT"), std::string::npos) << no_text.output;
  ProcessResult damp = Cli(
      {"submit", "--method", "awq", "--damp", "0.1", "--calibration", Text(), Calibrated(), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(damp.exit_code, 1);
  EXPECT_NE(damp.output.find("--damp is GPTQ's"), std::string::npos) << damp.output;
  ProcessResult gpu = Cli(
      {"submit", "--method", "gptq", "--gpu", "auto", "--calibration", Text(), Calibrated(), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(gpu.exit_code, 1);
  EXPECT_NE(gpu.output.find("runs on the workers' CPUs for now"), std::string::npos) << gpu.output;
  ProcessResult format = Cli(
      {"submit", "--method", "gptq", "--format", "gptq", "--calibration", Text(), Calibrated(), Out("x"), "Q4_K_M"});
  EXPECT_EQ(format.exit_code, 1);
  EXPECT_NE(format.output.find("writes a checkpoint folder on one machine for now"), std::string::npos)
      << format.output;
  // A text outside the coordinator's roots, and one that does not exist.
  ProcessResult outside =
      Cli({"submit", "--method", "gptq", "--calibration", "/etc/hostname", Calibrated(), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.output.find("/etc/hostname"), std::string::npos) << outside.output;
  ProcessResult missing =
      Cli({"submit", "--method", "gptq", "--calibration", Out("missing.txt"), Calibrated(), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("missing.txt"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(Out("x.gguf")));
}

}  // namespace
}  // namespace quantfleet
