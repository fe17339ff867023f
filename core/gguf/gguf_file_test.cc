#include "core/gguf/gguf_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/gguf/gguf_writer.h"

namespace quantfleet {
namespace {

// Builds GGUF bytes field by field, so each test can break one field.
class Bytes {
 public:
  template <typename T>
  Bytes& Put(T v) {
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Raw(const std::string& s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Header(uint32_t version, int64_t n_tensors, int64_t n_kv) {
    return Raw("GGUF").Put<uint32_t>(version).Put<int64_t>(n_tensors).Put<int64_t>(n_kv);
  }
  Bytes& KvU32(const std::string& key, uint32_t v) { return Str(key).Put<uint32_t>(4).Put<uint32_t>(v); }
  Bytes& Tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    Str(name).Put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) Put<int64_t>(d);
    return Put<uint32_t>(type).Put<uint64_t>(offset);
  }
  Bytes& PadTo(size_t alignment) {
    while (b_.size() % alignment) b_.push_back(0);
    return *this;
  }
  Bytes& Zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  const std::vector<uint8_t>& data() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

absl::StatusOr<GgufFile> Parse(const Bytes& b) { return GgufFile::Parse(b.data().data(), b.data().size(), "m.gguf"); }

void ExpectInvalid(const Bytes& b, const std::string& needle) {
  absl::StatusOr<GgufFile> f = Parse(b);
  ASSERT_FALSE(f.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(f.status().message()).find(needle), std::string::npos) << f.status().message();
  EXPECT_NE(std::string(f.status().message()).find("m.gguf"), std::string::npos) << "error must name the file";
}

// One f32 tensor of 8 elements, correctly laid out.
Bytes ValidOneTensor() {
  Bytes b;
  b.Header(3, 1, 1).KvU32("general.x", 7).Tensor("t", {8}, 0, 0).PadTo(32).Zeros(32);
  return b;
}

TEST(GgufFile, ValidFile_ParsesKvAndTensor) {
  absl::StatusOr<GgufFile> f = Parse(ValidOneTensor());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->kv().size(), 1u);
  EXPECT_EQ(f->kv()[0].GetU32(), 7u);
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].nbytes, 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
}

TEST(GgufFile, Version2_IsAccepted) {
  Bytes b;
  b.Header(2, 0, 0);
  EXPECT_TRUE(Parse(b).ok());
}

TEST(GgufFile, BadMagic_IsRejected) {
  Bytes b;
  b.Raw("GGML").Put<uint32_t>(3).Put<int64_t>(0).Put<int64_t>(0);
  ExpectInvalid(b, "not a GGUF file");
}

TEST(GgufFile, EmptyFile_IsRejected) { ExpectInvalid(Bytes(), "not a GGUF file"); }

TEST(GgufFile, Versions0And1_AreRejected) {
  for (uint32_t v : {0u, 1u}) {
    Bytes b;
    b.Header(v, 0, 0);
    ExpectInvalid(b, "not supported");
  }
}

TEST(GgufFile, FutureVersion_IsRejected) {
  Bytes b;
  b.Header(4, 0, 0);
  ExpectInvalid(b, "newer than the supported version");
}

TEST(GgufFile, ByteSwappedVersion_IsRejected) {
  Bytes b;
  b.Header(0x03000000, 0, 0);
  ExpectInvalid(b, "byte-swapped");
}

TEST(GgufFile, TruncatedHeader_IsRejected) {
  Bytes b;
  b.Raw("GGUF").Put<uint32_t>(3).Put<int32_t>(0);
  ExpectInvalid(b, "file ends inside tensor count");
}

TEST(GgufFile, HugeCounts_AreRejectedBeforeAllocating) {
  for (int64_t n : {std::numeric_limits<int64_t>::max(), int64_t{-1}, int64_t{1} << 40}) {
    Bytes t;
    t.Header(3, n, 0);
    ExpectInvalid(t, "tensor count");
    Bytes k;
    k.Header(3, 0, n);
    ExpectInvalid(k, "key-value count");
  }
}

TEST(GgufFile, KeyLengthPastEnd_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Put<uint64_t>(1000).Raw("abc");
  ExpectInvalid(b, "runs past the end of the file");
}

TEST(GgufFile, StringValuePastEnd_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(8).Put<uint64_t>(std::numeric_limits<uint64_t>::max() / 2);
  ExpectInvalid(b, "exceeds the limit");
}

TEST(GgufFile, EmptyKey_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).KvU32("", 1);
  ExpectInvalid(b, "is empty");
}

