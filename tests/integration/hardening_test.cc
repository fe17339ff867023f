// The coordinator attacked as a hostile client, a misbehaving worker and an
// unlucky operator would, with real processes on loopback: an output
// directory swapped for a symlink mid-job, FIFOs and directories given as
// files, oversized strings from peers, wire offsets that overflow, and a
// coordinator restarted under its workers. Each must end in a clear error
// or a correct job, never in bytes outside the allowed roots, a hang, or a
// listing that cannot be answered.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <limits>

#include "proto/quantfleet.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"

namespace quantfleet {
namespace {

namespace v1 = quantfleet::v1;

class HardeningTest : public ClusterTest {
 protected:
  // A plain-text stub on the coordinator's port, for requests the CLI
  // would never send.
  std::unique_ptr<v1::WorkerService::Stub> RawWorkerStub() {
    return v1::WorkerService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  static std::unique_ptr<grpc::ClientContext> Deadline() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }
};

TEST_F(HardeningTest, OutputDirectorySwappedForASymlink_NothingLandsOutsideAndTheJobFails) {
  StartCoordinator();
  const std::string inside = Out("race2"), moved = Out("race2.bak"), elsewhere = dir_ + "/elsewhere";
  fs::create_directories(inside);
  fs::create_directories(elsewhere);
  // Submitted while no worker runs, so the job waits.
  ProcessResult submit = Cli({"submit", Model(), inside + "/r3.gguf", "Q8_0"});
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  std::vector<std::string> lines = absl::StrSplit(submit.output, '\n', absl::SkipEmpty());
  const std::string job = lines.back();
  // The directory moves away and a symlink out of the root takes its place,
  // with a planted "partial artifact" where the coordinator would look.
  fs::rename(inside, moved);
  fs::create_directory_symlink(elsewhere, inside);
  const std::string planted = elsewhere + "/r3.gguf.quantfleet-" + job + ".part";
  { std::ofstream(planted) << "planted bytes"; }
  StartWorker("w1");
  ProcessResult w = Cli({"watch", job}, absl::Minutes(2));
  EXPECT_NE(w.exit_code, 0) << "the job must not succeed: " << w.output;
  nlohmann::json status = Status(job);
  EXPECT_EQ(status.value("state", ""), "JOB_FAILED") << status.dump();
  EXPECT_NE(status.value("error", "").find("moved or replaced"), std::string::npos) << status.dump();
  EXPECT_FALSE(fs::exists(elsewhere + "/r3.gguf")) << "an artifact was renamed outside the allowed root";
  EXPECT_EQ(ReadText(planted), "planted bytes");
  // Nothing is left behind in the moved directory either.
  for (const auto& entry : fs::directory_iterator(moved)) ADD_FAILURE() << "left behind: " << entry.path();
}

TEST_F(HardeningTest, FifosAndDirectoriesGivenAsFiles_AreRefusedAndTheCoordinatorStaysResponsive) {
  StartCoordinator();
  const std::string fifo = Out("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // A blocked open() would hold the coordinator until the CLI's deadline.
  ProcessResult as_input = Cli({"submit", fifo, Out("a.gguf"), "Q8_0"}, absl::Seconds(20));
  EXPECT_EQ(as_input.exit_code, 1) << as_input.output;
  EXPECT_NE(as_input.output.find("not a regular file"), std::string::npos) << as_input.output;
  ProcessResult as_text = Cli({"submit", "--calibration", fifo, Model(), Out("b.gguf"), "Q8_0"}, absl::Seconds(20));
  EXPECT_EQ(as_text.exit_code, 1) << as_text.output;
  EXPECT_NE(as_text.output.find("not a regular file"), std::string::npos) << as_text.output;
  ProcessResult dir_text = Cli({"submit", "--calibration", Out(""), Model(), Out("c.gguf"), "Q8_0"}, absl::Seconds(20));
  EXPECT_EQ(dir_text.exit_code, 1) << dir_text.output;
  EXPECT_EQ(dir_text.output.find("Unexpected error"), std::string::npos) << dir_text.output;
  EXPECT_NE(dir_text.output.find("not a regular file"), std::string::npos) << dir_text.output;
  ProcessResult jobs = Cli({"jobs"}, absl::Seconds(10));
  EXPECT_EQ(jobs.exit_code, 0) << jobs.output;
}

TEST_F(HardeningTest, OversizedNamesAndImpossibleRanges_AreRefusedAndListingsStayAnswerable) {
  StartCoordinator();
  auto stub = RawWorkerStub();
  v1::RegisterRequest big;
  big.mutable_info()->set_name(std::string(1 << 20, 'n'));
  big.mutable_info()->set_incarnation("x");
  v1::RegisterResponse registered;
  grpc::Status s = stub->Register(Deadline().get(), big, &registered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("the worker name is 1048576 bytes long"), std::string::npos) << s.error_message();

  for (auto [offset, length] :
       std::vector<std::pair<int64_t, int64_t>>{{std::numeric_limits<int64_t>::max() - 5, 100}, {0, -1}, {-8, 16}}) {
    v1::ReadSourceRequest read;
    read.set_offset(offset);
    read.set_length(length);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::unique_ptr<grpc::ClientReader<v1::DataChunk>> reader = stub->ReadSource(&ctx, read);
    v1::DataChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk)) << "data for [" << offset << ", +" << length << ")";
    grpc::Status done = reader->Finish();
    EXPECT_EQ(done.error_code(), grpc::StatusCode::OUT_OF_RANGE)
        << offset << " +" << length << ": " << done.error_message();
  }

