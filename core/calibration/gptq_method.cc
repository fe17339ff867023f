// GPTQ as a quantization method of the executor, layer after layer. See
// gptq_method.h.
#include "core/calibration/gptq_method.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_format.h"
#include "core/calibration/chunk_statistics.h"
#include "core/calibration/gptq_ggml.h"
#include "core/model/forward_pass.h"
#include "core/quant/block_levels.h"
#include "core/quant/quantize_rows.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// The matrices of a layer the forward pass multiplies (not the router).
std::vector<const Linear*> Matrices(const LlamaLayer& layer) {
  return {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.gate, &layer.up, &layer.down};
}

}  // namespace

std::string GptqMethod::EntryFor(const std::string& weight_name) {
  std::string counted_by;
  const std::string entry = HessianCollector::EntryOf(weight_name, &counted_by);
  return entry.empty() ? counted_by : entry;
}

absl::StatusOr<HessianCollector> CollectHessians(const LlamaModel& model,
                                                 const std::vector<std::vector<TokenId>>& chunks) {
  HessianCollector total(false);
  for (const std::vector<TokenId>& chunk : chunks) {
    HessianCollector one(false);
    QF_RETURN_IF_ERROR(RunForward(model, chunk, &one, nullptr));
    total.Merge(one);
  }
  return total;
}

absl::StatusOr<std::unique_ptr<GptqMethod>> GptqMethod::Create(const GgufModel& file, const std::string& path,
                                                               const QuantizePlan& plan,
                                                               std::vector<std::vector<TokenId>> chunks,
                                                               GptqOptions options, int threads, Progress progress) {
  QF_ASSIGN_OR_RETURN(LlamaModel model, LlamaModel::Load(file, path));
  return std::unique_ptr<GptqMethod>(
      new GptqMethod(std::move(model), plan, std::move(chunks), options, threads, std::move(progress)));
}

GptqMethod::GptqMethod(LlamaModel model, const QuantizePlan& plan, std::vector<std::vector<TokenId>> chunks,
                       GptqOptions options, int threads, Progress progress)
    : plan_(plan),
      chunks_(std::move(chunks)),
      options_(options),
      threads_(std::max(1, threads)),
      progress_(std::move(progress)),
      model_(std::move(model)),
      hidden_(chunks_.size()) {
  std::map<std::string, const Linear*> matrices;
  for (const LlamaLayer& layer : model_.layers()) {
    for (const Linear* m : Matrices(layer)) matrices[m->name] = m;
  }
  for (size_t i = 0; i < plan_.tensors.size(); ++i) {
    const PlannedTensor& t = plan_.tensors[i];
    auto m = matrices.find(t.output.name);
    if (m == matrices.end() || !t.convert || !HasBlockLevels(t.output.type)) continue;
    if (t.output.ne[0] != m->second->n_in || t.output.ne[0] % BlockSize(t.output.type) != 0) continue;
    handled_[t.output.name] = i;
  }
}

bool GptqMethod::Handles(const PlannedTensor& t) const { return handled_.contains(t.output.name); }

absl::StatusOr<std::vector<uint8_t>> GptqMethod::Quantize(const PlannedTensor& t, int64_t matrix, const float* rows,
                                                          int64_t n_rows) {
  (void)rows;  // the layer is solved as a whole, from the plan's sources
  absl::MutexLock lock(&mu_);
  QF_RETURN_IF_ERROR(SolveThrough(EntryLayer(t.output.name)));
  auto it = solved_.find(t.output.name);
  if (it == solved_.end()) {
    return absl::InternalError(absl::StrFormat("GPTQ: tensor '%s' was not solved", t.output.name));
  }
  const size_t matrix_bytes = static_cast<size_t>(n_rows) * RowSize(t.output.type, t.output.ne[0]);
  const size_t at = static_cast<size_t>(matrix) * matrix_bytes;
  if (at + matrix_bytes > it->second.bytes.size()) {
    return absl::InternalError(absl::StrFormat("GPTQ: tensor '%s' has no matrix %d", t.output.name, matrix));
  }
  std::vector<uint8_t> out(it->second.bytes.begin() + at, it->second.bytes.begin() + at + matrix_bytes);
  if (--it->second.matrices_left == 0) solved_.erase(it);
  return out;
}

absl::Status GptqMethod::SolveThrough(int layer) {
  while (failed_.ok() && next_layer_ <= layer) {
    failed_ = SolveLayer(next_layer_);
    ++next_layer_;
    if (progress_) progress_(next_layer_, static_cast<int>(model_.layers().size()));
  }
  return failed_;
}

