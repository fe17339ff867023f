#include "coordinator/coordinator.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_format.h"
#include "coordinator/quantize_job.h"
#include "coordinator/request_limits.h"
#include "core/util/crc32c.h"
#include "tests/tools/faulty_file_ops.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;
namespace v1 = quantfleet::v1;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() /
        absl::StrFormat("qf-coord-%d-%s", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "models");
    fs::create_directories(root_ / "state");
    TestModelSpec spec;
    spec.n_layer = 1;
    ASSERT_TRUE(WriteTestModel(spec, Model()).ok());
    options_.state_dir = (root_ / "state").string();
    options_.allowed_roots = {(root_ / "models").string()};
    options_.lease = absl::Seconds(10);
    options_.task_result_bytes = 8 << 10;  // many small tasks
  }
  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(root_);
  }

  std::string Model() const { return (root_ / "models" / "m.gguf").string(); }
  std::string Out() const { return (root_ / "models" / "out.gguf").string(); }

  void Open() {
    absl::StatusOr<std::unique_ptr<Coordinator>> c = Coordinator::Open(options_, &clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
  }

  v1::SubmitJobRequest Request(const std::string& type = "Q8_0") {
    v1::SubmitJobRequest r;
    r.set_input(Model());
    r.set_output(Out());
    r.mutable_options()->set_file_type(type);
    return r;
  }

  std::string Worker(const std::string& name = "w") {
    v1::WorkerInfo info;
    info.set_name(name);
    info.set_incarnation(name + "-1");
    return coordinator_->Register(info).worker_id();
  }

  // Runs a leased task the way a worker does: reads the source, "computes"
  // the result by copying or quantizing through the same kernels is not
  // needed here, so tests only use COPY-like tasks or upload given bytes.
  void UploadAll(const v1::TaskSpec& task, const std::string& bytes) {
    absl::StatusOr<int64_t> c = coordinator_->Upload(task.lease(), 0, bytes, Crc32c(bytes.data(), bytes.size()));
    ASSERT_TRUE(c.ok()) << c.status();
  }

  fs::path root_;
  FakeClock clock_;
  CoordinatorOptions options_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, Submit_RecordsAJobWithTasks) {
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_RUNNING);
  EXPECT_GT(job->tasks_total(), 1);
  EXPECT_TRUE(fs::exists(PartFile::PathFor(Out(), job->id())));
}

TEST_F(CoordinatorTest, TheRequestsKindPicksTheJobsKind) {
  Open();
  v1::SubmitJobRequest none = Request();
  none.clear_kind();
  absl::StatusOr<v1::Job> refused = coordinator_->Submit(none);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("not a file type"), std::string::npos) << refused.status();

  // A calibrated request records an importance-matrix job (the imatrix
  // beside the output), with the quantization to follow it.
  const std::string with_vocab = (root_ / "models" / "with-vocab.gguf").string();
  ASSERT_TRUE(WriteTestVocab((root_ / "models" / "vocab.gguf").string()).ok());
  TestModelSpec spec;
  spec.n_layer = 1;
  spec.vocab_from = (root_ / "models" / "vocab.gguf").string();
  ASSERT_TRUE(WriteTestModel(spec, with_vocab).ok());
  {
    std::ofstream text(root_ / "models" / "text.txt");
    for (int i = 0; i < 200; ++i) text << "some calibration text " << i << "\n";
  }
  v1::SubmitJobRequest calibrated = Request("Q4_K_M");
  calibrated.set_input(with_vocab);
  v1::CalibratedQuantization* c = calibrated.mutable_calibrated();
  c->mutable_options()->set_file_type("Q4_K_M");
  c->mutable_calibration()->set_text((root_ / "models" / "text.txt").string());
  c->mutable_calibration()->set_ctx(16);
  absl::StatusOr<v1::Job> job = coordinator_->Submit(calibrated);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->kind_case(), v1::Job::kCalibration);
  EXPECT_EQ(job->output(), Out() + ".imatrix.gguf");
  EXPECT_EQ(job->then().options().file_type(), "Q4_K_M");
  EXPECT_EQ(job->then().options().imatrix(), Out() + ".imatrix.gguf");
  EXPECT_EQ(job->then().output(), Out());

  c->mutable_options()->set_imatrix(Model());
  calibrated.set_request_id("another");
  EXPECT_EQ(coordinator_->Submit(calibrated).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, RetriedSubmitWithTheSameRequestId_CreatesOneJob) {
  Open();
  v1::SubmitJobRequest r = Request();
  r.set_request_id("abc");
  absl::StatusOr<v1::Job> a = coordinator_->Submit(r);
  absl::StatusOr<v1::Job> b = coordinator_->Submit(r);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id(), b->id());
  EXPECT_EQ(coordinator_->ListJobs().size(), 1u);
}

