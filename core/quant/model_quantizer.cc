#include "core/quant/model_quantizer.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/io/atomic_file.h"
#include "core/quant/quantize_rows.h"
#include "core/quant/reference_kernels.h"
#include "core/quant/row_ranges.h"
#include "core/quant/row_validation.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

// A run of rows of `chunk_bytes` or so (counting the F32 copy of a row):
// small enough to stay in cache, large enough to keep the threads busy.
// A tensor another method quantizes goes one whole matrix at a time.
std::vector<RowRange> CutWork(const QuantizePlan& plan, size_t chunk_bytes, const TensorMethod* method,
                              std::vector<int>* items_per_tensor) {
  std::vector<RowRange> work = CutRowRanges(plan, [chunk_bytes, method](const PlannedTensor& t) {
    if (method != nullptr && method->Handles(t)) return t.output.ne[1];
    const int64_t rows = t.output.n_rows();
    const int64_t row_bytes = std::max<int64_t>(static_cast<int64_t>(sizeof(float)) * t.output.ne[0],
                                                static_cast<int64_t>(t.source->info.nbytes / rows));
    return static_cast<int64_t>(chunk_bytes) / row_bytes;
  });
  items_per_tensor->assign(plan.tensors.size(), 0);
  for (const RowRange& w : work) ++(*items_per_tensor)[w.tensor];
  return work;
}

class Executor {
 public:
  Executor(const GgufModel& model, const QuantizePlan& plan, AtomicFile& out, const RunOptions& options)
      : model_(model), plan_(plan), out_(out), options_(options) {
    work_ = CutWork(plan, options.chunk_bytes, options.method, &remaining_);
  }

  absl::Status Run(int threads) {
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([this] { Loop(); });
    Loop();
    for (std::thread& t : pool) t.join();
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  void Loop() {
    std::vector<float> f32;
    std::vector<uint8_t> dst;
    while (!failed_.load(std::memory_order_relaxed)) {
      const size_t index = next_.fetch_add(1);
      if (index >= work_.size()) return;
      absl::Status s = Process(work_[index], f32, dst);
      if (!s.ok()) {
        absl::MutexLock lock(&mu_);
        if (error_.ok()) error_ = s;
        failed_.store(true);
        return;
      }
    }
  }

  absl::Status Process(const RowRange& item, std::vector<float>& f32, std::vector<uint8_t>& dst) {
    const PlannedTensor& t = plan_.tensors[item.tensor];
    const GgufTensorInfo& in = t.source->info;
    const int64_t n_per_row = in.ne[0];
    const size_t src_row = in.nbytes / static_cast<size_t>(in.n_rows());
    const uint8_t* src = t.source->data + static_cast<size_t>(item.first_row) * src_row;
    const size_t src_len = static_cast<size_t>(item.n_rows) * src_row;
    if (absl::Status s = ValidateRowData(in.type, src, src_len); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: tensor '%s' has invalid data in rows %d..%d: %s",
                                                        model_.part(t.source->split).path(), in.name, item.first_row,
                                                        item.first_row + item.n_rows - 1, s.message()));
    }
    const uint64_t out_offset =
        plan_.meta.size() + t.output.offset + static_cast<uint64_t>(item.first_row) * RowSize(t.output.type, n_per_row);
    if (!t.convert && !ByMethod(t)) {
      QF_RETURN_IF_ERROR(out_.PWrite(src, src_len, out_offset));
    } else {
      const float* imatrix = nullptr;
      if (t.imatrix) imatrix = t.imatrix->data() + (item.first_row / in.ne[1]) * n_per_row;
      dst.resize(static_cast<size_t>(item.n_rows) * RowSize(t.output.type, n_per_row));
      size_t written = 0;
      if (ByMethod(t)) {
        QF_ASSIGN_OR_RETURN(written, QuantizeByMethod(t, item, dst));
      } else {
        written = ConvertRows(in.type, src, t.output.type, dst.data(), item.n_rows, n_per_row, imatrix, &f32);
      }
      if (absl::Status s = ValidateRowData(t.output.type, dst.data(), written); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "tensor '%s': quantizing rows %d..%d to %s gave a non-finite scale (%s); the source has values too "
            "large for this type",
            in.name, item.first_row, item.first_row + item.n_rows - 1, TypeName(t.output.type), s.message()));
      }
      QF_RETURN_IF_ERROR(out_.PWrite(dst.data(), written, out_offset));
    }
    model_.part(t.source->split).DropRange(t.source->file_offset + (src - t.source->data), src_len);
    Finished(item, src_len);
    return absl::OkStatus();
  }

  bool ByMethod(const PlannedTensor& t) const { return options_.method != nullptr && options_.method->Handles(t); }

  // One whole matrix (CutWork made it one item) by the other method.
  absl::StatusOr<size_t> QuantizeByMethod(const PlannedTensor& t, const RowRange& item, std::vector<uint8_t>& dst) {
    QF_ASSIGN_OR_RETURN(std::vector<uint8_t> out, options_.method->Quantize(t, item.first_row / t.output.ne[1]));
    if (out.size() != dst.size()) {
      return absl::InternalError(
          absl::StrFormat("tensor '%s': the method gave %d bytes for %d", t.output.name, out.size(), dst.size()));
    }
    dst = std::move(out);
    return dst.size();
  }

  void Finished(const RowRange& item, size_t bytes) {
    absl::MutexLock lock(&mu_);
    progress_.source_bytes_done += bytes;
    if (--remaining_[item.tensor] == 0) {
      ++progress_.tensors_done;
      progress_.tensor_index = item.tensor;
      if (options_.on_tensor_done) options_.on_tensor_done(progress_);
    }
  }

  const GgufModel& model_;
  const QuantizePlan& plan_;
  AtomicFile& out_;
  const RunOptions& options_;
  std::vector<RowRange> work_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};

  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<int> remaining_ ABSL_GUARDED_BY(mu_);
  QuantizeProgress progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RunQuantizePlan(const GgufModel& model, const QuantizePlan& plan, const std::string& output,
                             const RunOptions& options) {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> out, AtomicFile::Create(output, options.overwrite));
  QF_RETURN_IF_ERROR(out->PWrite(plan.meta.data(), plan.meta.size(), 0));
  int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, threads);
  Executor executor(model, plan, *out, options);
  QF_RETURN_IF_ERROR(executor.Run(threads));
  // Zero-size tensors and padding are never written: extending the file
  // makes them zeros, the bytes llama.cpp writes there.
  QF_RETURN_IF_ERROR(out->Truncate(plan.file_size()));
  return out->Commit();
}

}  // namespace quantfleet
