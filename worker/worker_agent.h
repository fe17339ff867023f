// The worker's agent: registers with the coordinator, pulls tasks, keeps
// their leases alive, downloads source rows (every chunk CRC32C-checked),
// quantizes them with the same kernels as `quantfleet quantize`, and
// uploads the result resumably, then reports it with its checksum.
//
// Faults it rides out: a coordinator that restarts (it backs off, then
// registers again), a cut upload (it resumes from the committed offset), a
// chunk corrupted in transit (sent again), a lease taken away (the task is
// dropped). Bad source data fails the task permanently with the reason.
//
// Work is pipelined: the next task is acquired and downloaded while the
// current one is computed and uploaded.
//
// Thread-safety: Run is called from one thread; it starts a heartbeat
// thread and a prefetch thread of its own. Stop may be called from any
// thread (a signal handler's flag): the task in hand is finished and a
// prefetched one is handed back (drain).
#ifndef QUANTFLEET_WORKER_WORKER_AGENT_H_
#define QUANTFLEET_WORKER_WORKER_AGENT_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/io/file_ops.h"
#include "core/io/mapped_file.h"
#include "proto/quantfleet.pb.h"
#include "worker/chunk_runner.h"
#include "worker/coordinator_link.h"

namespace quantfleet {

struct WorkerOptions {
  std::string name;
  int threads = 1;
  absl::Duration max_backoff = absl::Seconds(5);
  // GPUs to quantize on (indices); empty: CPU only. A task whose type has
  // no GPU kernel runs on the CPU.
  std::vector<int> gpus;
  // Device memory a quantization may stage through on each GPU (0: slices
  // of about 16 MiB of rows), and the bound on a GPU calibration's weights.
  uint64_t gpu_memory_bytes = 0;
  // Directories whose files this worker may read directly when a task's
  // source lies inside one (checked against the coordinator's CRC32C).
  std::vector<std::string> data_roots;
  // Where models streamed for calibration are kept (reused across jobs).
  std::string cache_dir;
  // The model cache's writes (tests inject faults).
  FileOps* file_ops = FileOps::Posix();
  // Model bytes this worker may hold while calibrating (0: no limit): a
  // larger model is cut into pipeline stages across workers; what a
  // layerwise job's layer may hold (a layer too large goes elsewhere).
  uint64_t memory_bytes = 0;
  // Exit after this many tasks (0: never); tests use it to end a worker.
  int64_t max_tasks = 0;
};

// What a worker has done since it started. Updated by the agent's threads
// and read by its metrics page, hence atomics.
struct WorkerCounters {
  std::atomic<int64_t> tasks_done{0};
  std::atomic<int64_t> tasks_failed{0};
  std::atomic<int64_t> gpu_tasks{0};    // quantized on a GPU
  std::atomic<int64_t> local_reads{0};  // sources read from a data root
  std::atomic<int64_t> source_bytes_downloaded{0};
  std::atomic<int64_t> result_bytes_uploaded{0};
  std::atomic<int64_t> registrations{0};  // 1, plus one per coordinator restart
};

class WorkerAgent {
 public:
  WorkerAgent(WorkerOptions options, std::unique_ptr<CoordinatorLink> link);

  // Works until `stop` becomes true (then finishes the task in hand) or
  // max_tasks are done. Returns OK on a clean stop.
  absl::Status Run(const std::atomic<bool>& stop);

  const WorkerCounters& counters() const { return counters_; }
  int64_t tasks_done() const { return counters_.tasks_done; }
  // Tasks whose source was read from a data root instead of downloaded.
  int64_t local_reads() const { return counters_.local_reads; }
  // Tasks quantized on a GPU.
  int64_t gpu_tasks() const { return counters_.gpu_tasks; }

 private:
  // A task and its source bytes: downloaded into `owned`, or a range of a
  // data-root file mapped in memory (no copy).
  struct Fetched {
    quantfleet::v1::TaskSpec task;
    std::string owned;
    std::shared_ptr<const MappedFile> mapped;
    size_t mapped_offset = 0;
    absl::Status status;  // of the download
    std::string_view source() const {
      return mapped ? std::string_view(reinterpret_cast<const char*>(mapped->data()) + mapped_offset,
                                       static_cast<size_t>(task.source_bytes()))
                    : std::string_view(owned);
    }
  };