TEST_F(CoordinatorTest, PathsOutsideTheRoots_AreRefused) {
  Open();
  struct Case {
    std::string input, output, needle;
    absl::StatusCode code;
  };
  const std::string models = (root_ / "models").string();
  fs::create_symlink("/etc", root_ / "models" / "escape");
  for (const Case& c :
       {Case{"/etc/passwd", Out(), "outside the allowed roots", absl::StatusCode::kInvalidArgument},
        Case{models + "/../state/x.gguf", Out(), "'..' is not allowed", absl::StatusCode::kInvalidArgument},
        Case{models + "/escape/hostname", Out(), "outside the allowed roots", absl::StatusCode::kInvalidArgument},
        Case{"m.gguf", Out(), "must be absolute", absl::StatusCode::kInvalidArgument},
        Case{Model(), "/tmp/elsewhere.gguf", "outside the allowed roots", absl::StatusCode::kInvalidArgument},
        Case{Model() + std::string(1, '\0'), Out(), "NUL byte", absl::StatusCode::kInvalidArgument},
        Case{"/" + std::string(2000, 'a'), Out(), "bytes long", absl::StatusCode::kInvalidArgument}}) {
    v1::SubmitJobRequest r = Request();
    r.set_input(c.input);
    r.set_output(c.output);
    absl::StatusOr<v1::Job> job = coordinator_->Submit(r);
    ASSERT_FALSE(job.ok()) << c.input;
    EXPECT_EQ(job.status().code(), c.code) << job.status();
    EXPECT_NE(std::string(job.status().message()).find(c.needle), std::string::npos) << job.status();
  }
}

TEST_F(CoordinatorTest, ExistingOutputWithoutForce_IsRefused) {
  Open();
  std::ofstream(Out()) << "keep";
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kFailedPrecondition);
  v1::SubmitJobRequest forced = Request();
  forced.set_force(true);
  EXPECT_TRUE(coordinator_->Submit(forced).ok());
}

TEST_F(CoordinatorTest, TooManyActiveJobs_IsResourceExhausted) {
  options_.max_active_jobs = 1;
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  v1::SubmitJobRequest second = Request();
  second.set_output((root_ / "models" / "other.gguf").string());
  absl::StatusOr<v1::Job> job = coordinator_->Submit(second);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(CoordinatorTest, ExpiredLease_GoesBackToTheQueueAndTheLateResultIsRejected) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  const std::string w1 = Worker("w1"), w2 = Worker("w2");
  absl::StatusOr<v1::AcquireTaskResponse> first = coordinator_->Acquire(w1);
  ASSERT_TRUE(first.ok() && first->assigned());
  clock_.Advance(absl::Seconds(11));  // past the 10 s lease, no heartbeat
  coordinator_->ExpireLeases();
  EXPECT_EQ(coordinator_->lease_expiries(), 1);
  absl::StatusOr<v1::AcquireTaskResponse> again = coordinator_->Acquire(w2);
  ASSERT_TRUE(again.ok() && again->assigned());
  EXPECT_EQ(again->task().lease().task_id(), first->task().lease().task_id());
  EXPECT_GT(again->task().lease().epoch(), first->task().lease().epoch());
  EXPECT_EQ(again->task().lease().attempt(), 2);
  // The first worker wakes up and reports: rejected as stale.
  const std::string bytes(first->task().result_bytes(), 'x');
  absl::StatusOr<int64_t> late =
      coordinator_->Upload(first->task().lease(), 0, bytes, Crc32c(bytes.data(), bytes.size()));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(late.status().message()).find("stale lease"), std::string::npos);
  // Its heartbeat is answered with "drop it".
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w1);
  *hb.add_leases() = first->task().lease();
  absl::StatusOr<v1::HeartbeatResponse> r = coordinator_->Heartbeat(hb);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->drop_size(), 1);
}