  // A worker that fails its task with a 3.5 MiB reason: the job fails with
  // the reason cut, and `jobs` and `workers` still answer.
  v1::RegisterRequest reg;
  reg.mutable_info()->set_name("liar");
  reg.mutable_info()->set_incarnation("liar-1");
  ASSERT_TRUE(stub->Register(Deadline().get(), reg, &registered).ok());
  const std::string job = Submit("Q8_0", "out.gguf", false);
  v1::AcquireTaskRequest acquire;
  acquire.set_worker_id(registered.worker_id());
  v1::AcquireTaskResponse task;
  ASSERT_TRUE(stub->AcquireTask(Deadline().get(), acquire, &task).ok());
  ASSERT_TRUE(task.assigned());
  v1::FailTaskRequest fail;
  *fail.mutable_lease() = task.task().lease();
  fail.set_reason(std::string(3500000, 'r'));
  fail.set_permanent(true);
  v1::Empty empty;
  ASSERT_TRUE(stub->FailTask(Deadline().get(), fail, &empty).ok());
  nlohmann::json status = Status(job);
  EXPECT_EQ(status.value("state", ""), "JOB_FAILED");
  EXPECT_LE(status.value("error", "").size(), 4096u);
  ProcessResult jobs = Cli({"jobs"});
  EXPECT_EQ(jobs.exit_code, 0) << jobs.output.substr(0, 500);
  ProcessResult workers = Cli({"workers"});
  EXPECT_EQ(workers.exit_code, 0) << workers.output.substr(0, 500);
}

TEST_F(HardeningTest, ContextSizesPastAnyModel_AreRefusedWithTheRange) {
  StartCoordinator();
  ProcessResult r = Cli({"submit", "--calibration", Model(), "--ctx", "2000000000", Model(), Out("c.gguf"), "Q8_0"},
                        absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("give 16 to 1048576 tokens per chunk"), std::string::npos) << r.output;
}

TEST_F(HardeningTest, CoordinatorStoppedAndRestarted_ItsWorkersWaitAndComeBack) {
  StartCoordinator();
  ChildProcess* worker = StartWorker("steady");
  // Registered: the worker is listed.
  for (int i = 0; i < 100 && Cli({"workers"}).output.find("steady") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  coordinator_->Signal(SIGTERM);
  ASSERT_EQ(coordinator_->Wait(absl::Seconds(20)), 0) << ReadText(dir_ + "/coordinator.log");
  // The worker must not give up while the coordinator is away.
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(worker->Running()) << "the worker exited: " << ReadText(dir_ + "/worker-steady.log");
  StartCoordinator();
  const std::string job = Submit("Q4_K_M", "out.gguf", true);
  ProcessResult w = Cli({"watch", job}, absl::Minutes(2));
  ASSERT_EQ(w.exit_code, 0) << w.output << ReadText(dir_ + "/worker-steady.log");
  ExpectSameBytes("out.gguf", "Q4_K_M", true);
}

}  // namespace
}  // namespace quantfleet
