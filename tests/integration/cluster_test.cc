// The cluster as it runs: a real coordinator process and real worker
// processes on loopback, driven with the quantfleet command. Whatever
// happens to the processes, the artifact must be the bytes that
// `quantfleet quantize` writes on one machine (itself byte-identical to
// llama-quantize, see tests/conformance). Every wait is bounded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "proto/health.grpc.pb.h"
#include "proto/quantfleet.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

struct Shape {
  int workers;
  std::string type;
  bool imatrix;
};

class ClusterSameBytes : public ClusterTest, public ::testing::WithParamInterface<Shape> {};

TEST_P(ClusterSameBytes, AnyNumberOfWorkers_SameBytesAsQuantize) {
  const Shape& s = GetParam();
  StartCoordinator();
  for (int i = 0; i < s.workers; ++i) StartWorker(absl::StrFormat("w%d", i + 1));
  const std::string job = Submit(s.type, "out.gguf", s.imatrix);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  ExpectSameBytes("out.gguf", s.type, s.imatrix);
  EXPECT_FALSE(fs::exists(Out("out.gguf.quantfleet-" + job + ".part")));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ClusterSameBytes,
                         ::testing::Values(Shape{1, "Q4_K_M", true}, Shape{2, "Q4_K_M", true}, Shape{4, "Q4_K_M", true},
                                           Shape{2, "IQ4_XS", true}, Shape{2, "Q6_K", false}, Shape{4, "Q8_0", false}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return absl::StrFormat("%dWorkers_%s%s", info.param.workers, info.param.type,
                                                  info.param.imatrix ? "_imatrix" : "");
                         });

TEST_F(ClusterTest, WorkerKilledMidTask_LeaseExpiresAndTheJobFinishesWithTheSameBytes) {
  StartCoordinator();
  ChildProcess* slow = StartWorker("slow", {"--fault-stall-ms", "3000"});
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // it holds a task, stalled
  slow->Signal(SIGKILL);
  slow->Wait(absl::Seconds(5));
  StartWorker("fast");
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
}

TEST_F(ClusterTest, StoppedWorkerPastItsLease_ItsLateResultIsRejected) {
  StartCoordinator();
  ChildProcess* frozen = StartWorker("frozen", {"--fault-stall-ms", "1500"});
  const std::string job = Submit("Q6_K", "out.gguf", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  frozen->Signal(SIGSTOP);  // holds a lease and stops heartbeating
  StartWorker("healthy");
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  frozen->Signal(SIGCONT);
  // The frozen worker's late result is refused: either its upload is
  // rejected as stale, or its first heartbeat is told to drop the lease.
  // Wait (bounded) for it to say so.
  auto rejected = [](const std::string& log) {
    return log.find("stale lease") != std::string::npos || log.find("no longer running") != std::string::npos ||
           log.find("the lease was taken away") != std::string::npos;
  };
  std::string log;
  for (int i = 0; i < 100 && !rejected(log); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = ReadText(dir_ + "/worker-frozen.log");
  }
  EXPECT_TRUE(rejected(log)) << log;
  ExpectSameBytes("out.gguf", "Q6_K", false);
}

TEST_F(ClusterTest, CoordinatorKilledAndRestarted_JobResumesAndFinishesWithTheSameBytes) {
  StartCoordinator();
  StartWorker("w1", {"--fault-stall-ms", "100"});
  StartWorker("w2", {"--fault-stall-ms", "100"});
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  int64_t done = -1;
  for (int i = 0; i < 200 && done < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    done = TasksDone(job);
  }
  ASSERT_GE(done, 4);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(5));
  StartCoordinator();
  const int64_t after = TasksDone(job);
  EXPECT_GE(after, done) << "finished tasks must survive the restart";
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
}

TEST_F(ClusterTest, WorkerWithADataRoot_ReadsSourcesLocallyAndWritesTheSameBytes) {
  StartCoordinator();
  ChildProcess* local = StartWorker("local", {"--data-root", dir_ + "/models", "--max-tasks", "1000"});
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
  local->Signal(SIGTERM);
  ASSERT_EQ(local->Wait(absl::Seconds(20)), 0);
  const std::string log = ReadText(dir_ + "/worker-local.log");
  const size_t at = log.find("read from a data root");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find("(0 read from a data root)"), std::string::npos) << "every source was downloaded: " << log;
}

TEST_F(ClusterTest, CorruptedChunkAndCutUpload_AreResentAndTheBytesAreTheSame) {
  StartCoordinator();
  ChildProcess* faulty = StartWorker("faulty", {"--fault-corrupt-first-chunk", "--fault-cut-first-upload"});
  const std::string job = Submit("Q5_K_M", "out.gguf", false);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  ExpectSameBytes("out.gguf", "Q5_K_M", false);
  faulty->Signal(SIGTERM);
  faulty->Wait(absl::Seconds(20));
  // Both faults happened, and each was ridden out by resuming.
  const std::string log = ReadText(dir_ + "/worker-faulty.log");
  EXPECT_NE(log.find("the connection was cut (injected fault)); resuming"), std::string::npos) << log;
  EXPECT_NE(log.find("failed its CRC32C; send it again); resuming"), std::string::npos) << log;
}

