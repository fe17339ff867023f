// `quantfleet quantize` as a user runs it: bad input gets exit code 1, one
// clear line naming the file, tensor or flag, and no file at the output
// path; an existing output survives a failed run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_format.h"
#include "core/gguf/gguf_file.h"
#include "nlohmann/json.hpp"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrFormat("qf-cli-%d-%s", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    TestModelSpec spec;
    spec.n_layer = 1;
    ASSERT_TRUE(WriteTestModel(spec, Path("model.gguf")).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  ProcessResult Quantize(std::vector<std::string> args) {
    args.insert(args.begin(), {std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "quantize"});
    return RunProcess(args, absl::Minutes(1));
  }

  std::vector<uint8_t> Read(const std::string& name) {
    std::ifstream in(Path(name), std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }

  void Write(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(Path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }

  // A model the forward pass runs (2 layers, the test vocabulary) at
  // runnable.gguf, and a text of `lines` Python lines at text.txt.
  void WriteRunnableModelAndText(int lines) {
    ASSERT_TRUE(WriteTestVocab(Path("vocab.gguf")).ok());
    TestModelSpec spec;
    spec.n_layer = 2;
    spec.type = GgmlType::kF16;
    spec.vocab_from = Path("vocab.gguf");
    ASSERT_TRUE(WriteTestModel(spec, Path("runnable.gguf")).ok());
    std::ofstream text(Path("text.txt"));
    for (int i = 0; i < lines; ++i) text << "for i in range(" << i << "):\n    print(i * " << i << ")\n";
  }

  // Expects a failure whose message contains `needle`, and no output file.
  void ExpectFails(const ProcessResult& r, const std::string& needle, const std::string& out = "out.gguf") {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.output;
    EXPECT_FALSE(fs::exists(Path(out))) << "a failed run left " << out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << "temporary file left: " << e.path();
    }
  }

  fs::path dir_;
};

TEST_F(QuantizeCli, Success_WritesAValidFile) {
  ProcessResult r = Quantize({Path("model.gguf"), Path("out.gguf"), "Q4_K_M"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<uint8_t> bytes = Read("out.gguf");
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes.data(), bytes.size(), "out.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(FindKv(f->kv(), "general.file_type")->GetU32(), 15u);
}

TEST_F(QuantizeCli, MissingInput_IsNamed) {
  ExpectFails(Quantize({Path("nope.gguf"), Path("out.gguf"), "Q8_0"}), "nope.gguf: cannot open");
}

TEST_F(QuantizeCli, NotAGgufFile_IsRefused) {
  Write("bad.gguf", {'G', 'G', 'M', 'L', 1, 2, 3, 4});
  ExpectFails(Quantize({Path("bad.gguf"), Path("out.gguf"), "Q8_0"}), "bad.gguf: offset 0: not a GGUF file");
}

TEST_F(QuantizeCli, TruncatedModel_IsRefused) {
  std::vector<uint8_t> bytes = Read("model.gguf");
  bytes.resize(bytes.size() - 1000);
  Write("short.gguf", bytes);
  ExpectFails(Quantize({Path("short.gguf"), Path("out.gguf"), "Q8_0"}), "the file is truncated");
}

TEST_F(QuantizeCli, NanInSourceTensor_NamesTheTensor) {
  std::vector<uint8_t> bytes = Read("model.gguf");
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes.data(), bytes.size(), "m");
  ASSERT_TRUE(f.ok());
  const GgufTensorInfo* target = nullptr;
  for (const GgufTensorInfo& t : f->tensors()) {
    if (t.name == "blk.0.ffn_up.weight") target = &t;
  }
  ASSERT_NE(target, nullptr);
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + f->data_offset() + target->offset + 4 * 300, &nan, 4);
  Write("nan.gguf", bytes);
  ExpectFails(Quantize({Path("nan.gguf"), Path("out.gguf"), "Q4_0"}),
              "tensor 'blk.0.ffn_up.weight' has invalid data in rows 0..");
}

TEST_F(QuantizeCli, FailedRun_LeavesAnExistingOutputUntouched) {
  Write("out.gguf", {'k', 'e', 'e', 'p'});
  Write("bad.gguf", {'n', 'o', 'p', 'e'});
  ProcessResult r = Quantize({Path("bad.gguf"), Path("out.gguf"), "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Read("out.gguf"), (std::vector<uint8_t>{'k', 'e', 'e', 'p'}));
}

TEST_F(QuantizeCli, UnknownFileType_IsNamed) {
  ExpectFails(Quantize({Path("model.gguf"), Path("out.gguf"), "Q4_K_X"}), "'Q4_K_X' is not a file type");
}

TEST_F(QuantizeCli, UnsupportedFileType_SaysSo) {
  ExpectFails(Quantize({Path("model.gguf"), Path("out.gguf"), "IQ2_XXS"}), "IQ2_XXS is not supported yet");
}

TEST_F(QuantizeCli, UnknownOption_IsNamed) {
  ExpectFails(Quantize({"--frobnicate", Path("model.gguf"), Path("out.gguf"), "Q8_0"}),
              "unknown option '--frobnicate'");
}

TEST_F(QuantizeCli, GptqWithoutItsTextOrOnAModelItCannotRun_IsRefusedAndWritesNothing) {
  ExpectFails(Quantize({"--method", "gptq", Path("model.gguf"), Path("out.gguf"), "Q4_K_M"}),
              "--method gptq needs --calibration TEXT");
  ExpectFails(Quantize({"--method", "obq", Path("model.gguf"), Path("out.gguf"), "Q4_K_M"}), "--method");
  ExpectFails(Quantize({"--act-order", "--method", "awq", "--calibration", Path("calib.txt"), Path("model.gguf"),
                        Path("out.gguf"), "Q4_K_M"}),
              "--act-order is GPTQ's");
  std::ofstream(Path("calib.txt")) << "def f(x):\n    return x\n";
  // The fixture model has no tokenizer: the forward pass cannot run on it.
  ExpectFails(Quantize({"--method", "gptq", "--calibration", Path("calib.txt"), Path("model.gguf"), Path("out.gguf"),
                        "Q4_K_M"}),
              "tokenizer");
}

// The calibrated methods on the model shapes the forward pass runs beside
// plain llama: a mixture of experts (each expert its own Hessian), qwen2's
// biases (AWQ leaves the v -> o group alone) and a split model, GPTQ with
// and without act order. Each file has rtn's size and metadata, and the
// forward pass runs it.
TEST_F(QuantizeCli, CalibratedMethodsOnExpertsBiasesAndSplitModels_WriteFilesOfTheSameSizeThatRun) {
  ASSERT_TRUE(WriteTestVocab(Path("vocab.gguf")).ok());
  {
    std::ofstream text(Path("calib.txt"));
    for (int i = 0; i < 400; ++i) text << "def f" << i << "(x):\n    return x * " << i << "\n";
  }
  struct Shape {
    std::string name;
    std::string input;
    TestModelSpec spec;
  };
  std::vector<Shape> shapes(3);
  shapes[0].name = "experts";
  shapes[0].spec.n_expert = 4;
  shapes[1].name = "qwen2";
  shapes[1].spec.arch = "qwen2";
  shapes[1].spec.n_head_kv = shapes[1].spec.n_head;
  shapes[2].name = "split";
  shapes[2].spec.n_split = 2;
  for (Shape& s : shapes) {
    s.spec.type = GgmlType::kF16;
    s.spec.vocab_from = Path("vocab.gguf");
    s.input = Path(s.name + (s.spec.n_split > 1 ? "-00001-of-00002.gguf" : ".gguf"));
    ASSERT_TRUE(WriteTestModel(s.spec, s.input).ok()) << s.name;
    ASSERT_EQ(Quantize({s.input, Path(s.name + "-rtn.gguf"), "Q4_K_M"}).exit_code, 0) << s.name;
    for (const std::string method : {"gptq", "awq+gptq", "gptq --act-order"}) {
      const std::string out = Path(s.name + "-" + method.substr(0, method.find(' ')) +
                                   (method.find(' ') != std::string::npos ? "-act-order" : "") + ".gguf");
      std::vector<std::string> args = {"--method", method.substr(0, method.find(' '))};
      if (method.find("--act-order") != std::string::npos) args.push_back("--act-order");
      args.insert(args.end(),
                  {"--calibration", Path("calib.txt"), "--ctx", "64", "--chunks", "4", s.input, out, "Q4_K_M"});
      ProcessResult r = Quantize(args);
      ASSERT_EQ(r.exit_code, 0) << s.name << " " << method << ": " << r.output;
      EXPECT_EQ(fs::file_size(out), fs::file_size(Path(s.name + "-rtn.gguf"))) << s.name << " " << method;
      ProcessResult eval =
          RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "eval", "--json", "--base", s.input,
                      "--model", out, "-f", Path("calib.txt"), "-c", "64", "--chunks", "2"},
                     absl::Minutes(1));
      ASSERT_EQ(eval.exit_code, 0) << s.name << " " << method << ": " << eval.output;
      const nlohmann::json j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')), nullptr, false);
      ASSERT_TRUE(j.is_object()) << eval.output;
      const double kld = j["kld"]["value"];
      EXPECT_TRUE(std::isfinite(kld) && kld > 0 && kld < 0.5) << s.name << " " << method << ": KLD " << kld;
    }
  }
}

TEST_F(QuantizeCli, BadTensorTypeSpec_IsNamed) {
  ExpectFails(Quantize({"--tensor-type", "attn_v", Path("model.gguf"), Path("out.gguf"), "Q8_0"}),
              "expected NAME=TYPE");
  ExpectFails(Quantize({"--tensor-type", "attn_v=q9_9", Path("model.gguf"), Path("out.gguf"), "Q8_0"}),
              "'q9_9' is not a tensor type");
}

TEST_F(QuantizeCli, BadOverrideKv_IsNamed) {
  ExpectFails(Quantize({"--override-kv", "general.name=string:x", Path("model.gguf"), Path("out.gguf"), "Q8_0"}),
              "TYPE must be int, float, bool or str");
}

TEST_F(QuantizeCli, SameInputAndOutput_IsRefused) {
  ProcessResult r = Quantize({Path("model.gguf"), Path("model.gguf"), "Q8_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("input and output are the same file"), std::string::npos) << r.output;
}

TEST_F(QuantizeCli, ImatrixWithNan_IsRefused) {
  TestModelSpec spec;
  spec.n_layer = 1;
  ASSERT_TRUE(WriteTestImatrix(spec, Path("im.gguf"), ImatrixFormat::kGguf, 5).ok());
  std::vector<uint8_t> bytes = Read("im.gguf");
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes.data(), bytes.size(), "im");
  ASSERT_TRUE(f.ok());
  const float nan = std::nanf("");
  std::memcpy(bytes.data() + f->data_offset() + f->tensors()[0].offset, &nan, 4);
  Write("im.gguf", bytes);
  ExpectFails(Quantize({"--imatrix", Path("im.gguf"), Path("model.gguf"), Path("out.gguf"), "Q4_K_M"}), "not finite");
}

TEST_F(QuantizeCli, ImatrixForAnotherModel_IsRefused) {
  TestModelSpec other;
  other.n_layer = 1;
  other.n_embd = 512;  // same names, other widths
  ASSERT_TRUE(WriteTestImatrix(other, Path("im.gguf"), ImatrixFormat::kGguf, 5).ok());
  ExpectFails(Quantize({"--imatrix", Path("im.gguf"), Path("model.gguf"), Path("out.gguf"), "Q4_K_M"}),
              "has 512 values but the tensor needs 256");
}

TEST_F(QuantizeCli, Json_DescribesEveryTensor) {
  ProcessResult r = Quantize({"--json", Path("model.gguf"), Path("out.gguf"), "Q6_K"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["file_type"], "Q6_K");
  EXPECT_EQ(j["tensors"].size(), 12u);
  EXPECT_EQ(j["file_bytes"].get<uint64_t>(), fs::file_size(Path("out.gguf")));
}

TEST_F(QuantizeCli, JsonError_IsMachineReadable) {
  ProcessResult r = Quantize({"--json", Path("nope.gguf"), Path("out.gguf"), "Q6_K"});
  EXPECT_EQ(r.exit_code, 1);
  const size_t brace = r.output.find('{');
  ASSERT_NE(brace, std::string::npos) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output.substr(brace, r.output.rfind('}') - brace + 1));
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["error"].get<std::string>().find("nope.gguf"), std::string::npos);
}

TEST_F(QuantizeCli, Help_TeachesAndSucceeds) {
  ProcessResult r = Quantize({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--imatrix FILE"), std::string::npos);
  EXPECT_NE(r.output.find("examples:"), std::string::npos);
}

TEST_F(QuantizeCli, TargetSizeRefusals_SayWhatIsMissing) {
  ProcessResult no_text = Quantize({"--target-size", "100MiB", Path("model.gguf"), Path("t.gguf"), "Q4_K_M"});
  EXPECT_EQ(no_text.exit_code, 1);
  EXPECT_NE(no_text.output.find("need --calibration TEXT"), std::string::npos) << no_text.output;
  {
    std::ofstream text(Path("text.txt"));
    text << "calibration text";
  }
  ProcessResult tiny = Quantize(
      {"--target-size", "1000", "--calibration", Path("text.txt"), Path("model.gguf"), Path("t.gguf"), "Q4_K_M"});
  EXPECT_EQ(tiny.exit_code, 1);
  EXPECT_NE(tiny.output.find("a file of 1000 bytes cannot hold this model"), std::string::npos) << tiny.output;
  ProcessResult bad = Quantize({"--target-size", "lots", Path("model.gguf"), Path("t.gguf"), "Q4_K_M"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--target-size 'lots'"), std::string::npos) << bad.output;
  ProcessResult bpw = Quantize({"--target-bpw", "-2", Path("model.gguf"), Path("t.gguf"), "Q4_K_M"});
  EXPECT_EQ(bpw.exit_code, 1);
  EXPECT_NE(bpw.output.find("--target-bpw '-2'"), std::string::npos) << bpw.output;
  // On the cluster the text that calibrates also measures: it is asked for.
  ProcessResult submit =
      RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "submit", "--coordinator", "127.0.0.1:1",
                  "--target-size", "1GiB", Path("model.gguf"), Path("t.gguf"), "Q4_K_M"},
                 absl::Seconds(30));
  EXPECT_EQ(submit.exit_code, 1);
  EXPECT_NE(submit.output.find("--target-size and --target-bpw on the cluster need --calibration TEXT"),
            std::string::npos)
      << submit.output;
  EXPECT_FALSE(fs::exists(Path("t.gguf")));
  ProcessResult gptq = RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "submit", "--coordinator",
                                   "127.0.0.1:1", "--method", "gptq", Path("model.gguf"), Path("t.gguf"), "Q4_K_M"},
                                  absl::Seconds(30));
  EXPECT_EQ(gptq.exit_code, 1);
  EXPECT_NE(gptq.output.find("--method gptq needs --calibration TEXT"), std::string::npos) << gptq.output;
  // A method with a size runs on one machine only, and says so.
  ProcessResult sized_gptq =
      RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "submit", "--coordinator", "127.0.0.1:1",
                  "--method", "gptq", "--calibration", Path("model.gguf"), "--target-size", "1GiB", Path("model.gguf"),
                  Path("t.gguf"), "Q4_K_M"},
                 absl::Seconds(30));
  EXPECT_EQ(sized_gptq.exit_code, 1);
  EXPECT_NE(sized_gptq.output.find("with --target-size runs on one machine for now"), std::string::npos)
      << sized_gptq.output;
}

