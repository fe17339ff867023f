// The subcommands' shared option parser: values, switches, numbers, sizes,
// choices and positionals, and the messages of its refusals.
#include "client/command_line.h"

#include <gtest/gtest.h>

namespace quantfleet {
namespace {

struct Parsed {
  std::string file;
  std::optional<std::string> prompt;
  int ctx = 512;
  bool json = false, bos = true;
  uint64_t vram = 0;
  std::string kv = "f16";
  std::vector<std::string> rest;
};

absl::StatusOr<bool> Parse(Parsed* p, const std::vector<std::string>& args) {
  CommandLine line("quantfleet test");
  line.Text({"-f", "--file"}, &p->file, "a file")
      .Text({"-p"}, &p->prompt, "a text")
      .Int({"-c", "--ctx"}, &p->ctx, 16, "a number of tokens, 16 or more")
      .Flag({"--json"}, &p->json)
      .Flag({"--no-bos"}, &p->bos, false)
      .Size({"--vram"}, &p->vram)
      .Choice({"--kv-type"}, &p->kv, {"f16", "q8_0"})
      .Positional(&p->rest, 1);
  return line.Parse(args);
}

std::string Error(const std::vector<std::string>& args) {
  Parsed p;
  absl::StatusOr<bool> r = Parse(&p, args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(CommandLine, OptionsSwitchesAndPositionals_AreApplied) {
  Parsed p;
  absl::StatusOr<bool> r = Parse(&p, {"-f", "t.txt", "--ctx", "64", "--json", "--no-bos", "--vram", "24GiB",
                                      "--kv-type", "q8_0", "m.gguf", "-p", ""});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r);
  EXPECT_EQ(p.file, "t.txt");
  EXPECT_EQ(p.ctx, 64);
  EXPECT_TRUE(p.json);
  EXPECT_FALSE(p.bos);
  EXPECT_EQ(p.vram, uint64_t{24} << 30);
  EXPECT_EQ(p.kv, "q8_0");
  EXPECT_EQ(p.rest, std::vector<std::string>{"m.gguf"});
  ASSERT_TRUE(p.prompt.has_value());
  EXPECT_EQ(*p.prompt, "");
}

TEST(CommandLine, Help_StopsParsingButNotAsAValue) {
  Parsed p;
  absl::StatusOr<bool> r = Parse(&p, {"--frobnicate", "--help"});
  EXPECT_FALSE(r.ok()) << "what comes before --help is still checked";
  r = Parse(&p, {"--json", "-h", "--frobnicate"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = Parse(&p, {"-p", "-h"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(*p.prompt, "-h");
}

TEST(CommandLine, Refusals_NameTheOptionAndWhatItNeeds) {
  EXPECT_EQ(Error({"-c"}), "-c needs a number of tokens, 16 or more");
  EXPECT_EQ(Error({"-c", "8"}), "-c needs a number of tokens, 16 or more, not '8'");
  EXPECT_EQ(Error({"--ctx", "x"}), "--ctx needs a number of tokens, 16 or more, not 'x'");
  EXPECT_EQ(Error({"-f"}), "-f needs a file");
  EXPECT_EQ(Error({"--kv-type", "q4"}), "--kv-type is f16 or q8_0, not 'q4'");
  EXPECT_EQ(Error({"--kv-type"}), "--kv-type needs f16 or q8_0");
  EXPECT_NE(Error({"--vram", "lots"}).find("--vram: "), std::string::npos);
  EXPECT_EQ(Error({"--frobnicate"}), "unknown option '--frobnicate' (see quantfleet test --help)");
  EXPECT_EQ(Error({"a", "b"}), "unexpected argument 'b' (see quantfleet test --help)");
}

TEST(CommandLine, Rest_KeepsWhatIsNotDeclaredInOrder) {
  std::string coordinator;
  std::vector<std::string> rest;
  CommandLine line("quantfleet submit");
  line.Text({"--coordinator"}, &coordinator, "HOST:PORT").Rest(&rest);
  absl::StatusOr<bool> r = line.Parse({"in.gguf", "--coordinator", "h:1", "--imatrix", "i.gguf", "out.gguf", "Q4_K_M"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(coordinator, "h:1");
  EXPECT_EQ(rest, (std::vector<std::string>{"in.gguf", "--imatrix", "i.gguf", "out.gguf", "Q4_K_M"}));
}

}  // namespace
}  // namespace quantfleet