TEST_F(CoordinatorTest, LongPoll_HoldsAnIdleWorkerUntilItsWaitAndHandsItANewJobsTask) {
  Open();
  const std::string w = Worker();
  // Nothing to do: the call is held for its wait, then says so (ask again at once).
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::AcquireTaskResponse> idle = coordinator_->Acquire(w, absl::Milliseconds(300));
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_FALSE(idle->assigned());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(idle->retry_after_ms(), 0);
  // Without a wait the answer is immediate, with a pause to respect.
  absl::StatusOr<v1::AcquireTaskResponse> at_once = coordinator_->Acquire(w);
  ASSERT_TRUE(at_once.ok());
  EXPECT_GT(at_once->retry_after_ms(), 0);
  // A worker waiting when a job arrives gets its first task in that call.
  absl::StatusOr<v1::AcquireTaskResponse> held = absl::UnknownError("not answered");
  std::thread waiter([&] { held = coordinator_->Acquire(w, Coordinator::kMaxAcquireWait); });
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  waiter.join();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->assigned());
}

TEST_F(CoordinatorTest, LongPoll_ACallerThatLeftGetsNoTaskAndItsTaskStaysFree) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  const std::string w1 = Worker("w1"), w2 = Worker("w2");
  absl::StatusOr<v1::AcquireTaskResponse> gone = coordinator_->Acquire(w1, absl::Seconds(1), [] { return true; });
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kCancelled) << gone.status();
  absl::StatusOr<v1::AcquireTaskResponse> next = coordinator_->Acquire(w2);
  ASSERT_TRUE(next.ok() && next->assigned());
  EXPECT_EQ(next->task().lease().task_id(), 0) << "the first task went back to the queue";
  coordinator_->ExpireLeases();
  EXPECT_EQ(coordinator_->lease_expiries(), 0);
}

TEST_F(CoordinatorTest, Heartbeats_KeepALeaseAlive) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  const std::string w = Worker();
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(w);
  ASSERT_TRUE(t.ok() && t->assigned());
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  *hb.add_leases() = t->task().lease();
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(6));
    absl::StatusOr<v1::HeartbeatResponse> r = coordinator_->Heartbeat(hb);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->drop_size(), 0) << "heartbeat " << i;
  }
  coordinator_->ExpireLeases();
  EXPECT_EQ(coordinator_->lease_expiries(), 0);
  EXPECT_TRUE(coordinator_->UploadOffset(t->task().lease()).ok());
}

TEST_F(CoordinatorTest, CorruptChunk_IsDataLossAndNothingIsCommitted) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  ASSERT_TRUE(t.ok() && t->assigned());
  std::string bytes(t->task().result_bytes(), 'y');
  const uint32_t crc = Crc32c(bytes.data(), bytes.size());
  bytes[3] ^= 1;
  absl::StatusOr<int64_t> c = coordinator_->Upload(t->task().lease(), 0, bytes, crc);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*coordinator_->UploadOffset(t->task().lease()), 0);
}

TEST_F(CoordinatorTest, UploadResumes_FromTheCommittedOffset) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  ASSERT_TRUE(t.ok() && t->assigned());
  const std::string bytes(t->task().result_bytes(), 'z');
  const std::string half = bytes.substr(0, bytes.size() / 2);
  ASSERT_TRUE(coordinator_->Upload(t->task().lease(), 0, half, Crc32c(half.data(), half.size())).ok());
  // A chunk from the wrong offset says where to resume.
  absl::StatusOr<int64_t> wrong = coordinator_->Upload(t->task().lease(), 0, half, Crc32c(half.data(), half.size()));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(std::string(wrong.status().message()).find(absl::StrFormat("resume from %d", half.size())),
            std::string::npos);
  const std::string rest = bytes.substr(half.size());
  ASSERT_TRUE(coordinator_->Upload(t->task().lease(), half.size(), rest, Crc32c(rest.data(), rest.size())).ok());
  EXPECT_TRUE(coordinator_->Complete(t->task().lease(), bytes.size(), Crc32c(bytes.data(), bytes.size())).ok());
  // Progress counts durable results only: after the next flush.
  EXPECT_EQ(coordinator_->GetJob(t->task().lease().job_id())->tasks_done(), 0);
  coordinator_->FlushCompletedTasks();
  EXPECT_EQ(coordinator_->GetJob(t->task().lease().job_id())->tasks_done(), 1);
}