TEST_F(QuantizeCli, Fit_PlansTheSizesQuantizeWritesAndTheKvCache) {
  ProcessResult fit = RunProcess(
      {std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "fit", "--json", "--vram", "1GiB", Path("model.gguf")},
      absl::Minutes(1));
  ASSERT_EQ(fit.exit_code, 0) << fit.output;
  const nlohmann::json j = nlohmann::json::parse(fit.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << fit.output;
  // 1 layer x 8192 tokens x 2 KV heads x (64 + 64) values x 2 bytes (F16).
  EXPECT_EQ(j["kv_cache_bytes"].get<uint64_t>(), 1u * 8192 * 2 * 128 * 2);
  ASSERT_EQ(Quantize({Path("model.gguf"), Path("fit.gguf"), "Q4_K_M"}).exit_code, 0);
  bool seen = false;
  for (const nlohmann::json& t : j["types"]) {
    if (t["type"] != "Q4_K_M") continue;
    seen = true;
    EXPECT_EQ(t["file_bytes"].get<uint64_t>(), fs::file_size(Path("fit.gguf")));
    EXPECT_TRUE(t["fits"].get<bool>());
  }
  EXPECT_TRUE(seen);
  ProcessResult small =
      RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "fit", "--vram", "1MiB", Path("model.gguf")},
                 absl::Minutes(1));
  EXPECT_EQ(small.exit_code, 0);
  EXPECT_NE(small.output.find("no file type fits"), std::string::npos) << small.output;
  ProcessResult no_vram = RunProcess(
      {std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet", "fit", Path("model.gguf")}, absl::Minutes(1));
  EXPECT_EQ(no_vram.exit_code, 1);
  EXPECT_NE(no_vram.output.find("--vram SIZE"), std::string::npos) << no_vram.output;
}

// With --eval, each type is quantized, measured against the model over the
// text and its scratch file removed; the best choice is the least KL
// divergence among the types that fit.
TEST_F(QuantizeCli, FitWithEval_MeasuresEachTypeAndPicksTheLeastKldThatFits) {
  WriteRunnableModelAndText(300);
  const std::string bin = std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet";
  auto fit = [&](const std::string& vram) {
    ProcessResult r = RunProcess({bin, "fit", "--json", "--vram", vram, "--overhead", "0", "--ctx", "16", "--eval",
                                  Path("text.txt"), "--eval-ctx", "64", "--eval-chunks", "2", Path("runnable.gguf")},
                                 absl::Minutes(2));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output.substr(std::min(r.output.find('{'), r.output.size())), nullptr, false);
  };
  nlohmann::json all = fit("1GiB");
  ASSERT_TRUE(all.is_object());
  std::map<std::string, double> kld;
  std::map<std::string, uint64_t> total;
  for (const nlohmann::json& t : all["types"]) {
    ASSERT_TRUE(t.contains("kld")) << t.dump();
    kld[t["type"]] = t["kld"];
    total[t["type"]] = t["total_bytes"];
  }
  EXPECT_LT(kld["F16"], 1e-6);
  EXPECT_GT(kld["Q2_K"], kld["Q8_0"]);
  // A GPU that holds Q6_K but not Q8_0: the least KL divergence among those.
  nlohmann::json some = fit(std::to_string(total["Q6_K"]));
  ASSERT_TRUE(some.is_object());
  std::string want;
  for (const nlohmann::json& t : some["types"]) {
    if (t["fits"].get<bool>() && (want.empty() || t["kld"].get<double>() < kld[want])) want = t["type"];
  }
  EXPECT_EQ(some["best"], want);
  EXPECT_NE(want, "F16");
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".quantfleet-fit-"), std::string::npos) << "left " << e.path();
  }
}

