// libFuzzer target: the coordinator's request handling, under ASan/UBSan.
// An input is a script of requests, each a tag byte, a 16-bit length and a
// serialized protobuf message, played against a fresh coordinator on a
// temporary state directory (with a small model inside its allowed root)
// after the same edge checks the gRPC adapter applies. Leases the fuzzer
// did not make up come from its own Acquire calls, so scripts reach
// uploads, completions and failures of real tasks. Any request may fail;
// none may crash, hang or corrupt the coordinator, which must still answer
// its listings afterwards.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "coordinator/coordinator.h"
#include "coordinator/request_limits.h"
#include "core/util/clock.h"
#include "core/util/crc32c.h"
#include "tests/fuzz/fuzz_seed.h"
#include "tests/tools/test_model.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = quantfleet::v1;

std::string* root = nullptr;  // holds models/ (the allowed root) and state/

enum Tag : uint8_t {
  kSubmit,
  kRegister,
  kAcquire,
  kHeartbeat,
  kReadSource,
  kUpload,
  kComplete,
  kFail,
  kCancel,
  kExpire,
  kTagCount
};

// The script's state: the last worker, job and lease it obtained.
struct Session {
  std::string worker_id;
  std::string job_id;
  v1::Lease lease;
};

template <typename Message>
bool Decode(const uint8_t* data, size_t size, Message* m) {
  return m->ParseFromArray(data, static_cast<int>(size));
}

void Play(quantfleet::Coordinator& c, quantfleet::FakeClock& clock, Session& s, Tag tag, const uint8_t* data,
          size_t size) {
  switch (tag) {
    case kSubmit: {
      v1::SubmitJobRequest r;
      if (!Decode(data, size, &r)) return;
      // Paths inside the root unless the script names others.
      if (r.input().empty()) r.set_input(*root + "/models/m.gguf");
      if (r.output().empty()) r.set_output(*root + "/models/out.gguf");
      if (!quantfleet::CheckSubmitRequest(r).ok()) return;
      absl::StatusOr<v1::Job> job = c.Submit(r);
      if (job.ok()) s.job_id = job->id();
      return;
    }
    case kRegister: {
      v1::WorkerInfo info;
      if (!Decode(data, size, &info) || !quantfleet::CheckWorkerInfo(info).ok()) return;
      s.worker_id = c.Register(info).worker_id();
      return;
    }
    case kAcquire: {
      absl::StatusOr<v1::AcquireTaskResponse> r = c.Acquire(s.worker_id);
      if (r.ok() && r->assigned()) s.lease = r->task().lease();
      return;
    }
    case kHeartbeat: {
      v1::HeartbeatRequest r;
      if (!Decode(data, size, &r)) return;
      if (r.worker_id().empty()) r.set_worker_id(s.worker_id);
      if (r.leases_size() == 0) *r.add_leases() = s.lease;
      (void)c.Heartbeat(r);
      return;
    }
    case kReadSource: {
      v1::ReadSourceRequest r;
      if (!Decode(data, size, &r)) return;
      if (!r.has_lease()) *r.mutable_lease() = s.lease;
      if (!quantfleet::CheckByteRange(r.offset(), r.length()).ok()) return;
      (void)c.ReadSource(r.lease(), r.offset(), r.length(), r.activations(), {r.part(), r.base()});
      return;
    }
    case kUpload: {
      v1::UploadChunk r;
      if (!Decode(data, size, &r)) return;
      if (!r.has_lease()) *r.mutable_lease() = s.lease;
      // Half the time with the right checksum, so the write path runs.
      const uint32_t crc = r.crc32c() % 2 == 0 ? quantfleet::Crc32c(r.data().data(), r.data().size()) : r.crc32c();
      (void)c.Upload(r.lease(), r.offset(), r.data(), crc);
      return;
    }
    case kComplete: {
      v1::CompleteTaskRequest r;
      if (!Decode(data, size, &r)) return;
      if (!r.has_lease()) *r.mutable_lease() = s.lease;
      (void)c.Complete(r.lease(), r.size(), r.crc32c());
      c.FlushCompletedTasks();
      return;
    }
    case kFail: {
      v1::FailTaskRequest r;
      if (!Decode(data, size, &r)) return;
      if (!r.has_lease()) *r.mutable_lease() = s.lease;
      (void)c.Fail(r.lease(), quantfleet::ClipReason(r.reason()), r.permanent());
      return;
    }
    case kCancel: {
      v1::JobRequest r;
      if (!Decode(data, size, &r)) return;
      (void)c.Cancel(r.job_id().empty() ? s.job_id : r.job_id());
      return;
    }
    case kExpire:
      clock.Advance(absl::Seconds(size > 0 ? data[0] : 1));
      c.ExpireLeases();
      return;
    case kTagCount:
      return;
  }
}