TEST_F(ClusterTest, BadInput_IsRefusedWithTheRightStatusAndNoFile) {
  StartCoordinator();
  std::ofstream(Out("bad.gguf")) << "not a model";
  ProcessResult r = Cli({"submit", Out("bad.gguf"), Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("not a GGUF file"), std::string::npos) << r.output;
  ProcessResult outside = Cli({"submit", "/etc/hostname", Out("x.gguf"), "Q4_K_M"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.output.find("outside the allowed roots"), std::string::npos) << outside.output;
  std::ofstream(Out("exists.gguf")) << "keep";
  ProcessResult exists = Cli({"submit", Model(), Out("exists.gguf"), "Q8_0"});
  EXPECT_EQ(exists.exit_code, 1);
  EXPECT_NE(exists.output.find("already exists"), std::string::npos) << exists.output;
  EXPECT_EQ(ReadText(Out("exists.gguf")), "keep");
  EXPECT_FALSE(fs::exists(Out("x.gguf")));
}

TEST_F(ClusterTest, Cancel_StopsTheJobAndLeavesNoFile) {
  StartCoordinator();
  StartWorker("w1", {"--fault-stall-ms", "500"});
  const std::string job = Submit("Q4_K_M", "out.gguf", false);
  ProcessResult c = Cli({"cancel", job});
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("CANCELLED"), std::string::npos) << c.output;
  ProcessResult w = Cli({"watch", job});
  EXPECT_EQ(w.exit_code, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_FALSE(fs::exists(Out("out.gguf")));
  EXPECT_FALSE(fs::exists(Out("out.gguf.quantfleet-" + job + ".part")));
}

TEST_F(ClusterTest, OversizedMessage_IsResourceExhaustedAndTheServerStaysUp) {
  StartCoordinator();
  auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  auto stub = quantfleet::v1::WorkerService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  quantfleet::v1::UploadResponse resp;
  auto writer = stub->UploadResult(&ctx, &resp);
  quantfleet::v1::UploadChunk chunk;
  chunk.set_data(std::string(5 << 20, 'x'));  // over the 4 MiB message limit
  writer->Write(chunk);
  writer->WritesDone();
  const grpc::Status s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  ProcessResult jobs = Cli({"jobs"});
  EXPECT_EQ(jobs.exit_code, 0) << "the coordinator must still serve: " << jobs.output;
}

TEST_F(ClusterTest, Health_IsServingThenNotServingWhileDraining) {
  StartCoordinator();
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  auto check = [&]() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
    return s.ok() ? resp.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  EXPECT_EQ(check(), grpc::health::v1::HealthCheckResponse::SERVING);
  coordinator_->Signal(SIGTERM);
  grpc::health::v1::HealthCheckResponse::ServingStatus status = grpc::health::v1::HealthCheckResponse::SERVING;
  for (int i = 0; i < 50 && status == grpc::health::v1::HealthCheckResponse::SERVING; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = check();
  }
  EXPECT_EQ(status, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(coordinator_->Wait(absl::Seconds(15)), 0) << "a drained coordinator exits cleanly";
}

TEST_F(ClusterTest, SeededRandomKills_TheJobStillEndsWithTheSameBytes) {
  std::mt19937 rng(20261128);
  StartCoordinator();
  std::vector<std::string> names = {"r1", "r2"};
  // Slow workers, so that two dozen kills land while the job runs.
  for (const std::string& n : names) StartWorker(n, {"--fault-stall-ms", "250"});
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  int kills = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (kills < 24 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));
    nlohmann::json s = Status(job);
    if (s.is_object() && s.value("state", "") != "JOB_RUNNING") break;  // finished early
    const size_t victim = rng() % (names.size() + 1);
    if (victim == names.size()) {
      coordinator_->Signal(SIGKILL);
      coordinator_->Wait(absl::Seconds(5));
      StartCoordinator();
    } else {
      workers_[victim]->Signal(SIGKILL);
      workers_[victim]->Wait(absl::Seconds(5));
      workers_[victim] = std::make_unique<ChildProcess>(WorkerArgv(names[victim], {"--fault-stall-ms", "250"}),
                                                        dir_ + "/worker-" + names[victim] + ".log");
    }
    ++kills;
  }
  EXPECT_GE(kills, 12) << "the schedule should get many kills in before the job ends";
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/coordinator.log");
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
}

// TLS and tokens: a CA, a coordinator certificate for 127.0.0.1, and one
// token per role.
class ClusterAccessTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    const std::string d = dir_;
    ProcessResult r = RunProcess(
        {"/bin/sh", "-c",
         "set -e; cd " + d +
             "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext;"
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=qf-test-ca "
             "2>/dev/null;"
             "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null;"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1"
             " -extfile san.ext 2>/dev/null;"
             "echo client-secret-1 > client.token; echo worker-secret-2 > worker.token; echo wrong > wrong.token"},
        absl::Minutes(1));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void StartSecureCoordinator() {
    StartCoordinator(2, {"--tls-cert", dir_ + "/server.pem", "--tls-key", dir_ + "/server.key", "--token-file",
                         dir_ + "/client.token", "--worker-token-file", dir_ + "/worker.token"});
  }
};

