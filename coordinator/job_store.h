// Durable job state in SQLite: jobs, finished tasks and the lease-epoch
// high-water mark. Every acknowledged change is committed (WAL,
// synchronous=FULL) before the caller replies to anyone.
//
// Tasks themselves are not stored: they are recomputed from the job's
// input and options, which give the same plan every time. Only which tasks
// are finished (their bytes durable in the partial artifact) is recorded.
//
// Thread-safety: not thread-safe; the Coordinator serialises access.
#ifndef QUANTFLEET_COORDINATOR_JOB_STORE_H_
#define QUANTFLEET_COORDINATOR_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/quantfleet.pb.h"

struct sqlite3;

namespace quantfleet {

struct StoredJob {
  quantfleet::v1::Job job;
  std::string request_id;
  std::vector<int64_t> done_tasks;
};

class JobStore {
 public:
  // Opens or creates the database at `path`. A file that fails SQLite's
  // integrity check is refused with DATA_LOSS naming it.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();

  absl::Status InsertJob(const quantfleet::v1::Job& job, const std::string& request_id);
  absl::Status UpdateJob(const quantfleet::v1::Job& job);
  // The job id recorded for `request_id`, if any.
  absl::StatusOr<std::optional<std::string>> FindByRequestId(const std::string& request_id);
  // Records finished tasks in one transaction.
  absl::Status MarkTasksDone(const std::string& job_id, const std::vector<std::pair<int64_t, uint32_t>>& tasks);
  absl::StatusOr<std::vector<StoredJob>> LoadAll();
  // Reserves `count` lease epochs and returns the first; epochs reserved
  // before a crash are never handed out again.
  absl::StatusOr<int64_t> ReserveEpochs(int64_t count);

 private:
  explicit JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Exec(const std::string& sql);
  sqlite3* db_;
  std::string path_;
};

// An exclusive lock on a state directory, held for the process lifetime.
class StateDirLock {
 public:
  // Fails with FAILED_PRECONDITION when another process holds it.
  static absl::StatusOr<std::unique_ptr<StateDirLock>> Acquire(const std::string& dir);
  ~StateDirLock();

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_COORDINATOR_JOB_STORE_H_
