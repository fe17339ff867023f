#include "coordinator/job_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

// A prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

absl::Status SqlError(sqlite3* db, const std::string& path, const char* what) {
  return absl::InternalError(absl::StrFormat("%s: %s: %s", path, what, sqlite3_errmsg(db)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(absl::StrFormat("%s: cannot open the job store: %s", path, msg));
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  {
    Statement check(db, "PRAGMA quick_check");
    if (!check.ok() || sqlite3_step(check.get()) != SQLITE_ROW ||
        std::string(reinterpret_cast<const char*>(sqlite3_column_text(check.get(), 0))) != "ok") {
      return absl::DataLossError(absl::StrFormat(
          "%s: the job store is corrupted (%s); move it aside to start empty, or restore it from a backup", path,
          sqlite3_errmsg(db)));
    }
  }
  QF_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  QF_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  QF_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, request_id TEXT UNIQUE, created INTEGER, job BLOB);"
      "CREATE TABLE IF NOT EXISTS done_tasks (job_id TEXT, task_id INTEGER, crc32c INTEGER,"
      "  PRIMARY KEY (job_id, task_id));"
      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);"));
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

absl::Status JobStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    const bool corrupt = sqlite3_errcode(db_) == SQLITE_CORRUPT || sqlite3_errcode(db_) == SQLITE_NOTADB;
    const std::string text = absl::StrFormat("%s: %s", path_, msg);
    return corrupt ? absl::DataLossError(text + "; the job store is corrupted") : absl::InternalError(text);
  }
  return absl::OkStatus();
}

absl::Status JobStore::InsertJob(const quantfleet::v1::Job& job, const std::string& request_id) {
  Statement s(db_, "INSERT INTO jobs (id, request_id, created, job) VALUES (?, ?, ?, ?)");
  if (!s.ok()) return SqlError(db_, path_, "prepare");
  s.Bind(1, job.id());
  if (request_id.empty()) {
    sqlite3_bind_null(s.get(), 2);
  } else {
    s.Bind(2, request_id);
  }
  s.Bind(3, job.created_unix_ms());
  s.BindBlob(4, job.SerializeAsString());
  if (sqlite3_step(s.get()) != SQLITE_DONE) return SqlError(db_, path_, "insert job");
  return absl::OkStatus();
}

absl::Status JobStore::UpdateJob(const quantfleet::v1::Job& job) {
  Statement s(db_, "UPDATE jobs SET job = ? WHERE id = ?");
  if (!s.ok()) return SqlError(db_, path_, "prepare");
  s.BindBlob(1, job.SerializeAsString());
  s.Bind(2, job.id());
  if (sqlite3_step(s.get()) != SQLITE_DONE) return SqlError(db_, path_, "update job");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> JobStore::FindByRequestId(const std::string& request_id) {
  Statement s(db_, "SELECT id FROM jobs WHERE request_id = ?");
  if (!s.ok()) return SqlError(db_, path_, "prepare");
  s.Bind(1, request_id);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW)
    return std::optional<std::string>(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return SqlError(db_, path_, "find request");
}

absl::Status JobStore::MarkTasksDone(const std::string& job_id,
                                     const std::vector<std::pair<int64_t, uint32_t>>& tasks) {
  QF_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  {
    Statement s(db_, "INSERT OR REPLACE INTO done_tasks (job_id, task_id, crc32c) VALUES (?, ?, ?)");
    if (!s.ok()) {
      (void)Exec("ROLLBACK");
      return SqlError(db_, path_, "prepare");
    }
    for (const auto& [task_id, crc] : tasks) {
      sqlite3_reset(s.get());
      s.Bind(1, job_id);
      s.Bind(2, task_id);
      s.Bind(3, static_cast<int64_t>(crc));
      if (sqlite3_step(s.get()) != SQLITE_DONE) {
        absl::Status err = SqlError(db_, path_, "mark tasks done");
        (void)Exec("ROLLBACK");
        return err;
      }
    }
  }
  return Exec("COMMIT");
}

absl::StatusOr<std::vector<StoredJob>> JobStore::LoadAll() {
  std::vector<StoredJob> out;
  {
    Statement s(db_, "SELECT job, request_id FROM jobs ORDER BY created, id");
    if (!s.ok()) return SqlError(db_, path_, "prepare");
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      StoredJob j;
      const void* blob = sqlite3_column_blob(s.get(), 0);
      const int len = sqlite3_column_bytes(s.get(), 0);
      if (!j.job.ParseFromArray(blob, len)) {
        return absl::DataLossError(absl::StrFormat("%s: a job record does not parse; the store is corrupted", path_));
      }
      if (const unsigned char* r = sqlite3_column_text(s.get(), 1)) j.request_id = reinterpret_cast<const char*>(r);
      out.push_back(std::move(j));
    }
    if (rc != SQLITE_DONE) return SqlError(db_, path_, "load jobs");
  }
  for (StoredJob& j : out) {
    Statement s(db_, "SELECT task_id FROM done_tasks WHERE job_id = ? ORDER BY task_id");
    s.Bind(1, j.job.id());
    while (sqlite3_step(s.get()) == SQLITE_ROW) j.done_tasks.push_back(sqlite3_column_int64(s.get(), 0));
  }
  return out;
}

absl::StatusOr<int64_t> JobStore::ReserveEpochs(int64_t count) {
  int64_t start = 1;
  {
    Statement s(db_, "SELECT value FROM meta WHERE key = 'epoch_reserved'");
    if (sqlite3_step(s.get()) == SQLITE_ROW) start = sqlite3_column_int64(s.get(), 0);
  }
  Statement u(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch_reserved', ?)");
  u.Bind(1, start + count);
  if (sqlite3_step(u.get()) != SQLITE_DONE) return SqlError(db_, path_, "reserve epochs");
  return start;
}

absl::StatusOr<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrFormat("%s: cannot open: %s", path, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is in use by another coordinator; stop it first or give this one its own --state-dir", dir));
  }
  return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock() { ::close(fd_); }

}  // namespace quantfleet
