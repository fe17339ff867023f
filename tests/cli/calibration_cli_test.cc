// `quantfleet imatrix` and `quantfleet tokenize` as a user runs them, on a
// small generated model with a byte-fallback SentencePiece vocabulary:
// results that quantize accepts, JSON for scripts, and bad input refused
// with exit code 1, a line that names the problem, and no output file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tests/tools/subprocess.h"
#include "tests/tools/test_model.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

class CalibrationCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrFormat("qf-cal-%d-%s", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(WriteTestVocab(Path("vocab.gguf")).ok());
    TestModelSpec spec;
    spec.n_layer = 2;
    spec.n_embd = 128;
    spec.n_ff = 256;
    spec.outliers = false;
    spec.zero_rows = false;
    spec.vocab_from = Path("vocab.gguf");
    ASSERT_TRUE(WriteTestModel(spec, Path("model.gguf")).ok());
    spec.vocab_from.clear();
    ASSERT_TRUE(WriteTestModel(spec, Path("no-tokenizer.gguf")).ok());
    std::ofstream text(Path("text.txt"));
    for (int i = 0; i < 60; ++i) text << "the quick brown fox jumps over the lazy dog ";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  ProcessResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet");
    return RunProcess(args, absl::Minutes(2));
  }

  fs::path dir_;
};

TEST_F(CalibrationCli, ImatrixWritesWhatQuantizeTakes) {
  ProcessResult r = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o", Path("im.gguf"), "-c", "64",
                         "--chunks", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t brace = r.output.find("{\n");
  ASSERT_NE(brace, std::string::npos) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output.substr(brace), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["chunks"], 3);
  EXPECT_EQ(j["tokens"], 3 * 64);
  EXPECT_EQ(j["entries"], 2 * 7);  // q, k, v, output, gate, up, down per block
  EXPECT_GT(j["perplexity"].get<double>(), 1.0);
  ProcessResult q = Run({"quantize", "--imatrix", Path("im.gguf"), Path("model.gguf"), Path("q.gguf"), "IQ4_XS"});
  EXPECT_EQ(q.exit_code, 0) << q.output;
}

TEST_F(CalibrationCli, ChunksInParallelGiveTheSameBytes) {
  for (const char* threads : {"1", "3"}) {
    ProcessResult r = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o",
                           Path(std::string("t") + threads + ".gguf"), "-c", "64", "--chunks", "5", "-t", threads});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::ifstream a(Path("t1.gguf"), std::ios::binary), b(Path("t3.gguf"), std::ios::binary);
  const std::string one((std::istreambuf_iterator<char>(a)), {}), three((std::istreambuf_iterator<char>(b)), {});
  ASSERT_FALSE(one.empty());
  EXPECT_TRUE(one == three) << "1 thread and 3 threads differ";
}

TEST_F(CalibrationCli, BadInputIsRefusedWithTheReasonAndNoFile) {
  ProcessResult short_text =
      Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o", Path("a.gguf"), "-c", "4096"});
  EXPECT_EQ(short_text.exit_code, 1);
  EXPECT_NE(short_text.output.find("needs at least 8192"), std::string::npos) << short_text.output;
  ProcessResult no_tokenizer =
      Run({"imatrix", "-m", Path("no-tokenizer.gguf"), "-f", Path("text.txt"), "-o", Path("a.gguf")});
  EXPECT_EQ(no_tokenizer.exit_code, 1);
  EXPECT_NE(no_tokenizer.output.find("tokenizer.ggml.model is missing"), std::string::npos) << no_tokenizer.output;
  ProcessResult missing = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("nope.txt"), "-o", Path("a.gguf")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.txt: cannot open: No such file"), std::string::npos) << missing.output;
  ProcessResult cluster = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o", Path("a.gguf"),
                               "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(cluster.exit_code, 1);
  EXPECT_NE(cluster.output.find("cannot reach the coordinator"), std::string::npos) << cluster.output;
  ProcessResult bad_ctx = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-c", "8"});
  EXPECT_EQ(bad_ctx.exit_code, 1);
  EXPECT_NE(bad_ctx.output.find("16 or more"), std::string::npos) << bad_ctx.output;
  ProcessResult huge_ctx = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("text.txt"), "-c", "2000000000"});
  EXPECT_EQ(huge_ctx.exit_code, 1);
  EXPECT_NE(huge_ctx.output.find("give 16 to 1048576 tokens per chunk"), std::string::npos) << huge_ctx.output;
  // A directory or a FIFO as the text: a clear refusal, not an abort or a
  // wait for a writer.
  ProcessResult dir_text = Run({"imatrix", "-m", Path("model.gguf"), "-f", dir_.string(), "-o", Path("a.gguf")});
  EXPECT_EQ(dir_text.exit_code, 1) << dir_text.output;
  EXPECT_NE(dir_text.output.find("not a regular file"), std::string::npos) << dir_text.output;
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0600), 0);
  ProcessResult fifo_text = Run({"imatrix", "-m", Path("model.gguf"), "-f", Path("fifo"), "-o", Path("a.gguf")});
  EXPECT_EQ(fifo_text.exit_code, 1) << fifo_text.output;
  EXPECT_NE(fifo_text.output.find("not a regular file"), std::string::npos) << fifo_text.output;
  EXPECT_FALSE(fs::exists(Path("a.gguf")));
}