TEST_F(CoordinatorTest, CompleteWithAWrongChecksum_IsRejected) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  ASSERT_TRUE(t.ok() && t->assigned());
  const std::string bytes(t->task().result_bytes(), 'q');
  UploadAll(t->task(), bytes);
  absl::Status s = coordinator_->Complete(t->task().lease(), bytes.size(), 12345);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*coordinator_->UploadOffset(t->task().lease()), 0) << "a bad result must be uploaded again";
}

TEST_F(CoordinatorTest, PoisonPill_FailsTheJobAfterMaxAttempts) {
  options_.max_attempts = 3;
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_TRUE(job.ok());
  const std::string w = Worker();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(w);
    ASSERT_TRUE(t.ok() && t->assigned());
    ASSERT_EQ(t->task().lease().task_id(), 0);
    ASSERT_TRUE(coordinator_->Fail(t->task().lease(), "out of memory", false).ok());
  }
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_NE(after->error().find("failed 3 times; last error: out of memory"), std::string::npos) << after->error();
  EXPECT_FALSE(fs::exists(PartFile::PathFor(Out(), job->id())));
  EXPECT_FALSE(fs::exists(Out()));
}

TEST_F(CoordinatorTest, PermanentFailure_FailsTheJobAtOnceWithTheReason) {
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  ASSERT_TRUE(coordinator_->Fail(t->task().lease(), "invalid source data: found nan value at block 7", true).ok());
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_NE(after->error().find("found nan value at block 7"), std::string::npos);
}

TEST_F(CoordinatorTest, HugeFailureReason_IsCutSoTheJobStaysListable) {
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  ASSERT_TRUE(coordinator_->Fail(t->task().lease(), std::string(3500000, 'x'), true).ok());
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_LE(after->error().size(), kMaxReasonBytes);
  EXPECT_TRUE(after->error().ends_with("[... cut]"));
  // Also after a restart, from the store.
  coordinator_.reset();
  Open();
  EXPECT_LE(coordinator_->GetJob(job->id())->error().size(), kMaxReasonBytes);
}

TEST_F(CoordinatorTest, InputsThatAreNotRegularFiles_AreRefusedWithoutBlocking) {
  Open();
  const std::string fifo = (root_ / "models" / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  v1::SubmitJobRequest as_input = Request();
  as_input.set_input(fifo);
  absl::StatusOr<v1::Job> a = coordinator_->Submit(as_input);  // would block in open() without O_NONBLOCK
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("not a regular file"), std::string::npos) << a.status();
  v1::SubmitJobRequest as_text = Request();
  as_text.clear_options();
  as_text.mutable_calibration()->set_text(fifo);
  absl::StatusOr<v1::Job> b = coordinator_->Submit(as_text);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  as_text.mutable_calibration()->set_text((root_ / "models").string());  // a directory
  absl::StatusOr<v1::Job> c = coordinator_->Submit(as_text);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("not a regular file"), std::string::npos) << c.status();
}

TEST_F(CoordinatorTest, Cancel_RemovesThePartialFile) {
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_TRUE(job.ok());
  absl::StatusOr<v1::Job> c = coordinator_->Cancel(job->id());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state(), v1::JOB_CANCELLED);
  EXPECT_FALSE(fs::exists(PartFile::PathFor(Out(), job->id())));
  EXPECT_FALSE(coordinator_->Acquire(Worker())->assigned());
}

TEST_F(CoordinatorTest, NewIncarnationOfAWorker_ReleasesItsLeasesAtOnce) {
  Open();
  ASSERT_TRUE(coordinator_->Submit(Request()).ok());
  const std::string old_id = Worker("rig");
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(old_id);
  ASSERT_TRUE(t->assigned());
  v1::WorkerInfo info;
  info.set_name("rig");
  info.set_incarnation("rig-2");
  const std::string new_id = coordinator_->Register(info).worker_id();
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(coordinator_->Acquire(old_id).ok());
  absl::StatusOr<v1::AcquireTaskResponse> again = coordinator_->Acquire(new_id);
  EXPECT_EQ(again->task().lease().task_id(), t->task().lease().task_id());
}

TEST_F(CoordinatorTest, SecondCoordinatorOnTheSameStateDir_RefusesToStart) {
  Open();
  absl::StatusOr<std::unique_ptr<Coordinator>> second = Coordinator::Open(options_, &clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(second.status().message()).find("in use by another coordinator"), std::string::npos);
}