  absl::Status RegisterWithBackoff(const std::atomic<bool>& stop);
  // One AcquireTask call; nullopt when there is no work now.
  absl::StatusOr<std::optional<quantfleet::v1::TaskSpec>> AcquireOnce();
  // Acquires and downloads one task (the prefetch stage), into `buffer`'s
  // memory when it is downloaded.
  std::optional<Fetched> Prefetch(std::string buffer);
  absl::Status Process(const quantfleet::v1::TaskSpec& task, std::string_view source);
  // A calibration or evaluation chunk (or a pipeline stage of one, with
  // its input activations), or a type choice's measurement, instead of
  // rows to quantize.
  absl::Status ProcessChunk(const quantfleet::v1::TaskSpec& task, std::string_view activations);
  absl::Status Download(Fetched* fetched);
  // Moves the kept activations into `fetched` if they are the input of its
  // layer task; false otherwise.
  bool TakeKeptLayer(Fetched* fetched);
  // Streams bytes [*have, total) of what `what` names (the task's
  // source; a part of its model; a pipeline stage's input activations) to
  // `sink`, each chunk CRC32C-checked, resuming after cuts.
  absl::Status Stream(const quantfleet::v1::TaskSpec& task, const quantfleet::v1::ReadSourceRequest& what,
                      int64_t total, int64_t* have, const std::function<absl::Status(const std::string&)>& sink);
  // Streams part `part` (`total` bytes) of a chunk's model (with `base`:
  // an evaluation's base model) into `destination` (resuming a .partial
  // left by an earlier cut; renamed into place when complete).
  absl::Status DownloadModel(const quantfleet::v1::TaskSpec& task, const std::string& destination, int part,
                             int64_t total, bool base);
  // Maps the source from a data root; false when it is not there or differs.
  bool ReadLocal(Fetched* fetched);
  // Tells the coordinator the task failed (permanent: no retry elsewhere).
  void ReportFailure(const quantfleet::v1::Lease& lease, const std::string& reason, bool permanent);
  void GiveBack(const quantfleet::v1::Lease& lease, const std::string& reason);
  void Hold(const quantfleet::v1::Lease& lease);
  void Release(const quantfleet::v1::Lease& lease);
  bool Lost(const quantfleet::v1::Lease& lease);
  absl::Status Upload(const quantfleet::v1::TaskSpec& task, std::string_view result);
  void HeartbeatLoop(const std::atomic<bool>& done);

  const WorkerOptions options_;
  const std::unique_ptr<CoordinatorLink> link_;
  std::string incarnation_;
  WorkerCounters counters_;
  ChunkRunner chunks_;
  // Kept from task to task so a warm worker allocates (and page-faults)
  // nothing per task. Used by the task loop's thread only (the prefetch
  // stage runs on another, with the buffer handed to it).
  std::string result_;                       // a quantized task's result
  std::vector<std::vector<float>> scratch_;  // one per quantizing thread
  std::string spare_;                        // the next download's buffer
  // The data-root file mapped last: tasks of one model read the same file.
  // Touched only by the stage that downloads (one at a time).
  std::shared_ptr<const MappedFile> mapped_;

  absl::Mutex mu_;
  // Set by each registration (the task loop) and read by the heartbeats.
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  std::vector<quantfleet::v1::Lease> held_ ABSL_GUARDED_BY(mu_);
  std::vector<quantfleet::v1::Lease> lost_ ABSL_GUARDED_BY(mu_);
  // Where the long task in hand is (set by the task loop, sent with the
  // heartbeats while its lease is held).
  std::optional<quantfleet::v1::TaskProgress> progress_ ABSL_GUARDED_BY(mu_);
  // The activations leaving the last layer of a layerwise job this worker
  // solved (written by the task loop, taken by the prefetch stage): the
  // next layer, which the coordinator gives to the same worker, starts
  // from them instead of fetching them back, when the job, the layer and
  // the CRC32C of the result the coordinator accepted all match.
  struct KeptLayer {
    std::string job_id;
    int layer = -1;
    uint32_t result_crc = 0;
    std::string activations;
  };
  KeptLayer kept_layer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantfleet

#endif  // QUANTFLEET_WORKER_WORKER_AGENT_H_
