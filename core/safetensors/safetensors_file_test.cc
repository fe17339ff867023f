// The safetensors reader: what a valid file and checkpoint give, and one
// test per refusal, each asserting the message names what is wrong.
#include "core/safetensors/safetensors_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/safetensors/safetensors_checkpoint.h"

namespace quantfleet {
namespace {

// A file: the header's length, the header, the data.
std::string File(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string ErrorOf(const std::string& bytes) {
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Parse("x.safetensors", bytes);
  EXPECT_FALSE(f.ok()) << "accepted: " << bytes.substr(8);
  if (f.ok()) return "";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("x.safetensors"), std::string::npos) << f.status().message();
  return std::string(f.status().message());
}

#define EXPECT_REFUSED(bytes, words) EXPECT_NE(ErrorOf(bytes).find(words), std::string::npos) << ErrorOf(bytes)

TEST(SafetensorsFile, ValidFile_GivesEveryTensorInByteOrderWithItsData) {
  const std::string header = R"({"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[8,20]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("__metadata__":{"format":"pt"}})"
                             "    ";  // padding spaces are allowed
  std::string data(20, '\0');
  const float a[2] = {1.5f, -2.0f};
  std::memcpy(data.data(), a, sizeof(a));
  data[8] = 0x7f;
  const std::string bytes = File(header, data);
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Parse("x.safetensors", bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "a");
  EXPECT_EQ(f->tensors()[1].name, "b");
  const SafetensorsTensor* b = f->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, SafetensorsDtype::kBF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->elements(), 6);
  EXPECT_EQ(b->nbytes, 12u);
  EXPECT_EQ(b->offset, 8 + header.size() + 8);
  EXPECT_EQ(b->data[0], 0x7f);
  float got[2];
  std::memcpy(got, f->Find("a")->data, sizeof(got));
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], -2.0f);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->Find("c"), nullptr);
}

TEST(SafetensorsFile, EveryDtype_IncludingFloat8_IsKnownWithItsSize) {
  for (auto [name, bytes] : std::vector<std::pair<std::string, size_t>>{{"F8_E4M3", 1},
                                                                        {"F8_E5M2", 1},
                                                                        {"BF16", 2},
                                                                        {"F16", 2},
                                                                        {"F32", 4},
                                                                        {"F64", 8},
                                                                        {"I64", 8},
                                                                        {"U8", 1},
                                                                        {"BOOL", 1},
                                                                        {"I32", 4},
                                                                        {"U16", 2}}) {
    std::optional<SafetensorsDtype> d = ParseSafetensorsDtype(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(SafetensorsDtypeBytes(*d), bytes) << name;
    EXPECT_EQ(SafetensorsDtypeName(*d), name);
  }
  EXPECT_FALSE(ParseSafetensorsDtype("F4").has_value());
}

TEST(SafetensorsFile, EmptyTensorsAndNoTensors_AreValid) {
  EXPECT_TRUE(SafetensorsFile::Parse("x", File("{}", "")).ok());
  EXPECT_TRUE(
      SafetensorsFile::Parse("x", File(R"({"e":{"dtype":"F16","shape":[0,4],"data_offsets":[0,0]}})", "")).ok());
}

TEST(SafetensorsFile, TruncatedOrOversizedHeaders_AreRefused) {
  EXPECT_REFUSED(std::string("\x05\0\0", 3), "shorter than the 8-byte header length");
  EXPECT_REFUSED(File("{}", "").substr(0, 9), "only 1 follow");
  std::string huge(8, '\0');
  huge[4] = 1;  // 2^32 bytes
  EXPECT_REFUSED(huge + "{}", "over the format's limit");
  EXPECT_REFUSED(File("[1]", ""), "does not start with '{'");
  EXPECT_REFUSED(File("{\"a\":", ""), "not valid JSON");
  EXPECT_REFUSED(File("{} trailing", ""), "not valid JSON");
}

TEST(SafetensorsFile, MalformedEntries_AreRefusedNamingTheTensor) {
  const std::string d8(8, '\0');
  EXPECT_REFUSED(
      File(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
          d8),
      "names 'a' twice");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", d8),
                 "tensor 'a': unknown field 'extra'");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2]}})", d8),
                 "tensor 'a': it needs dtype, shape and data_offsets");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", d8),
                 "tensor 'a': unknown dtype \"Q4\"");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8), "not a non-negative integer");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", d8), "not a non-negative integer");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", d8),
                 "overflows");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8), "run backwards");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
                 "hold 8 bytes, but F32 of shape [3] is 12");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8), "run past the 8 bytes");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8), "not [begin, end]");
  EXPECT_REFUSED(File(R"({"a":[1,2]})", d8), "tensor 'a': its entry is not an object");
  EXPECT_REFUSED(File(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8), "empty name");
  EXPECT_REFUSED(File(R"({"__metadata__":{"k":1}})", ""), "__metadata__ 'k' is not a string");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[[[[2]]]],"data_offsets":[0,8]}})", d8), "nests deeper");
  // A huge product that a zero would bring back to nothing is still refused.
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[3,3074457345618258603,0],"data_offsets":[0,0]}})", ""),
                 "overflows");
  // Deep nesting is refused at once, however long the header is.
  EXPECT_REFUSED(File("{\"a\":" + std::string(1 << 20, '['), ""), "nests deeper than 3 levels");
}

