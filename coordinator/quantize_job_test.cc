// The quantization job kind's pure parts: cutting a plan into tasks.
#include "coordinator/quantize_job.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/quant/file_type.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

TEST(CutTasks, CoverEveryRowOnceAndNeverCrossAnExpert) {
  const std::string dir = fs::temp_directory_path() / absl::StrFormat("qf-cut-%d", getpid());
  fs::create_directories(dir);
  TestModelSpec spec;
  spec.n_layer = 1;
  spec.n_expert = 4;
  ASSERT_TRUE(WriteTestModel(spec, dir + "/moe.gguf").ok());
  absl::StatusOr<GgufModel> model = GgufModel::Open(dir + "/moe.gguf");
  ASSERT_TRUE(model.ok());
  QuantizeOptions o;
  o.file_type = *ParseFileType("Q4_K_M");
  absl::StatusOr<QuantizePlan> plan = BuildQuantizePlan(*model, o, nullptr, false);
  ASSERT_TRUE(plan.ok());
  const std::vector<TaskDef> tasks = CutTasks(*plan, 4096);
  uint64_t covered = 0;
  for (const TaskDef& t : tasks) {
    const PlannedTensor& p = plan->tensors[t.unit];
    EXPECT_EQ(t.first_row / p.output.ne[1], (t.first_row + t.n_rows - 1) / p.output.ne[1]) << p.output.name;
    covered += t.result_bytes;
  }
  EXPECT_EQ(covered, plan->output_bytes);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantfleet
