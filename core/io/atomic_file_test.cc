// AtomicFile under disk faults injected through FileOps: the destination
// appears complete or not at all, and no temporary file is left behind.
#include "core/io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/tools/faulty_file_ops.h"

namespace quantfleet {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("atomic-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // Files in the folder (the destination and any temporary one).
  size_t Entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {})); }
  fs::path dir_;
};

TEST_F(AtomicFileTest, Commit_PutsTheWholeFileInPlace) {
  absl::StatusOr<std::unique_ptr<AtomicFile>> f = AtomicFile::Create((dir_ / "out").string(), false);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->PWrite("world", 5, 6).ok());
  ASSERT_TRUE((*f)->PWrite("hello ", 6, 0).ok());
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  ASSERT_TRUE((*f)->Commit().ok());
  f->reset();
  std::ifstream in(dir_ / "out");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "hello world");
  EXPECT_EQ(Entries(), 1u);
}

TEST_F(AtomicFileTest, DiskFull_IsResourceExhaustedAndLeavesNothing) {
  FaultyFileOps disk;
  disk.set_write_budget(4);
  {
    absl::StatusOr<std::unique_ptr<AtomicFile>> f = AtomicFile::Create((dir_ / "out").string(), false, 0644, &disk);
    ASSERT_TRUE(f.ok());
    absl::Status s = (*f)->PWrite("hello", 5, 0);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_NE(s.message().find((dir_ / "out").string()), std::string::npos) << s;
  }
  EXPECT_EQ(Entries(), 0u);
}

TEST_F(AtomicFileTest, FailedSyncOrRename_LeavesNoDestinationAndNoTemporary) {
  for (bool sync : {true, false}) {
    FaultyFileOps disk;
    (sync ? disk.set_fail_sync(true) : disk.set_fail_rename(true));
    {
      absl::StatusOr<std::unique_ptr<AtomicFile>> f = AtomicFile::Create((dir_ / "out").string(), false, 0644, &disk);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE((*f)->PWrite("hello", 5, 0).ok());
      absl::Status s = (*f)->Commit();
      EXPECT_FALSE(s.ok());
      EXPECT_NE(s.message().find(sync ? "fsync failed" : "rename into place failed"), std::string::npos) << s;
    }
    EXPECT_FALSE(fs::exists(dir_ / "out"));
    EXPECT_EQ(Entries(), 0u) << (sync ? "sync" : "rename");
  }
}

}  // namespace
}  // namespace quantfleet
