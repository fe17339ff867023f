// The fixture of the multi-process tests: a temporary directory with a
// small seeded model and imatrix, a coordinator and workers started as real
// processes on a free loopback port, and the quantfleet command pointed at
// them. Every wait is bounded.
//
// Thread-safety: one fixture per test, used from the test's thread.
#ifndef QUANTFLEET_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
#define QUANTFLEET_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {

namespace fs = std::filesystem;

inline std::string Bin(const std::string& name) { return std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/" + name; }

inline std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The DOM of `url` after its scripts ran, from headless Chromium.
inline ProcessResult RenderedDom(const std::string& url, const std::string& profile_dir) {
  return RunProcess({"/bin/sh", "-c",
                     "exec \"${CHROMIUM:-chromium}\" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                     "--no-first-run --user-data-dir=" +
                         profile_dir + " --virtual-time-budget=8000 --dump-dom " + url + " 2>/dev/null"},
                    absl::Minutes(1));
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        (fs::temp_directory_path() /
         absl::StrFormat("qf-cluster-%d-%s", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name()))
            .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/models");
    TestModelSpec spec;
    spec.n_layer = 4;
    spec.n_embd = 512;
    spec.n_ff = 1536;
    spec.n_head = 8;
    spec.n_head_kv = 2;
    spec.type = GgmlType::kF16;
    spec.seed = 21;
    ASSERT_TRUE(WriteTestModel(spec, Model()).ok());
    ASSERT_TRUE(WriteTestImatrix(spec, Imatrix(), ImatrixFormat::kGguf, 22).ok());
    port_ = FreeLoopbackPort();
    address_ = absl::StrFormat("127.0.0.1:%d", port_);
  }

  void TearDown() override {
    workers_.clear();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string Model() const { return dir_ + "/models/model-f16.gguf"; }
  std::string Imatrix() const { return dir_ + "/models/imatrix.gguf"; }
  std::string Out(const std::string& name) const { return dir_ + "/models/" + name; }

  void StartCoordinator(int lease_seconds = 2, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {Bin("quantfleet-coordinator"),
                                     "--listen",
                                     address_,
                                     "--state-dir",
                                     dir_ + "/state",
                                     "--allow-root",
                                     dir_ + "/models",
                                     "--lease-seconds",
                                     absl::StrCat(lease_seconds),
                                     "--heartbeat-seconds",
                                     "1",
                                     "--task-mib",
                                     "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinator_ = std::make_unique<ChildProcess>(argv, dir_ + "/coordinator.log");
    ASSERT_TRUE(coordinator_->started());
    ASSERT_TRUE(WaitForLoopbackPort(port_, absl::Seconds(20))) << ReadText(dir_ + "/coordinator.log");
  }

  // A worker process; with a --fault-* flag in `extra`, the test build of
  // the worker whose link to the coordinator injects that fault.
  ChildProcess* StartWorker(const std::string& name, std::vector<std::string> extra = {}) {
    workers_.push_back(std::make_unique<ChildProcess>(WorkerArgv(name, extra), dir_ + "/worker-" + name + ".log"));
    return workers_.back().get();
  }

  std::vector<std::string> WorkerArgv(const std::string& name, const std::vector<std::string>& extra) const {
    const bool faulty =
        std::any_of(extra.begin(), extra.end(), [](const std::string& a) { return a.rfind("--fault-", 0) == 0; });
    std::vector<std::string> argv = {Bin(faulty ? "quantfleet-faulty-worker" : "quantfleet-worker"),
                                     "--coordinator",
                                     address_,
                                     "--name",
                                     name,
                                     "--threads",
                                     "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  ProcessResult Cli(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(30)) {
    args.insert(args.begin(), {Bin("quantfleet"), args[0]});
    args.erase(args.begin() + 2);
    args.insert(args.begin() + 2, {"--coordinator", address_});
    args.insert(args.begin() + 4, cli_extra_.begin(), cli_extra_.end());
    return RunProcess(args, timeout);
  }

  // Submits and returns the job id (the last line of submit's output).
  std::string Submit(const std::string& type, const std::string& out, bool imatrix) {
    std::vector<std::string> args = {"submit", "--force"};
    if (imatrix) args.insert(args.end(), {"--imatrix", Imatrix()});
    args.insert(args.end(), {Model(), Out(out), type});
    ProcessResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> lines = absl::StrSplit(r.output, '\n', absl::SkipEmpty());
    return lines.empty() ? "" : lines.back();
  }

  nlohmann::json Status(const std::string& job) {
    ProcessResult r = Cli({"status", "--json", job});
    if (r.exit_code != 0) return nlohmann::json();
    return nlohmann::json::parse(r.output, nullptr, false);
  }

  // A number field of the job's status (-1 when it has none; the JSON
  // writes 64-bit numbers as strings).
  int64_t Int64Field(const std::string& job, const std::string& field) {
    nlohmann::json j = Status(job);
    if (!j.is_object() || !j.contains(field)) return -1;
    int64_t n = 0;
    const nlohmann::json& v = j[field];
    if (v.is_string()) return absl::SimpleAtoi(v.get<std::string>(), &n) ? n : -1;
    return v.get<int64_t>();
  }
  int64_t TasksDone(const std::string& job) { return Int64Field(job, "tasksDone"); }
  // Workers the coordinator counts alive.
  int AliveWorkers() {
    ProcessResult r = Cli({"workers", "--json"});
    const nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
    int alive = 0;
    if (j.is_object() && j.contains("workers")) {
      for (const nlohmann::json& w : j["workers"]) alive += w.value("alive", false) ? 1 : 0;
    }
    return alive;
  }
  // Waits (at most 10 s) for `n` alive workers.
  void WaitForAliveWorkers(int n) {
    for (int i = 0; i < 200 && AliveWorkers() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(AliveWorkers(), n);
  }
  // Polls the status of `job` (every 50 ms, at most `tries` times) until its
  // string field `field` contains `part`; returns the last value seen.
  std::string WaitForField(const std::string& job, const std::string& field, const std::string& part, int tries = 200) {
    std::string value;
    for (int i = 0; i < tries && value.find(part) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const nlohmann::json j = Status(job);
      value = j.is_object() && j.contains(field) ? j[field].get<std::string>() : "";
    }
    return value;
  }
  // The id of the oldest job ("" when there is none).
  std::string OnlyJob() {
    const nlohmann::json jobs = nlohmann::json::parse(Cli({"jobs", "--json"}).output, nullptr, false);
    if (!jobs.is_object() || !jobs.contains("jobs") || jobs["jobs"].empty()) return "";
    return jobs["jobs"][0]["id"].get<std::string>();
  }
  // Waits (at most 10 s) until the oldest job has `n` tasks done; returns
  // how many it had at the end (-1: no job) and sets `*job` to its id.
  int64_t WaitForTasksDone(int64_t n, std::string* job) {
    int64_t done = -1;
    for (int i = 0; i < 400 && done < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      if (job->empty()) *job = OnlyJob();
      if (!job->empty()) done = TasksDone(*job);
    }
    return done;
  }

  // The single-machine result for the same input and options.
  std::vector<uint8_t> Reference(const std::string& type, bool imatrix) {
    const std::string out = Out("reference-" + type + (imatrix ? "-imatrix" : "") + ".gguf");
    std::vector<std::string> argv = {Bin("quantfleet"), "quantize"};
    if (imatrix) argv.insert(argv.end(), {"--imatrix", Imatrix()});
    argv.insert(argv.end(), {Model(), out, type});
    ProcessResult r = RunProcess(argv, absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return ReadFile(out);
  }

  void ExpectSameBytes(const std::string& out, const std::string& type, bool imatrix) {
    const std::vector<uint8_t> got = ReadFile(Out(out));
    const std::vector<uint8_t> want = Reference(type, imatrix);
    ASSERT_FALSE(want.empty());
    EXPECT_TRUE(got == want) << "cluster output " << out << " differs from `quantfleet quantize` (" << got.size()
                             << " vs " << want.size() << " bytes)";
  }

  std::string dir_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::vector<std::string> cli_extra_;  // flags every CLI call gets
};

}  // namespace quantfleet

#endif  // QUANTFLEET_TESTS_INTEGRATION_CLUSTER_FIXTURE_H_