TEST_F(CoordinatorTest, CorruptedStore_IsRefusedWithAClearMessage) {
  {
    std::ofstream f(options_.state_dir + "/jobs.sqlite", std::ios::binary);
    f << std::string(8192, 'G');
  }
  absl::StatusOr<std::unique_ptr<Coordinator>> c = Coordinator::Open(options_, &clock_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("jobs.sqlite"), std::string::npos) << c.status();
}

TEST_F(CoordinatorTest, Restart_KeepsJobsAndFinishedTasks) {
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_TRUE(job.ok());
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  const std::string bytes(t->task().result_bytes(), 'r');
  UploadAll(t->task(), bytes);
  ASSERT_TRUE(coordinator_->Complete(t->task().lease(), bytes.size(), Crc32c(bytes.data(), bytes.size())).ok());
  const int64_t epoch = t->task().lease().epoch();
  coordinator_.reset();  // the process ends
  Open();
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), v1::JOB_RUNNING);
  EXPECT_EQ(after->tasks_done(), 1);
  absl::StatusOr<v1::AcquireTaskResponse> next = coordinator_->Acquire(Worker());
  ASSERT_TRUE(next->assigned());
  EXPECT_NE(next->task().lease().task_id(), t->task().lease().task_id()) << "a finished task is not redone";
  EXPECT_GT(next->task().lease().epoch(), epoch) << "epochs only grow, across restarts too";
}

// Completes every task of the job with the right bytes: the source bytes
// (COPY-like) are not what a real worker computes, but the coordinator only
// checks sizes and checksums, which is what these tests are about.
void CompleteAll(Coordinator& c, const std::string& worker) {
  for (;;) {
    absl::StatusOr<v1::AcquireTaskResponse> t = c.Acquire(worker);
    if (!t.ok() || !t->assigned()) return;
    const std::string bytes(t->task().result_bytes(), 'c');
    if (!c.Upload(t->task().lease(), 0, bytes, Crc32c(bytes.data(), bytes.size())).ok()) return;
    if (!c.Complete(t->task().lease(), bytes.size(), Crc32c(bytes.data(), bytes.size())).ok()) return;
  }
}

TEST_F(CoordinatorTest, DiskFullOnTheArtifact_FailsTheJobCleanlyAndTheCoordinatorStaysHealthy) {
  FaultyFileOps disk;
  options_.file_ops = &disk;
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  ASSERT_TRUE(job.ok());
  disk.set_write_budget(1000);  // the disk fills up during the first upload
  absl::StatusOr<v1::AcquireTaskResponse> t = coordinator_->Acquire(Worker());
  const std::string bytes(t->task().result_bytes(), 'd');
  absl::StatusOr<int64_t> up = coordinator_->Upload(t->task().lease(), 0, bytes, Crc32c(bytes.data(), bytes.size()));
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), absl::StatusCode::kResourceExhausted) << up.status();
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_NE(after->error().find("No space left"), std::string::npos) << after->error();
  EXPECT_FALSE(fs::exists(PartFile::PathFor(Out(), job->id())));
  EXPECT_FALSE(fs::exists(Out()));
  // Space again: the next job runs to the end.
  disk.set_write_budget(-1);
  absl::StatusOr<v1::Job> next = coordinator_->Submit(Request());
  ASSERT_TRUE(next.ok()) << next.status();
  CompleteAll(*coordinator_, Worker("w2"));
  EXPECT_EQ(coordinator_->GetJob(next->id())->state(), v1::JOB_SUCCEEDED);
  EXPECT_TRUE(fs::exists(Out()));
}

TEST_F(CoordinatorTest, FsyncFailure_FailsTheJobWithoutAnOutput) {
  FaultyFileOps disk;
  options_.file_ops = &disk;
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  disk.set_fail_sync(true);
  CompleteAll(*coordinator_, Worker());
  coordinator_->FlushCompletedTasks();
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_NE(after->error().find("fsync failed"), std::string::npos) << after->error();
  EXPECT_FALSE(fs::exists(PartFile::PathFor(Out(), job->id())));
  EXPECT_FALSE(fs::exists(Out()));
}