TEST_F(CalibrationCli, TokenizeGivesIdsAndPieces) {
  ProcessResult r = Run({"tokenize", "-m", Path("model.gguf"), "-p", "ab z!", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  // <s>, "▁", "a", "b", "▁", "z", then '!' as its byte token.
  ASSERT_EQ(j["count"], 7);
  EXPECT_EQ(j["tokens"][0]["piece"], "<s>");
  EXPECT_EQ(j["tokens"][2]["piece"], "a");
  EXPECT_EQ(j["tokens"][6]["id"], 3 + 0x21);
  EXPECT_EQ(j["tokens"][6]["piece"], "!");
  ProcessResult none = Run({"tokenize", "-p", "x"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("-m MODEL.gguf"), std::string::npos) << none.output;
}

}  // namespace
}  // namespace quantfleet

namespace quantfleet {
namespace {

// A run stopped after chunk 3 of 6 (as if killed) leaves its progress in
// OUT.checkpoint; the same command then computes chunks 4-6 only and writes
// the bytes of a run that was never stopped, and removes the checkpoint. A
// checkpoint of another run is ignored with a message.
TEST_F(CalibrationCli, EvalOfAModelAgainstItself_ReportsNoDivergence) {
  ProcessResult same = Run({"eval", "--json", "--base", Path("model.gguf"), "--model", Path("model.gguf"), "-f",
                            Path("text.txt"), "-c", "64"});
  ASSERT_EQ(same.exit_code, 0) << same.output;
  const nlohmann::json r = nlohmann::json::parse(same.output.substr(same.output.find('{')), nullptr, false);
  ASSERT_TRUE(r.is_object()) << same.output;
  EXPECT_GE(r["chunks"].get<int>(), 2);
  EXPECT_NEAR(r["kld"]["value"].get<double>(), 0.0, 1e-9);
  EXPECT_DOUBLE_EQ(r["same_top"]["value"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(r["ppl"]["value"].get<double>(), r["ppl_base"]["value"].get<double>());

  ProcessResult missing = Run({"eval", "--base", Path("model.gguf"), "-f", Path("text.txt")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("give the base model (--base), the model to measure (--model)"), std::string::npos)
      << missing.output;
  ProcessResult no_file =
      Run({"eval", "--base", Path("model.gguf"), "--model", Path("nope.gguf"), "-f", Path("text.txt")});
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_NE(no_file.output.find("nope.gguf"), std::string::npos) << no_file.output;
  ProcessResult help = Run({"eval", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("KL divergence"), std::string::npos);
}

TEST_F(CalibrationCli, AnInterruptedImatrixResumesToTheSameBytes) {
  auto imatrix = [&](const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "imatrix", "-m", Path("model.gguf"),     "-f", Path("text.txt"), "-o", out, "-c", "64", "--chunks", "6",
        "-t",      "2",  "--checkpoint-seconds", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  ProcessResult whole = imatrix(Path("whole.gguf"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_FALSE(fs::exists(Path("whole.gguf.checkpoint"))) << "a finished run leaves no checkpoint";

  ProcessResult cut =
      RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet-crashing-imatrix", "--crash-after-chunk", "3",
                  "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o", Path("resumed.gguf"), "-c", "64", "--chunks",
                  "6", "-t", "2", "--checkpoint-seconds", "0"},
                 absl::Minutes(2));
  ASSERT_EQ(cut.exit_code, 3) << cut.output;
  EXPECT_FALSE(fs::exists(Path("resumed.gguf")));
  ASSERT_TRUE(fs::exists(Path("resumed.gguf.checkpoint")));

  ProcessResult resumed = imatrix(Path("resumed.gguf"), {"--json"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + Path("resumed.gguf.checkpoint") + ": chunks 1-3 are done"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("\"resumed_chunks\": 3"), std::string::npos) << resumed.output;
  std::ifstream a(Path("whole.gguf"), std::ios::binary), b(Path("resumed.gguf"), std::ios::binary);
  const std::string want((std::istreambuf_iterator<char>(a)), {}), got((std::istreambuf_iterator<char>(b)), {});
  EXPECT_FALSE(want.empty());
  EXPECT_TRUE(got == want) << "the resumed run's file differs from the uninterrupted one";
  EXPECT_FALSE(fs::exists(Path("resumed.gguf.checkpoint")));

  // Progress from another run (here: another context) is not used.
  ProcessResult cut_again =
      RunProcess({std::string(QUANTFLEET_DEFAULT_BIN_DIR) + "/quantfleet-crashing-imatrix", "--crash-after-chunk", "2",
                  "-m", Path("model.gguf"), "-f", Path("text.txt"), "-o", Path("other.gguf"), "-c", "32", "--chunks",
                  "6", "--checkpoint-seconds", "0"},
                 absl::Minutes(2));
  ASSERT_EQ(cut_again.exit_code, 3) << cut_again.output;
  ProcessResult other = imatrix(Path("other.gguf"));
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("starting afresh"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("belongs to another run"), std::string::npos) << other.output;
  std::ifstream c(Path("other.gguf"), std::ios::binary);
  EXPECT_TRUE(std::string((std::istreambuf_iterator<char>(c)), {}) == want);
  // A damaged checkpoint is named and ignored.
  std::ofstream(Path("damaged.gguf.checkpoint")) << "QFIMCKP1 and then garbage";
  ProcessResult damaged = imatrix(Path("damaged.gguf"));
  ASSERT_EQ(damaged.exit_code, 0) << damaged.output;
  EXPECT_NE(damaged.output.find("damaged.gguf.checkpoint"), std::string::npos) << damaged.output;
}

}  // namespace
}  // namespace quantfleet
