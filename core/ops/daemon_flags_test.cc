#include "core/ops/daemon_flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"

ABSL_FLAG(std::string, state_dir, "", "test flag");
ABSL_FLAG(int, lease_seconds, 30, "test flag");
ABSL_FLAG(bool, verbose, false, "test flag");
ABSL_FLAG(std::vector<std::string>, allow_root, {}, "test flag");
ABSL_FLAG(double, ratio, 0.5, "test flag");

namespace quantfleet {
namespace {

class DaemonFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() / ("qf-flags-" + std::to_string(getpid()) + ".toml")).string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }

  absl::FlagSaver saver_;  // every test starts from the defaults
  std::string path_;
};

TEST_F(DaemonFlagsTest, ConfigFileSetsEveryKindOfValue) {
  Write(
      "# a comment\nstate-dir = \"/var/lib/quantfleet\"\nlease_seconds = 45\nverbose = true\n"
      "allow-root = [\"/models\", \"/scratch\"]\nratio = 0.25\n");
  ASSERT_TRUE(ApplyConfigFile(path_).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_state_dir), "/var/lib/quantfleet");
  EXPECT_EQ(absl::GetFlag(FLAGS_lease_seconds), 45);
  EXPECT_TRUE(absl::GetFlag(FLAGS_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_allow_root), (std::vector<std::string>{"/models", "/scratch"}));
  EXPECT_DOUBLE_EQ(absl::GetFlag(FLAGS_ratio), 0.25);
}

TEST_F(DaemonFlagsTest, UnknownKeyNamesFileLineAndKey) {
  Write("state-dir = \"/x\"\n\nlease-secnds = 3\n");
  absl::Status s = ApplyConfigFile(path_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(path_ + ": line 3: lease-secnds"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not a flag"), std::string::npos) << s.message();
}

TEST_F(DaemonFlagsTest, BadValueAndSyntaxAndTablesAreErrors) {
  Write("lease-seconds = \"soon\"\n");
  absl::Status s = ApplyConfigFile(path_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 1: lease-seconds"), std::string::npos) << s.message();

  Write("state-dir = \"unterminated\n");
  s = ApplyConfigFile(path_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("line 1"), std::string::npos) << s.message();

  Write("[coordinator]\nstate-dir = \"/x\"\n");
  s = ApplyConfigFile(path_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no tables"), std::string::npos) << s.message();

  EXPECT_EQ(ApplyConfigFile(path_ + ".missing").code(), absl::StatusCode::kNotFound);
}

TEST_F(DaemonFlagsTest, EnvironmentSetsFlagsAndIgnoresOthers) {
  ASSERT_TRUE(ApplyFlagEnvironment({"HOME=/root", "QUANTFLEET_STATE_DIR=/srv/state", "QUANTFLEET_LEASE_SECONDS=9",
                                    "QUANTFLEET_COORDINATOR=10.0.0.1:7070"})
                  .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_state_dir), "/srv/state");
  EXPECT_EQ(absl::GetFlag(FLAGS_lease_seconds), 9);
  absl::Status s = ApplyFlagEnvironment({"QUANTFLEET_LEASE_SECONDS=nine"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("QUANTFLEET_LEASE_SECONDS"), std::string::npos) << s.message();
}

TEST_F(DaemonFlagsTest, EnvironmentOverridesTheFile) {
  Write("lease-seconds = 45\nstate-dir = \"/from/file\"\n");
  ASSERT_TRUE(ApplyConfigFile(path_).ok());
  ASSERT_TRUE(ApplyFlagEnvironment({"QUANTFLEET_LEASE_SECONDS=7"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_lease_seconds), 7);
  EXPECT_EQ(absl::GetFlag(FLAGS_state_dir), "/from/file");
}

TEST(DaemonFlagNames, DashesBecomeUnderscoresInNamesOnly) {
  std::vector<std::string> out =
      NormalizeFlagDashes({"prog", "--state-dir=/a-b", "--lease-seconds", "3", "pos-arg", "--", "--not-a-flag"});
  EXPECT_EQ(out, (std::vector<std::string>{"prog", "--state_dir=/a-b", "--lease_seconds", "3", "pos-arg", "--",
                                           "--not-a-flag"}));
}

TEST(DaemonFlagNames, ConfigPathFromCommandLine) {
  EXPECT_EQ(ConfigFilePath({"prog", "--config", "/etc/q.toml"}), "/etc/q.toml");
  EXPECT_EQ(ConfigFilePath({"prog", "--config=/etc/q.toml"}), "/etc/q.toml");
  EXPECT_EQ(ConfigFilePath({"prog", "--", "--config=/etc/q.toml"}), "");
}

TEST(BuildInfoTest, NamesTheVersion) {
  EXPECT_NE(BuildInfo().find(BuildVersion()), std::string::npos);
  EXPECT_FALSE(BuildVersion().empty());
}

}  // namespace
}  // namespace quantfleet