TEST_F(CoordinatorTest, RenameFailureAtTheEnd_FailsTheJobWithoutAnOutput) {
  FaultyFileOps disk;
  options_.file_ops = &disk;
  Open();
  absl::StatusOr<v1::Job> job = coordinator_->Submit(Request());
  disk.set_fail_rename(true);
  CompleteAll(*coordinator_, Worker());
  absl::StatusOr<v1::Job> after = coordinator_->GetJob(job->id());
  EXPECT_EQ(after->state(), v1::JOB_FAILED);
  EXPECT_NE(after->error().find("rename into place failed"), std::string::npos) << after->error();
  EXPECT_FALSE(fs::exists(PartFile::PathFor(Out(), job->id())));
  EXPECT_FALSE(fs::exists(Out()));
}

}  // namespace
}  // namespace quantfleet

namespace quantfleet {
namespace {

// After a pipelined calibration, a layer's quantization goes first to the
// worker that held the layer; once its own layers are leased it helps with
// the others, and layers whose holder is gone go to anyone.
TEST_F(CoordinatorTest, LayerWorkersAreOfferedTheirOwnLayersFirst) {
  TestModelSpec spec;
  spec.n_layer = 4;
  ASSERT_TRUE(WriteTestModel(spec, Model()).ok());
  Open();
  const std::string a = Worker("a");
  const std::string b = Worker("b");
  v1::SubmitJobRequest request = Request();
  for (const char* name : {"a", "a", "b", "gone"}) request.add_layer_workers(name);
  ASSERT_TRUE(coordinator_->Submit(request).ok());
  auto layer_of = [](const std::string& tensor) {
    int layer = -1;
    return std::sscanf(tensor.c_str(), "blk.%d.", &layer) == 1 ? layer : -1;
  };
  // a first gets every task of layers 0-1 and of layer 3 (its holder never
  // registered), and no task of b's layer 2, while b takes only layer 2.
  std::vector<int> a_layers, b_layers;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<v1::AcquireTaskResponse> r = coordinator_->Acquire(a);
    ASSERT_TRUE(r.ok()) << r.status();
    if (!r->assigned()) break;
    const int layer = layer_of(r->task().tensor());
    if (layer == 2) break;  // a has run out of preferred layers: it helps with b's
    a_layers.push_back(layer);
  }
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<v1::AcquireTaskResponse> r = coordinator_->Acquire(b);
    ASSERT_TRUE(r.ok()) << r.status();
    if (!r->assigned()) break;
    b_layers.push_back(layer_of(r->task().tensor()));
  }
  ASSERT_FALSE(a_layers.empty());
  ASSERT_FALSE(b_layers.empty());
  for (int l : {0, 1, 3}) EXPECT_NE(std::count(a_layers.begin(), a_layers.end(), l), 0) << "layer " << l;
  for (int l : b_layers) EXPECT_TRUE(l == 2 || l == -1) << "b was given layer " << l << " before its own were gone";
  // Every task of layers 0, 1 and 3 went to a before b asked.
  EXPECT_EQ(std::count(b_layers.begin(), b_layers.end(), 0) + std::count(b_layers.begin(), b_layers.end(), 1), 0);
}

}  // namespace
}  // namespace quantfleet

namespace quantfleet {
namespace {

TEST_F(CoordinatorTest, PartFileReleasesARangeThatThenReadsAsZeros) {
  absl::StatusOr<std::unique_ptr<PartFile>> part = PartFile::Open(Out(), "job-release", 8 << 20);
  ASSERT_TRUE(part.ok()) << part.status();
  const std::string ones(8 << 20, '\x01');
  ASSERT_TRUE((*part)->PWrite(ones.data(), ones.size(), 0).ok());
  ASSERT_TRUE((*part)->Sync().ok());
  struct stat before, after;
  ASSERT_EQ(::stat((*part)->path().c_str(), &before), 0);
  (*part)->Release(1 << 20, 4 << 20);
  ASSERT_EQ(::stat((*part)->path().c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size) << "the size stays";
  std::string back(8 << 20, '\0');
  ASSERT_TRUE((*part)->PRead(back.data(), back.size(), 0).ok());
  EXPECT_EQ(back.substr(0, 1 << 20), ones.substr(0, 1 << 20));
  EXPECT_EQ(back.substr(1 << 20, 4 << 20), std::string(4 << 20, '\0'));
  EXPECT_EQ(back.substr(5 << 20), ones.substr(5 << 20));
  // Where the file system punches holes (ext4, xfs, tmpfs), the space goes.
  if (after.st_blocks < before.st_blocks) {
    EXPECT_LE(after.st_blocks * 512, before.st_blocks * 512 - (4 << 20) + 65536);
  }
  (*part)->Remove();
}

}  // namespace
}  // namespace quantfleet