TEST(GgufFile, DuplicateKey_IsRejected) {
  Bytes b;
  b.Header(3, 0, 2).KvU32("a", 1).KvU32("a", 2);
  ExpectInvalid(b, "duplicate key 'a'");
}

TEST(GgufFile, InvalidValueType_IsRejected) {
  for (uint32_t type : {13u, 9999u}) {
    Bytes b;
    b.Header(3, 0, 1).Str("k").Put<uint32_t>(type).Put<uint32_t>(0);
    ExpectInvalid(b, "invalid value type");
  }
}

TEST(GgufFile, NestedArray_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(9).Put<uint64_t>(1);
  ExpectInvalid(b, "nested arrays");
}

TEST(GgufFile, ArrayPastEnd_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(1000).Put<uint32_t>(1);
  ExpectInvalid(b, "run past the end of the file");
}

TEST(GgufFile, StringArrayCountTooLarge_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(1u << 29).Str("x");
  ExpectInvalid(b, "strings cannot fit");
}

TEST(GgufFile, ArrayLongerThanLimit_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(9).Put<uint32_t>(0).Put<uint64_t>(uint64_t{1} << 31);
  ExpectInvalid(b, "exceeds the limit");
}

TEST(GgufFile, BoolValues_AreNormalised) {
  Bytes b;
  b.Header(3, 0, 1).Str("k").Put<uint32_t>(7).Put<uint8_t>(2);
  absl::StatusOr<GgufFile> f = Parse(b);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->kv()[0].raw[0], 1);
}

TEST(GgufFile, AlignmentZero_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).KvU32("general.alignment", 0);
  ExpectInvalid(b, "not a power of two");
}

TEST(GgufFile, AlignmentNotPowerOfTwo_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).KvU32("general.alignment", 48);
  ExpectInvalid(b, "not a power of two");
}

TEST(GgufFile, AlignmentOfWrongType_IsRejected) {
  Bytes b;
  b.Header(3, 0, 1).Str("general.alignment").Put<uint32_t>(10).Put<uint64_t>(32);
  ExpectInvalid(b, "must be a u32");
}

TEST(GgufFile, AlignmentIsHonoured) {
  Bytes b;
  b.Header(3, 1, 1).KvU32("general.alignment", 64).Tensor("t", {8}, 0, 0).PadTo(64).Zeros(64);
  absl::StatusOr<GgufFile> f = Parse(b);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GgufFile, TensorNameTooLong_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor(std::string(64, 'n'), {8}, 0, 0).PadTo(32).Zeros(32);
  ExpectInvalid(b, "name is 64 bytes long");
}

TEST(GgufFile, TensorNameOf63Bytes_IsAccepted) {
  Bytes b;
  b.Header(3, 1, 0).Tensor(std::string(63, 'n'), {8}, 0, 0).PadTo(32).Zeros(32);
  EXPECT_TRUE(Parse(b).ok());
}

TEST(GgufFile, DuplicateTensorName_IsRejected) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("t", {8}, 0, 0).Tensor("t", {8}, 0, 32).PadTo(32).Zeros(64);
  ExpectInvalid(b, "duplicate tensor name 't'");
}

TEST(GgufFile, MoreThanFourDims_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("t", {1, 1, 1, 1, 8}, 0, 0).PadTo(32).Zeros(32);
  ExpectInvalid(b, "has 5 dimensions");
}

TEST(GgufFile, NegativeDimension_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("t", {8, -1}, 0, 0);
  ExpectInvalid(b, "is negative");
}

TEST(GgufFile, ElementCountOverflow_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("t", {int64_t{1} << 40, int64_t{1} << 40}, 0, 0);
  ExpectInvalid(b, "too many elements");
}

