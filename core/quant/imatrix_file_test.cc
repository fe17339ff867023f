// The importance-matrix parsers on files they must take and files they must
// refuse: truncated at every offset, impossible or inconsistent counts,
// duplicate entries, non-finite values, wrong types and missing metadata.
// Each refusal is INVALID_ARGUMENT and names the file and what is wrong.
#include "core/quant/imatrix_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/gguf/gguf_writer.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

absl::StatusOr<Imatrix> Parse(const std::vector<uint8_t>& bytes) {
  return ParseImatrix(bytes.data(), bytes.size(), "test.imatrix");
}

// Asserts INVALID_ARGUMENT naming the file and containing `what`.
void ExpectRefused(const absl::StatusOr<Imatrix>& got, const std::string& what) {
  ASSERT_FALSE(got.ok()) << "accepted; expected a refusal mentioning: " << what;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  EXPECT_NE(got.status().message().find("test.imatrix"), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find(what), std::string::npos) << got.status();
}

TestModelSpec SmallModel() {
  TestModelSpec spec;
  spec.n_layer = 1;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_vocab = 64;
  return spec;
}

std::vector<uint8_t> TestImatrix(ImatrixFormat format) {
  const std::string path = ::testing::TempDir() + (format == ImatrixFormat::kGguf ? "/im.gguf" : "/im.dat");
  EXPECT_TRUE(WriteTestImatrix(SmallModel(), path, format, 5).ok());
  return ReadAll(path);
}

// Legacy .dat: [n_entries] then per entry [name_len][name][ncall][nval][nval floats].
struct LegacyWriter {
  std::vector<uint8_t> bytes;
  void I32(int32_t v) { Put(&v, 4); }
  void Put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void Entry(const std::string& name, int32_t ncall, const std::vector<float>& values) {
    I32(static_cast<int32_t>(name.size()));
    Put(name.data(), name.size());
    I32(ncall);
    I32(static_cast<int32_t>(values.size()));
    Put(values.data(), values.size() * 4);
  }
};

// A GGUF imatrix with the three metadata keys (unless `with_metadata` is
// false) and the given tensors, each a row of F32 values (or of `type`).
struct GgufTensor {
  std::string name;
  std::vector<float> values;
  GgmlType type = GgmlType::kF32;
};
std::vector<uint8_t> GgufImatrix(const std::vector<GgufTensor>& tensors, bool with_metadata = true) {
  std::vector<GgufKv> kvs = {GgufKv::Str("general.type", "imatrix")};
  if (with_metadata) {
    kvs.push_back(GgufKv::StrArray("imatrix.datasets", {"calib.txt"}));
    kvs.push_back(GgufKv::U32("imatrix.chunk_count", 4));
    kvs.push_back(GgufKv::U32("imatrix.chunk_size", 512));
  }
  std::vector<GgufTensorInfo> infos;
  for (const GgufTensor& t : tensors) {
    GgufTensorInfo info;
    info.name = t.name;
    info.type = t.type;
    info.ne[0] =
        t.type == GgmlType::kF16 ? static_cast<int64_t>(t.values.size()) * 2 : static_cast<int64_t>(t.values.size());
    info.nbytes = TensorBytes(info.type, info.ne);
    infos.push_back(info);
  }
  const uint64_t data_size = LayOutTensors(infos, kGgufDefaultAlignment);
  std::vector<uint8_t> out = SerializeGgufMeta(kvs, infos, kGgufDefaultAlignment);
  const size_t data_start = out.size();
  out.resize(data_start + data_size);
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::memcpy(out.data() + data_start + infos[i].offset, tensors[i].values.data(), tensors[i].values.size() * 4);
  }
  return out;
}

TEST(ImatrixFile, TestFilesInBothFormats_AreReadAlike) {
  absl::StatusOr<Imatrix> gguf = Parse(TestImatrix(ImatrixFormat::kGguf));
  absl::StatusOr<Imatrix> dat = Parse(TestImatrix(ImatrixFormat::kLegacy));
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  ASSERT_TRUE(dat.ok()) << dat.status();
  EXPECT_FALSE(gguf->is_legacy);
  EXPECT_TRUE(dat->is_legacy);
  ASSERT_EQ(gguf->weights.size(), dat->weights.size());
  ASSERT_GT(gguf->weights.size(), 3u);
  for (const auto& [name, w] : gguf->weights) {
    const std::vector<float>& v = dat->weights.at(name);
    ASSERT_EQ(v.size(), w.size()) << name;
    for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(v[i], w[i], 1e-5f * std::fabs(w[i])) << name << "[" << i << "]";
  }
}

TEST(ImatrixFile, GgufWeights_AreSumsOverCounts) {
  absl::StatusOr<Imatrix> m =
      Parse(GgufImatrix({{"blk.0.ffn_down.weight.in_sum2", {8, 6, 4, 2}}, {"blk.0.ffn_down.weight.counts", {4, 0}}}));
  ASSERT_TRUE(m.ok()) << m.status();
  // Two experts of two columns; the second expert saw no token: weight 1.
  EXPECT_EQ(m->weights.at("blk.0.ffn_down.weight"), (std::vector<float>{2, 1.5f, 1, 1}));
  EXPECT_EQ(m->chunk_count, 4);
  EXPECT_EQ(m->datasets, std::vector<std::string>{"calib.txt"});
}