TEST_F(ClusterAccessTest, CallsNeedTheRightTokenOverTls) {
  StartSecureCoordinator();
  cli_extra_ = {"--tls-ca", dir_ + "/ca.pem"};
  ProcessResult none = Cli({"jobs"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no token"), std::string::npos) << none.output;
  cli_extra_ = {"--tls-ca", dir_ + "/ca.pem", "--token-file", dir_ + "/wrong.token"};
  ProcessResult wrong = Cli({"jobs"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("wrong token"), std::string::npos) << wrong.output;
  cli_extra_ = {"--tls-ca", dir_ + "/ca.pem", "--token-file", dir_ + "/worker.token"};
  ProcessResult role = Cli({"jobs"});
  EXPECT_EQ(role.exit_code, 1);
  EXPECT_NE(role.output.find("needs the client token"), std::string::npos) << role.output;
  cli_extra_ = {"--token-file", dir_ + "/client.token"};
  ProcessResult cleartext = Cli({"jobs"});
  EXPECT_EQ(cleartext.exit_code, 1);
  EXPECT_NE(cleartext.output.find("only sent over TLS"), std::string::npos) << cleartext.output;
  cli_extra_ = {};
  ProcessResult insecure = Cli({"jobs"}, absl::Seconds(20));
  EXPECT_EQ(insecure.exit_code, 1) << "a plain-text client must not get through to a TLS coordinator";
  cli_extra_ = {"--tls-ca", dir_ + "/ca.pem", "--token-file", dir_ + "/client.token"};
  ProcessResult ok = Cli({"jobs"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST_F(ClusterAccessTest, RolesAreDecidedPerCallOnASharedConnection) {
  StartSecureCoordinator();
  // One TLS channel, each call with its own token: a role granted to one
  // call (or asked for by a refused one) must not carry over to the next.
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadText(dir_ + "/ca.pem");
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(address_, grpc::SslCredentials(ssl));
  auto jobs = v1::JobService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  auto call = [&](const std::string& token_file, auto&& rpc) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const std::string token(absl::StripAsciiWhitespace(ReadText(dir_ + "/" + token_file)));
    ctx.AddMetadata("authorization", "Bearer " + token);
    return rpc(&ctx).error_code();
  };
  auto list_jobs = [&](grpc::ClientContext* ctx) {
    v1::ListJobsResponse r;
    return jobs->ListJobs(ctx, v1::ListJobsRequest(), &r);
  };
  auto upload_offset = [&](grpc::ClientContext* ctx) {
    v1::UploadResponse r;
    return workers->GetUploadOffset(ctx, v1::Lease(), &r);
  };
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(call("client.token", list_jobs), grpc::StatusCode::OK);
    EXPECT_EQ(call("client.token", upload_offset), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(call("worker.token", upload_offset), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(call("worker.token", list_jobs), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(call("client.token", upload_offset), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(call("wrong.token", list_jobs), grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_F(ClusterAccessTest, AJobRunsEndToEndOverTlsWithTokens) {
  StartSecureCoordinator();
  StartWorker("secure", {"--tls-ca", dir_ + "/ca.pem", "--token-file", dir_ + "/worker.token"});
  cli_extra_ = {"--tls-ca", dir_ + "/ca.pem", "--token-file", dir_ + "/client.token"};
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(3));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/worker-secure.log");
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
}

TEST_F(ClusterAccessTest, CoordinatorRefusesUnsafeListening) {
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {Bin("quantfleet-coordinator"), "--state-dir", dir_ + "/state2", "--allow-root",
                                     dir_ + "/models"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProcess(argv, absl::Seconds(20));
  };
  ProcessResult lan = run({"--listen", absl::StrFormat("0.0.0.0:%d", FreeLoopbackPort())});
  EXPECT_EQ(lan.exit_code, 1);
  EXPECT_NE(lan.output.find("needs TLS and tokens"), std::string::npos) << lan.output;
  ProcessResult cleartext_tokens = run(
      {"--listen", address_, "--token-file", dir_ + "/client.token", "--worker-token-file", dir_ + "/worker.token"});
  EXPECT_EQ(cleartext_tokens.exit_code, 1);
  EXPECT_NE(cleartext_tokens.output.find("only accepted over TLS"), std::string::npos) << cleartext_tokens.output;
}

}  // namespace
}  // namespace quantfleet
