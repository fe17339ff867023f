// Conformance: `quantfleet quantize` against llama.cpp's own llama-quantize
// (pinned, from the npm registry; see fetch_oracle.sh) on generated models.
// Every case runs both tools with the same arguments and requires the same
// exit status and, on success, zero differing bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/gguf/gguf_file.h"
#include "tests/conformance/oracle.h"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

std::string WorkDir() { return EnvOr("QUANTFLEET_CONFORMANCE_DIR", QUANTFLEET_DEFAULT_CONFORMANCE_DIR); }

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Where the first difference falls: the header, or a named tensor.
std::string DescribeOffset(const std::vector<uint8_t>& file, size_t offset) {
  absl::StatusOr<GgufFile> f = GgufFile::Parse(file.data(), file.size(), "ours");
  if (!f.ok()) return "unparseable output: " + std::string(f.status().message());
  if (offset < f->data_offset()) return "in the header";
  for (const GgufTensorInfo& t : f->tensors()) {
    const size_t start = f->data_offset() + t.offset;
    if (offset >= start && offset < start + t.nbytes) {
      return absl::StrFormat("in tensor '%s' (%s) at byte %d", t.name, TypeName(t.type), offset - start);
    }
  }
  return "in padding";
}

struct Model {
  std::string file;  // file name under the work dir
  TestModelSpec spec;
  std::string imatrix;  // file name, or empty
  ImatrixFormat imatrix_format = ImatrixFormat::kGguf;
};

const std::map<std::string, Model>& Models() {
  static const auto* models = [] {
    auto* m = new std::map<std::string, Model>;
    Model a{"a-f32.gguf", {}, "a-imatrix.gguf"};
    a.spec.n_layer = 2;
    a.spec.seed = 11;
    (*m)["a"] = a;
    Model b{"b-f16-tied-shuffled.gguf", {}, "b-imatrix.dat", ImatrixFormat::kLegacy};
    b.spec.n_layer = 8;
    b.spec.type = GgmlType::kF16;
    b.spec.tied_output = true;
    b.spec.shuffle = true;
    b.spec.n_head = 8;
    b.spec.n_head_kv = 2;
    b.spec.seed = 12;
    (*m)["b"] = b;
    Model c{"c-bf16-odd.gguf", {}, "c-imatrix.gguf"};
    c.spec.n_layer = 3;
    c.spec.type = GgmlType::kBF16;
    c.spec.n_embd = 288;
    c.spec.n_ff = 416;
    c.spec.n_head = 4;
    c.spec.n_head_kv = 1;
    c.spec.n_vocab = 200;
    c.spec.seed = 13;
    (*m)["c"] = c;
    Model d{"d-split-00001-of-00003.gguf", {}, ""};
    d.spec.n_layer = 4;
    d.spec.type = GgmlType::kF16;
    d.spec.n_split = 3;
    d.spec.shuffle = true;
    d.spec.seed = 14;
    (*m)["d"] = d;
    Model f{"f-moe8.gguf", {}, "f-imatrix.gguf"};
    f.spec.n_layer = 2;
    f.spec.n_expert = 8;
    f.spec.n_ff = 256;
    f.spec.type = GgmlType::kF16;
    f.spec.seed = 16;
    (*m)["f"] = f;
    Model g{"g-80-layers-gqa.gguf", {}, ""};
    g.spec.n_layer = 80;
    g.spec.n_ff = 256;
    g.spec.n_head = 8;
    g.spec.n_head_kv = 2;
    g.spec.n_vocab = 64;
    g.spec.type = GgmlType::kF16;
    g.spec.outliers = false;
    g.spec.seed = 17;
    (*m)["g"] = g;
    Model e{"e-align64.gguf", {}, ""};
    e.spec.n_layer = 1;
    e.spec.alignment = 64;
    e.spec.seed = 15;
    (*m)["e"] = e;
    return m;
  }();
  return *models;
}

// Generates a model (and its imatrix) once; concurrent test processes
// write to temporary names and rename, so they never see half a file.
std::string EnsureModel(const std::string& key, std::string* imatrix_path) {
  const Model& m = Models().at(key);
  const std::string path = WorkDir() + "/" + m.file;
  const std::string marker = path + ".ready";
  if (!fs::exists(marker)) {
    const std::string tmp = absl::StrFormat("%s/tmp-%d-%s", WorkDir(), getpid(), key);
    fs::create_directories(tmp);
    const std::string tmp_path = tmp + "/" + m.file;
    EXPECT_TRUE(WriteTestModel(m.spec, tmp_path).ok());
    if (!m.imatrix.empty()) {
      EXPECT_TRUE(WriteTestImatrix(m.spec, tmp + "/" + m.imatrix, m.imatrix_format, m.spec.seed + 100).ok());
    }
    for (const auto& entry : fs::directory_iterator(tmp)) {
      fs::rename(entry.path(), WorkDir() + "/" + entry.path().filename().string());
    }
    fs::remove_all(tmp);
    std::ofstream(marker) << "ok\n";
  }
  if (imatrix_path) *imatrix_path = m.imatrix.empty() ? "" : WorkDir() + "/" + m.imatrix;
  return path;
}

