// The bounds on what peers send, at the edge: each refusal names the field
// and its limit; wire offsets cannot overflow; long reasons are cut, not
// refused, and stay valid UTF-8.
#include "coordinator/request_limits.h"

#include <gtest/gtest.h>

#include <limits>

namespace quantfleet {
namespace {

namespace v1 = quantfleet::v1;

TEST(RequestLimits, ByteRangesThatOverflowOrAreEmpty_AreOutOfRange) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_TRUE(CheckByteRange(0, 1).ok());
  EXPECT_TRUE(CheckByteRange(kMax - 100, 100).ok());
  for (auto [offset, length] : std::vector<std::pair<int64_t, int64_t>>{{kMax - 5, 100},
                                                                        {0, -1},
                                                                        {0, 0},
                                                                        {-1, 10},
                                                                        {kMax, 1},
                                                                        {1, kMax},
                                                                        {std::numeric_limits<int64_t>::min(), 5}}) {
    absl::Status s = CheckByteRange(offset, length);
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << offset << " +" << length;
  }
}

TEST(RequestLimits, OversizedWorkerStrings_AreRefusedByName) {
  v1::WorkerInfo w;
  w.set_name("rig-1");
  w.set_incarnation("abc");
  EXPECT_TRUE(CheckWorkerInfo(w).ok());
  v1::WorkerInfo nameless = w;
  nameless.clear_name();
  EXPECT_EQ(CheckWorkerInfo(nameless).message(), "the worker has no name");
  v1::WorkerInfo long_name = w;
  long_name.set_name(std::string(1 << 20, 'x'));
  absl::Status s = CheckWorkerInfo(long_name);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "the worker name is 1048576 bytes long; the limit is 128");
  v1::WorkerInfo many_types = w;
  for (int i = 0; i < 5000; ++i) many_types.add_types("Q4_K");
  EXPECT_NE(CheckWorkerInfo(many_types).message().find("a type name has 5000 entries"), std::string::npos);
  v1::WorkerInfo gpu = w;
  gpu.add_gpus()->set_name(std::string(200, 'g'));
  EXPECT_NE(CheckWorkerInfo(gpu).message().find("a GPU name is 200 bytes"), std::string::npos);
}

TEST(RequestLimits, OversizedSubmitFields_AreRefusedByName) {
  v1::SubmitJobRequest r;
  r.set_input("/models/in.gguf");
  r.set_output("/models/out.gguf");
  r.mutable_options()->set_file_type("Q4_K_M");
  EXPECT_TRUE(CheckSubmitRequest(r).ok());
  v1::SubmitJobRequest id = r;
  id.set_request_id(std::string(300, 'i'));
  EXPECT_NE(CheckSubmitRequest(id).message().find("the request id is 300 bytes"), std::string::npos);
  v1::SubmitJobRequest kv = r;
  kv.mutable_options()->add_override_kv(std::string(5000, 'k'));
  EXPECT_NE(CheckSubmitRequest(kv).message().find("an --override-kv is 5000 bytes"), std::string::npos);
  v1::SubmitJobRequest text = r;
  text.mutable_calibration()->set_text(std::string(10000, 't'));
  EXPECT_NE(CheckSubmitRequest(text).message().find("the calibration text path"), std::string::npos);
}

TEST(RequestLimits, LongReasons_AreCutAtACharacterBoundary) {
  EXPECT_EQ(ClipReason("out of memory"), "out of memory");
  std::string reason(kMaxReasonBytes - 12, 'a');
  for (int i = 0; i < 1000; ++i) reason += "\xc3\xa9";  // U+00E9, two bytes each
  const std::string cut = ClipReason(reason);
  EXPECT_LE(cut.size(), kMaxReasonBytes);
  EXPECT_TRUE(cut.ends_with(" [... cut]"));
  const std::string kept = cut.substr(0, cut.size() - std::string(" [... cut]").size());
  // Whole characters only: no lead byte without its continuation.
  EXPECT_NE(static_cast<unsigned char>(kept.back()), 0xC3);
  EXPECT_EQ(ClipReason(std::string(3500000, 'r')).size(), kMaxReasonBytes);
}

}  // namespace
}  // namespace quantfleet