TEST(ImatrixFile, LegacyTruncatedAtAnyOffset_IsRefused) {
  std::vector<uint8_t> whole = TestImatrix(ImatrixFormat::kLegacy);
  // The file's tail (chunk count, dataset name) is optional, as in llama.cpp;
  // any cut inside the entries is an error.
  absl::StatusOr<Imatrix> full = Parse(whole);
  ASSERT_TRUE(full.ok());
  size_t entries_end = 4;
  for (const auto& [name, w] : full->weights) entries_end += 4 + name.size() + 8 + 4 * w.size();
  for (size_t cut = 0; cut < entries_end; cut += (cut < 64 ? 1 : 97)) {
    std::vector<uint8_t> head(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    absl::StatusOr<Imatrix> got = Parse(head);
    ASSERT_FALSE(got.ok()) << "a file cut at byte " << cut << " of " << entries_end << " was accepted";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    EXPECT_NE(got.status().message().find("test.imatrix"), std::string::npos) << got.status();
  }
}

TEST(ImatrixFile, GgufTruncated_IsRefused) {
  std::vector<uint8_t> whole = TestImatrix(ImatrixFormat::kGguf);
  absl::StatusOr<GgufFile> gguf = GgufFile::Parse(whole.data(), whole.size(), "whole");
  ASSERT_TRUE(gguf.ok());
  size_t data_end = 0;  // past the last tensor's last byte (padding may follow)
  for (const GgufTensorInfo& t : gguf->tensors())
    data_end = std::max(data_end, gguf->data_offset() + t.offset + t.nbytes);
  for (size_t cut : {size_t{4}, size_t{24}, gguf->data_offset() - 1, data_end - 1}) {
    std::vector<uint8_t> head(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    absl::StatusOr<Imatrix> got = Parse(head);
    ASSERT_FALSE(got.ok()) << "cut at " << cut;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  }
}

TEST(ImatrixFile, LegacyImpossibleCounts_AreRefused) {
  LegacyWriter none;
  none.I32(0);
  ExpectRefused(Parse(none.bytes), "no entries");

  LegacyWriter long_name;
  long_name.I32(1);
  long_name.I32(1 << 30);
  ExpectRefused(Parse(long_name.bytes), "name length");

  LegacyWriter negative_name;
  negative_name.I32(1);
  negative_name.I32(-5);
  ExpectRefused(Parse(negative_name.bytes), "name length");

  LegacyWriter too_many_values;
  too_many_values.I32(1);
  too_many_values.I32(1);
  too_many_values.Put("x", 1);
  too_many_values.I32(1);
  too_many_values.I32(1000);  // 4000 bytes that are not there
  ExpectRefused(Parse(too_many_values.bytes), "impossible value count 1000");

  LegacyWriter zero_values;
  zero_values.I32(1);
  zero_values.Entry("blk.0.attn_q.weight", 1, {});
  ExpectRefused(Parse(zero_values.bytes), "impossible value count 0");
}

TEST(ImatrixFile, LegacyDuplicateEntry_IsRefused) {
  LegacyWriter w;
  w.I32(2);
  w.Entry("blk.0.attn_q.weight", 1, {1, 2});
  w.Entry("blk.0.attn_q.weight", 1, {3, 4});
  ExpectRefused(Parse(w.bytes), "'blk.0.attn_q.weight' appears twice");
}

TEST(ImatrixFile, NonFiniteValues_AreRefused) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    LegacyWriter w;
    w.I32(1);
    w.Entry("blk.0.attn_q.weight", 1, {1, bad});
    ExpectRefused(Parse(w.bytes), "entry 'blk.0.attn_q.weight' value 1");
    ExpectRefused(Parse(GgufImatrix({{"blk.0.attn_q.weight.in_sum2", {bad, 1}}, {"blk.0.attn_q.weight.counts", {1}}})),
                  "entry 'blk.0.attn_q.weight' value 0");
    ExpectRefused(Parse(GgufImatrix({{"blk.0.attn_q.weight.in_sum2", {1, 1}}, {"blk.0.attn_q.weight.counts", {bad}}})),
                  "entry 'blk.0.attn_q.weight' has a count of");
  }
  ExpectRefused(Parse(GgufImatrix({{"blk.0.attn_q.weight.in_sum2", {1, 1}}, {"blk.0.attn_q.weight.counts", {-3}}})),
                "has a count of -3");
}

TEST(ImatrixFile, GgufInconsistentEntries_AreRefused) {
  ExpectRefused(Parse(GgufImatrix({{"a.weight.in_sum2", {1, 2}}})), "entry 'a.weight' has sums without counts");
  ExpectRefused(Parse(GgufImatrix({{"a.weight.counts", {1}}})), "entry 'a.weight' has sums without counts");
  ExpectRefused(Parse(GgufImatrix({{"a.weight.in_sum2", {1, 2, 3}}, {"a.weight.counts", {1, 1}}})),
                "entry 'a.weight' has 3 sums for 2 counts");
  ExpectRefused(Parse(GgufImatrix({{"a.weight.in_sum2", {1, 2}, GgmlType::kF16}, {"a.weight.counts", {1}}})),
                "must be F32");
  ExpectRefused(Parse(GgufImatrix({{"a.weight.in_sum2", {1, 2}}, {"a.weight.counts", {1}}}, false)),
                "missing imatrix metadata");
  ExpectRefused(Parse(GgufImatrix({})), "no entries");
}

}  // namespace
}  // namespace quantfleet