struct Case {
  std::string name;
  std::string model;
  std::string type;
  std::vector<std::string> args;  // "@imatrix" is replaced by the model's imatrix
  bool expect_failure = false;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

class Conformance : public ::testing::TestWithParam<Case> {};

TEST_P(Conformance, SameBytesAsLlamaQuantize) {
  const Case& c = GetParam();
  ASSERT_TRUE(fs::exists(OracleDir() + "/llama-quantize")) << "the oracle is missing; run fetch_oracle.sh";
  std::string imatrix;
  std::string input = EnsureModel(c.model, &imatrix);
  const std::string out_dir = absl::StrFormat("%s/out-%s", WorkDir(), c.name);
  fs::remove_all(out_dir);
  fs::create_directories(out_dir);
  if (c.type == "requantize-source") {
    // Requantization cases start from a Q8_0 file made by the oracle.
    const std::string q8 = out_dir + "/source-q8_0.gguf";
    ProcessResult r = RunProcess({OracleDir() + "/llama-quantize", input, q8, "Q8_0"}, absl::Minutes(2));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    input = q8;
  }
  std::vector<std::string> args;
  for (const std::string& a : c.args) args.push_back(a == "@imatrix" ? imatrix : a);
  const std::string type = c.type == "requantize-source" ? c.args.back() : c.type;
  if (c.type == "requantize-source") args.pop_back();
  auto run = [&](const std::vector<std::string>& tool, const std::string& out) {
    std::vector<std::string> argv = tool;
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {input, out, type, "2"});
    return RunProcess(argv, absl::Minutes(2));
  };
  const std::string ours_path = out_dir + "/ours.gguf";
  const std::string ref_path = out_dir + "/ref.gguf";
  ProcessResult ours = run({BinDir() + "/quantfleet", "quantize"}, ours_path);
  ProcessResult ref = run({OracleDir() + "/llama-quantize"}, ref_path);
  ASSERT_FALSE(ours.timed_out) << "quantfleet timed out";
  ASSERT_FALSE(ref.timed_out) << "llama-quantize timed out";
  if (c.expect_failure) {
    EXPECT_EQ(ref.exit_code, 1) << "the oracle was expected to refuse this:\n" << ref.output;
    EXPECT_EQ(ours.exit_code, 1) << ours.output;
    EXPECT_FALSE(fs::exists(ours_path)) << "a failed run must leave no output file";
    EXPECT_NE(ours.output.find("quantfleet quantize: "), std::string::npos) << ours.output;
    return;
  }
  ASSERT_EQ(ref.exit_code, 0) << "oracle failed:\n" << ref.output;
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  const std::vector<uint8_t> a = ReadFile(ours_path);
  const std::vector<uint8_t> b = ReadFile(ref_path);
  ASSERT_FALSE(b.empty());
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (ia != a.end() || ib != b.end()) {
    const size_t off = static_cast<size_t>(ia - a.begin());
    FAIL() << absl::StrFormat("outputs differ: sizes %d vs %d, first difference at byte %d %s", a.size(), b.size(), off,
                              DescribeOffset(a, off));
  }
  fs::remove_all(out_dir);
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  const std::vector<std::string> all_types = {"Q4_0",   "Q4_1",   "Q5_0",   "Q5_1",   "Q8_0",   "Q2_K",   "Q2_K_S",
                                              "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M",
                                              "Q6_K",   "IQ4_NL", "IQ4_XS", "F16",    "BF16",   "F32",    "COPY"};
  auto id = [](std::string s) {
    for (char& ch : s) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    return s;
  };
  for (const std::string& t : all_types) {
    // Q2_K_S cannot run without an importance matrix: both tools refuse.
    cases.push_back({"a_" + id(t), "a", t, {}, t == "Q2_K_S"});
    if (t != "COPY" && t != "F16" && t != "BF16" && t != "F32") {
      cases.push_back({"a_imatrix_" + id(t), "a", t, {"--imatrix", "@imatrix"}});
    }
  }
  for (const char* t : {"Q4_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "Q8_0", "F16"}) {
    cases.push_back({"b_" + id(t), "b", t, {}});
    cases.push_back({"b_dat_imatrix_" + id(t), "b", t, {"--imatrix", "@imatrix"}});
  }
  for (const char* t :
       {"Q4_0", "Q4_1", "Q2_K", "Q3_K_S", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS", "Q8_0", "BF16"}) {
    cases.push_back({"c_fallback_" + id(t), "c", t, {}});
  }
  cases.push_back({"c_fallback_imatrix_Q4_K_M", "c", "Q4_K_M", {"--imatrix", "@imatrix"}});
  for (const char* t : {"Q4_K_M", "Q8_0", "IQ4_XS", "COPY"}) cases.push_back({"d_split_" + id(t), "d", t, {}});
  for (const char* t : {"Q8_0", "Q4_K_S"}) cases.push_back({"e_align64_" + id(t), "e", t, {}});
  // Mixture of 8 experts: expert-count rules, 3D tensors, per-expert imatrix.
  for (const char* t : {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_S", "IQ4_XS", "Q8_0"}) {
    cases.push_back({"f_moe_" + id(t), "f", t, {}});
    cases.push_back({"f_moe_imatrix_" + id(t), "f", t, {"--imatrix", "@imatrix"}});
  }
  // 80 layers with grouped-query attention: the 70B rule for attention V.
  for (const char* t : {"Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"})
    cases.push_back({"g_70b_" + id(t), "g", t, {}});
  // Options of llama-quantize.
  cases.push_back({"opt_pure", "b", "Q4_K_M", {"--pure"}});
  cases.push_back({"opt_leave_output", "a", "Q4_K_M", {"--leave-output-tensor"}});
  cases.push_back({"opt_output_and_embedding_types",
                   "a",
                   "Q5_K_M",
                   {"--output-tensor-type", "q8_0", "--token-embedding-type", "Q4_K"}});
  cases.push_back({"opt_tensor_type",
                   "b",
                   "Q4_K_S",
                   {"--tensor-type", "attn_v=q8_0", "--tensor-type", "blk\\.[0-3]\\.ffn_down=Q6_K"}});
  cases.push_back({"opt_override_kv",
                   "a",
                   "Q6_K",
                   {"--override-kv", "general.name=str:renamed", "--override-kv", "test.count=int:-42", "--override-kv",
                    "test.ratio=float:1.5", "--override-kv", "test.flag=bool:false"}});
  cases.push_back({"opt_include_weights",
                   "b",
                   "Q4_K_M",
                   {"--imatrix", "@imatrix", "--include-weights", "ffn_down", "--include-weights", "attn_v"}});
  cases.push_back({"opt_exclude_weights", "a", "IQ4_XS", {"--imatrix", "@imatrix", "--exclude-weights", "blk.1."}});
  cases.push_back({"opt_q2ks_with_imatrix", "b", "Q2_K_S", {"--imatrix", "@imatrix"}});
  cases.push_back({"opt_requantize_Q4_0", "a", "requantize-source", {"--allow-requantize", "Q4_0"}});
  cases.push_back({"opt_requantize_Q4_K_M", "a", "requantize-source", {"--allow-requantize", "Q4_K_M"}});
  cases.push_back({"opt_requantize_refused", "a", "requantize-source", {"Q4_0"}, true});
  cases.push_back({"opt_numeric_type", "a", "15", {}});
  cases.push_back({"opt_lowercase_type", "a", "q5_k_m", {}});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllTypesAndOptions, Conformance, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// --tensor-type-file reads NAME=TYPE pairs separated by spaces or lines.
TEST(ConformanceFiles, TensorTypeFile) {
  std::string imatrix;
  const std::string input = EnsureModel("a", &imatrix);
  const std::string dir = WorkDir() + "/out-tensor-type-file";
  fs::create_directories(dir);
  std::ofstream(dir + "/types.txt") << "attn_q=q8_0\nffn_up=q5_k  blk\\.1\\.ffn_down=iq4_nl\n";
  auto run = [&](std::vector<std::string> tool, const std::string& out) {
    tool.insert(tool.end(), {"--tensor-type-file", dir + "/types.txt", input, out, "Q3_K_M", "2"});
    return RunProcess(tool, absl::Minutes(2));
  };
  ProcessResult ref = run({OracleDir() + "/llama-quantize"}, dir + "/ref.gguf");
  ProcessResult ours = run({BinDir() + "/quantfleet", "quantize"}, dir + "/ours.gguf");
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  EXPECT_EQ(ReadFile(dir + "/ours.gguf"), ReadFile(dir + "/ref.gguf"));
}

// --dry-run writes nothing and both tools agree that it succeeds.
TEST(ConformanceFiles, DryRunWritesNothing) {
  const std::string input = EnsureModel("a", nullptr);
  const std::string out = WorkDir() + "/dry-run-output.gguf";
  fs::remove(out);
  ProcessResult ours =
      RunProcess({BinDir() + "/quantfleet", "quantize", "--dry-run", input, out, "Q4_K_M"}, absl::Minutes(1));
  EXPECT_EQ(ours.exit_code, 0) << ours.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(ours.output.find("blk.1.ffn_down.weight"), std::string::npos) << ours.output;
}

}  // namespace
}  // namespace quantfleet