TEST(GgufFile, ByteSizeOverflow_IsRejected) {
  Bytes b;
  // 2^61 f64 elements: the count fits in int64 but the bytes do not fit in size_t.
  b.Header(3, 1, 0).Tensor("t", {int64_t{1} << 61}, 28, 0);
  ExpectInvalid(b, "byte size overflows");
}

TEST(GgufFile, UnknownTypeIds_AreRejected) {
  for (uint32_t type : {4u, 31u, 43u, 1000u}) {
    Bytes b;
    b.Header(3, 1, 0).Tensor("t", {32}, type, 0);
    ExpectInvalid(b, "unknown type id");
  }
}

TEST(GgufFile, RowNotMultipleOfBlock_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("t", {33}, 2, 0);
  ExpectInvalid(b, "not a multiple of its block size 32");
}

TEST(GgufFile, ZeroElementTensor_IsValid) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("empty", {0, 4}, 0, 0).Tensor("t", {8}, 0, 0).PadTo(32).Zeros(32);
  absl::StatusOr<GgufFile> f = Parse(b);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->tensors()[0].nbytes, 0u);
}

TEST(GgufFile, OffsetGap_IsRejected) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("a", {8}, 0, 0).Tensor("b", {8}, 0, 64).PadTo(32).Zeros(128);
  ExpectInvalid(b, "tensor 'b' has data offset 64, expected 32");
}

TEST(GgufFile, OffsetOverlap_IsRejected) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("a", {16}, 0, 0).Tensor("b", {8}, 0, 32).PadTo(32).Zeros(128);
  ExpectInvalid(b, "tensor 'b' has data offset 32, expected 64");
}

TEST(GgufFile, MisalignedOffset_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("a", {8}, 0, 4).PadTo(32).Zeros(64);
  ExpectInvalid(b, "expected 0");
}

TEST(GgufFile, TruncatedData_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("a", {64}, 0, 0).PadTo(32).Zeros(100);
  ExpectInvalid(b, "runs past the end of the file");
}

TEST(GgufFile, TensorPastEndOfFile_IsRejected) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("a", {8}, 0, 0).Tensor("b", {1 << 20}, 0, 32).PadTo(32).Zeros(64);
  ExpectInvalid(b, "tensor 'b' data");
}

TEST(GgufFile, DataSectionMissing_IsRejected) {
  Bytes b;
  b.Header(3, 1, 0).Tensor("a", {8}, 0, 0);
  ExpectInvalid(b, "data section");
}

TEST(GgufWriter, RoundTrip_PreservesMetadataAndLayout) {
  std::vector<GgufKv> kvs = {GgufKv::Str("general.name", "x"), GgufKv::U32("n", 5),
                             GgufKv::StrArray("list", {"a", "", "ccc"}),
                             GgufKv::NumArray<float>("f", GgufValueType::kFloat32, {1.5f, -2.0f})};
  std::vector<GgufTensorInfo> tensors(2);
  tensors[0].name = "w";
  tensors[0].ne[0] = 64;
  tensors[0].ne[1] = 2;
  tensors[0].type = GgmlType::kQ8_0;
  tensors[0].nbytes = TensorBytes(GgmlType::kQ8_0, tensors[0].ne);
  tensors[1].name = "v";
  tensors[1].ne[0] = 3;
  tensors[1].nbytes = 12;
  const uint64_t data_size = LayOutTensors(tensors, 32);
  EXPECT_EQ(tensors[1].offset, 160u);  // 136 bytes padded to 160
  std::vector<uint8_t> bytes = SerializeGgufMeta(kvs, tensors, 32);
  EXPECT_EQ(bytes.size() % 32, 0u);
  bytes.resize(bytes.size() + data_size);
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes.data(), bytes.size(), "rt.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->kv().size(), 4u);
  EXPECT_EQ(f->kv()[2].strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->kv()[3].raw, kvs[3].raw);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].type, GgmlType::kQ8_0);
  EXPECT_EQ(f->tensors()[1].n_dims(), 1);
  // Serialising what was parsed gives the same bytes.
  std::vector<uint8_t> again = SerializeGgufMeta(f->kv(), f->tensors(), 32);
  EXPECT_TRUE(std::equal(again.begin(), again.end(), bytes.begin()));
}

}  // namespace
}  // namespace quantfleet