TEST(SafetensorsFile, OverlapsHolesAndTrailingBytes_AreRefused) {
  const std::string d16(16, '\0');
  EXPECT_REFUSED(
      File(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
          d16),
      "overlaps");
  EXPECT_REFUSED(
      File(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
          d16),
      "bytes 8-12 of the data belong to no tensor");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d16), "the last 8 bytes");
  EXPECT_REFUSED(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d16), "bytes 0-8 of the data");
}

class SafetensorsCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("st-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::string Tensor(const std::string& name) {
    return File("{\"" + name + R"(":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\1'));
  }
  std::string Error() {
    absl::StatusOr<SafetensorsCheckpoint> c = SafetensorsCheckpoint::Open(dir_.string());
    EXPECT_FALSE(c.ok());
    return c.ok() ? "" : std::string(c.status().message());
  }
  std::filesystem::path dir_;
};

TEST_F(SafetensorsCheckpointTest, SingleFile_IsRead) {
  Write("model.safetensors", Tensor("w"));
  absl::StatusOr<SafetensorsCheckpoint> c = SafetensorsCheckpoint::Open(dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tensors().size(), 1u);
  EXPECT_EQ(c->Find("w")->data[0], 1);
  EXPECT_EQ(c->ShardOf(*c->Find("w")), &c->shards()[0]);
  const SafetensorsTensor stranger = *c->Find("w");  // a copy: not one of its tensors
  EXPECT_EQ(c->ShardOf(stranger), nullptr);
}

TEST_F(SafetensorsCheckpointTest, ShardsOfAnIndex_AreReadInNameOrder) {
  Write("model-00002-of-00002.safetensors", Tensor("b"));
  Write("model-00001-of-00002.safetensors", Tensor("a"));
  Write(
      "model.safetensors.index.json",
      R"({"metadata":{"total_size":16},"weight_map":{"b":"model-00002-of-00002.safetensors","a":"model-00001-of-00002.safetensors"}})");
  absl::StatusOr<SafetensorsCheckpoint> c = SafetensorsCheckpoint::Open(dir_.string());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tensors().size(), 2u);
  EXPECT_EQ(c->tensors()[0]->name, "a");
  EXPECT_EQ(c->tensors()[1]->name, "b");
  EXPECT_EQ(c->ShardOf(*c->Find("b")), &c->shards()[1]);
}

TEST_F(SafetensorsCheckpointTest, BadIndexes_AreRefusedNamingTheShardOrTensor) {
  EXPECT_NE(Error().find("not a safetensors checkpoint"), std::string::npos);
  Write("model.safetensors.index.json", R"({"weight_map":{"a":"model-00001-of-00002.safetensors"}})");
  EXPECT_NE(Error().find("lists shard model-00001-of-00002.safetensors, which is missing"), std::string::npos);
  Write("model.safetensors.index.json", R"({"weight_map":{"a":"../model.safetensors"}})");
  EXPECT_NE(Error().find("not a file name in the folder"), std::string::npos);
  Write("model.safetensors.index.json", "{\"weight_map\": 3}");
  EXPECT_NE(Error().find("no \"weight_map\" object"), std::string::npos);
  Write("model.safetensors.index.json", "not json");
  EXPECT_NE(Error().find("is not valid JSON"), std::string::npos);
  Write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}})");
  EXPECT_NE(Error().find("names 'a' twice"), std::string::npos);
  Write("s1.safetensors", Tensor("a"));
  Write("s2.safetensors", Tensor("b"));
  Write("model.safetensors.index.json", R"({"weight_map":{"a":"s2.safetensors","b":"s2.safetensors"}})");
  EXPECT_NE(Error().find("tensor 'a' is placed in s2.safetensors, which does not hold it"), std::string::npos);
  Write("s2.safetensors", Tensor("a"));
  Write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  EXPECT_NE(Error().find("tensor 'a' is in both s1.safetensors and s2.safetensors"), std::string::npos);
  Write("s2.safetensors", "garbage");
  EXPECT_NE(Error().find("s2.safetensors: not a valid safetensors file"), std::string::npos);
}

}  // namespace
}  // namespace quantfleet