// --eval measures the written file; over a --max-kld limit the file is not
// left at OUTPUT but kept beside it as OUTPUT.rejected.gguf, and the run
// fails saying which limit.
TEST_F(QuantizeCli, EvalGate_KeepsAFileOverItsLimitAsRejectedAndFails) {
  WriteRunnableModelAndText(300);
  auto run = [&](const std::string& type, const std::string& out, const std::string& max_kld) {
    std::vector<std::string> args = {"--json", "--eval", Path("text.txt"), "--eval-ctx", "64", "--eval-chunks", "2"};
    if (!max_kld.empty()) args.insert(args.end(), {"--max-kld", max_kld});
    args.insert(args.end(), {Path("runnable.gguf"), Path(out), type});
    ProcessResult r = Quantize(args);
    const nlohmann::json j =
        nlohmann::json::parse(r.output.substr(std::min(r.output.find('{'), r.output.size())), nullptr, false);
    return std::make_pair(r, j);
  };
  auto [ok, ok_json] = run("Q8_0", "q8.gguf", "1");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  ASSERT_TRUE(ok_json.is_object()) << ok.output;
  const double q8_kld = ok_json["eval"]["kld"]["value"];
  EXPECT_TRUE(ok_json["ok"].get<bool>());
  EXPECT_GT(q8_kld, 0.0);
  EXPECT_TRUE(fs::exists(Path("q8.gguf")));
  EXPECT_FALSE(fs::exists(Path("q8.unmeasured.gguf"))) << "the measured file moves to OUTPUT";

  auto [rejected, rejected_json] = run("Q2_K", "q2.gguf", absl::StrFormat("%.9f", q8_kld));
  EXPECT_EQ(rejected.exit_code, 1) << rejected.output;
  ASSERT_TRUE(rejected_json.is_object()) << rejected.output;
  EXPECT_FALSE(rejected_json["ok"].get<bool>());
  EXPECT_NE(rejected_json["error"].get<std::string>().find("over --max-kld"), std::string::npos);
  EXPECT_GT(rejected_json["eval"]["kld"]["value"].get<double>(), q8_kld);
  EXPECT_FALSE(fs::exists(Path("q2.gguf"))) << "a rejected file must not stay at OUTPUT";
  EXPECT_TRUE(fs::exists(Path("q2.rejected.gguf")));
  EXPECT_EQ(rejected_json["rejected_output"], Path("q2.rejected.gguf"));

  ExpectFails(Quantize({"--max-kld", "0.1", Path("runnable.gguf"), Path("out.gguf"), "Q2_K"}), "need --eval TEXT");
  // A text that cannot be read is said before anything is quantized.
  ExpectFails(Quantize({"--eval", Path("missing.txt"), Path("runnable.gguf"), Path("out.gguf"), "Q2_K"}),
              "missing.txt");
  EXPECT_FALSE(fs::exists(Path("out.unmeasured.gguf")));
}

TEST_F(QuantizeCli, ThreadCount_DoesNotChangeTheBytes) {
  ASSERT_EQ(Quantize({"--threads", "1", Path("model.gguf"), Path("one.gguf"), "Q4_K_M"}).exit_code, 0);
  ASSERT_EQ(Quantize({Path("model.gguf"), Path("two.gguf"), "Q4_K_M", "2"}).exit_code, 0);
  EXPECT_EQ(Read("one.gguf"), Read("two.gguf"));
}

}  // namespace
}  // namespace quantfleet