// A seed script that walks a job through the usual calls: register,
// submit, acquire, read, upload, complete, fail, expire, cancel.
std::string SeedScript() {
  std::string out;
  auto add = [&](Tag tag, const std::string& bytes) {
    out += static_cast<char>(tag);
    out += static_cast<char>(bytes.size() & 0xff);
    out += static_cast<char>(bytes.size() >> 8);
    out += bytes;
  };
  v1::WorkerInfo info;
  info.set_name("w");
  info.set_incarnation("w-1");
  add(kRegister, info.SerializeAsString());
  v1::SubmitJobRequest submit;
  submit.mutable_options()->set_file_type("Q8_0");
  submit.set_force(true);
  add(kSubmit, submit.SerializeAsString());
  add(kAcquire, "");
  v1::ReadSourceRequest read;
  read.set_length(1 << 20);
  add(kReadSource, read.SerializeAsString());
  v1::UploadChunk upload;
  upload.set_data(std::string(64, 'q'));
  add(kUpload, upload.SerializeAsString());
  v1::CompleteTaskRequest complete;
  complete.set_size(64);
  add(kComplete, complete.SerializeAsString());
  v1::FailTaskRequest fail;
  fail.set_reason("out of memory");
  add(kFail, fail.SerializeAsString());
  add(kExpire, std::string(1, '\x20'));
  add(kCancel, "");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quantfleet::WriteSeedIfAsked(SeedScript);
  // Under /dev/shm when there is one: the store fsyncs every change.
  const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  root = new std::string((base / ("qf-coordinator-fuzz-" + std::to_string(::getpid()))).string());
  fs::remove_all(*root);
  fs::create_directories(*root + "/models");
  quantfleet::TestModelSpec spec;
  spec.n_layer = 1;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_vocab = 64;
  if (absl::Status st = quantfleet::WriteTestModel(spec, *root + "/models/m.gguf"); !st.ok()) {
    std::fprintf(stderr, "coordinator_fuzzer: %s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
  std::atexit([] { fs::remove_all(*root); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string state = *root + "/state";
  fs::remove_all(state);
  fs::create_directories(state);
  for (const auto& entry : fs::directory_iterator(*root + "/models")) {
    if (entry.path().filename() != "m.gguf") fs::remove_all(entry.path());
  }
  quantfleet::CoordinatorOptions options;
  options.state_dir = state;
  options.allowed_roots = {*root + "/models"};
  options.task_result_bytes = 4 << 10;  // several small tasks
  quantfleet::FakeClock clock;
  absl::StatusOr<std::unique_ptr<quantfleet::Coordinator>> c = quantfleet::Coordinator::Open(options, &clock);
  if (!c.ok()) {
    std::fprintf(stderr, "coordinator_fuzzer: %s\n", std::string(c.status().message()).c_str());
    std::abort();
  }
  Session session;
  size_t at = 0;
  for (int step = 0; step < 64 && at + 3 <= size; ++step) {
    const Tag tag = static_cast<Tag>(data[at] % kTagCount);
    const size_t len =
        std::min<size_t>(static_cast<size_t>(data[at + 1]) | (static_cast<size_t>(data[at + 2]) << 8), size - at - 3);
    Play(**c, clock, session, tag, data + at + 3, len);
    at += 3 + len;
  }
  // Still answering.
  (void)(*c)->ListJobs();
  (void)(*c)->ListWorkers();
  (void)(*c)->Status(10);
  return 0;
}