absl::Status GptqMethod::SolveLayer(int layer) {
  const int n_layer = static_cast<int>(model_.layers().size());
  // Hessians of the layer's inputs, through the quantized layers before it.
  SetBlasThreads(threads_);
  HessianCollector hessians(false);
  for (size_t c = 0; c < chunks_.size(); ++c) {
    HessianCollector one(false);
    std::vector<float> h = hidden_[c];
    QF_RETURN_IF_ERROR(RunForwardLayers(model_, chunks_[c], layer, layer + 1, &h, &one, nullptr));
    hessians.Merge(one);
  }
  // The layer's matrices, each matrix of each tensor a job, on threads_.
  struct Job {
    const PlannedTensor* tensor;
    int64_t matrix;
    uint8_t* dst;  // where its rows go in the tensor's bytes
  };
  std::vector<Job> jobs;
  for (const Linear* m : Matrices(model_.layers()[static_cast<size_t>(layer)])) {
    auto h = handled_.find(m->name);
    if (h == handled_.end()) continue;
    const PlannedTensor& t = plan_.tensors[h->second];
    Solved& s = solved_[m->name];
    s.bytes.assign(t.output.nbytes, 0);
    s.matrices_left = t.output.ne[2];
    const size_t matrix_bytes = static_cast<size_t>(t.output.ne[1]) * RowSize(t.output.type, t.output.ne[0]);
    for (int64_t e = 0; e < t.output.ne[2]; ++e) jobs.push_back({&t, e, s.bytes.data() + e * matrix_bytes});
  }
  std::atomic<size_t> next{0};
  std::vector<absl::Status> errors(jobs.size());
  auto work = [&] {
    std::vector<float> w, scratch;
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      const PlannedTensor& t = *jobs[j].tensor;
      const int64_t e = jobs[j].matrix, rows = t.output.ne[1], columns = t.output.ne[0];
      const size_t src_row = t.source->info.nbytes / static_cast<size_t>(t.output.n_rows());
      w.resize(static_cast<size_t>(rows * columns));
      ConvertRows(t.source->info.type, t.source->data + static_cast<size_t>(e * rows) * src_row, GgmlType::kF32,
                  w.data(), rows, columns, nullptr, &scratch);
      uint8_t* dst = jobs[j].dst;
      std::vector<double> h = hessians.Hessian(EntryFor(t.output.name), static_cast<int>(e));
      const float* given = t.imatrix ? t.imatrix->data() + e * columns : nullptr;
      if (h.empty()) {
        // No calibration token reached this matrix (an expert never routed
        // to): nothing to solve over, so the type's own quantizer.
        QuantizeRowsFast(t.output.type, w.data(), dst, rows, columns, given);
        continue;
      }
      std::vector<float> from_hessian;
      if (given == nullptr) {
        from_hessian.resize(static_cast<size_t>(columns));
        for (int64_t k = 0; k < columns; ++k) from_hessian[k] = static_cast<float>(h[k * columns + k] / 2);
      }
      absl::StatusOr<std::vector<uint8_t>> bytes =
          GptqQuantizeRows(t.output.type, w.data(), rows, columns, std::move(h),
                           given != nullptr ? given : from_hessian.data(), options_);
      if (!bytes.ok()) {
        errors[j] = absl::Status(bytes.status().code(),
                                 absl::StrFormat("tensor '%s': %s", t.output.name, bytes.status().message()));
        continue;
      }
      std::copy(bytes->begin(), bytes->end(), dst);
    }
  };
  SetBlasThreads(1);  // the matrices are solved one per thread
  std::vector<std::thread> pool;
  for (int i = 1; i < std::min<int>(threads_, static_cast<int>(jobs.size())); ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const absl::Status& s : errors) QF_RETURN_IF_ERROR(s);
  // The layer from now on is its quantized self; the next one's inputs are
  // what it makes of this one's.
  for (const Linear* m : Matrices(model_.layers()[static_cast<size_t>(layer)])) {
    auto s = solved_.find(m->name);
    if (s != solved_.end())
      model_.ReplaceMatrix(m->name, plan_.tensors[handled_[m->name]].output.type, s->second.bytes.data());
  }
  if (layer + 1 < n_layer) {
    SetBlasThreads(threads_);
    for (size_t c = 0; c < chunks_.size(); ++c) {
      QF_RETURN_IF_ERROR(RunForwardLayers(model_, chunks_[c], layer, layer + 1, &hidden_[c], nullptr, nullptr));
    }
  }
  return absl::OkStatus();
}

}  // namespace quantfleet
