// One layer of a layerwise method. See layer_solve.h.
#include "core/calibration/layer_solve.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "core/calibration/chunk_statistics.h"
#include "core/calibration/gptq_ggml.h"
#include "core/calibration/hessian_collector.h"
#include "core/calibration/layerwise_selection.h"
#include "core/model/forward_pass.h"
#include "core/model/tee_sink.h"
#include "core/quant/block_levels.h"
#include "core/quant/quantize_rows.h"
#include "core/util/status_macros.h"

namespace quantfleet {

namespace {

// S^-1 H S^-1: the Hessian of x / s.
std::vector<double> ScaledHessian(std::vector<double> h, const std::vector<float>& s) {
  if (s.empty() || h.empty()) return h;
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) h[i * n + j] /= static_cast<double>(s[i]) * s[j];
  }
  return h;
}

// Runs `run(c)` for chunks 0..n-1, up to `parallel` at once, each with the
// forward pass on one thread (the threads go to the chunks, not to their
// products: no oversubscription, and no product too small to share); after
// each window of chunks, `merge(c, slot)` in chunk order (slot: the
// chunk's place in its window), so the sums do not depend on `parallel`.
absl::Status ForEachChunk(size_t n, int parallel, const std::function<absl::Status(size_t c, size_t slot)>& run,
                          const std::function<void(size_t c, size_t slot)>& merge) {
  SetBlasThreads(1);
  const size_t window = static_cast<size_t>(std::max(1, parallel));
  std::vector<absl::Status> errors(window);
  for (size_t first = 0; first < n; first += window) {
    const size_t count = std::min(window, n - first);
    std::vector<std::thread> pool;
    for (size_t i = 1; i < count; ++i) pool.emplace_back([&, i] { errors[i] = run(first + i, i); });
    errors[0] = run(first, 0);
    for (std::thread& t : pool) t.join();
    for (size_t i = 0; i < count; ++i) QF_RETURN_IF_ERROR(errors[i]);
    for (size_t i = 0; i < count; ++i) merge(first + i, i);
  }
  return absl::OkStatus();
}

// A tensor of the layer being solved.
struct Tensor {
  const PlannedTensor* plan = nullptr;
  std::vector<float> values;  // every matrix, as floats
  std::vector<float> scale;   // AWQ: its columns' scales (empty: none)
};

// One matrix of one tensor: a unit of work for the solving threads.
struct MatrixJob {
  const Tensor* tensor;
  int64_t matrix;
  uint8_t* dst;  // where its rows go in the tensor's bytes
};

// The bytes of one matrix: by `options.solve`, GPTQ, or the type's own
// quantizer, with the importance of its (scaled) input.
absl::Status SolveMatrix(const MatrixJob& job, const HessianCollector& hessians, const LayerwiseOptions& options) {
  const Tensor& t = *job.tensor;
  const PlannedTensor& p = *t.plan;
  const int64_t e = job.matrix, rows = p.output.ne[1], columns = p.output.ne[0];
  const float* w = t.values.data() + e * rows * columns;
  std::vector<double> h = ScaledHessian(hessians.Hessian(HessianEntryFor(p.output.name), static_cast<int>(e)), t.scale);
  // The importance of this matrix's input: the plan's (of x / s when
  // scaled), else diag(H) / 2; none when no token reached it.
  std::vector<float> imatrix;
  if (p.imatrix) {
    imatrix.assign(p.imatrix->data() + e * columns, p.imatrix->data() + (e + 1) * columns);
    for (size_t k = 0; k < t.scale.size(); ++k) imatrix[k] /= t.scale[k] * t.scale[k];
  } else if (!h.empty()) {
    imatrix.resize(static_cast<size_t>(columns));
    for (int64_t k = 0; k < columns; ++k) imatrix[k] = static_cast<float>(h[k * columns + k] / 2);
  }
  const float* qw = imatrix.empty() ? nullptr : imatrix.data();
  absl::StatusOr<std::vector<uint8_t>> bytes;
  if (options.solve) {
    bytes = options.solve(p, e, w, rows, columns, std::move(h));
    if (bytes.ok() && bytes->size() != static_cast<size_t>(rows) * RowSize(p.output.type, columns)) {
      bytes = absl::InternalError(absl::StrFormat("the solver gave %d bytes", bytes->size()));
    }
  } else if (!options.gptq || h.empty() || !HasBlockLevels(p.output.type)) {
    QuantizeRowsFast(p.output.type, w, job.dst, rows, columns, qw);
    return absl::OkStatus();
  } else {
    bytes = GptqQuantizeRows(p.output.type, w, rows, columns, std::move(h), qw, options.gptq_options);
  }
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrFormat("tensor '%s': %s", p.output.name, bytes.status().message()));
  }
  std::copy(bytes->begin(), bytes->end(), job.dst);
  return absl::OkStatus();
}

}  // namespace

std::string HessianEntryFor(const std::string& weight_name) {
  std::string counted_by;
  const std::string entry = HessianCollector::EntryOf(weight_name, &counted_by);
  return entry.empty() ? counted_by : entry;
}

absl::StatusOr<LayerReport> SolveLayer(LlamaModel& model, int layer, const LayerTensors& tensors_in, bool fold,
                                       const std::vector<std::vector<TokenId>>& chunks,
                                       std::vector<std::vector<float>>* hidden, const LayerwiseOptions& options,
                                       int threads, std::map<std::string, std::vector<uint8_t>>* solved) {
  threads = std::max(1, threads);
  const int n_layer = static_cast<int>(model.layers().size());
  if (layer < 0 || layer >= n_layer || hidden->size() != chunks.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("layer %d of %d, with activations for %d of %d chunks", layer,
                                                      n_layer, hidden->size(), chunks.size()));
  }
  const LlamaLayer& current = model.layers()[static_cast<size_t>(layer)];
  LayerReport report;
  report.layer = layer;
  // 1. Statistics of the layer's inputs: each chunk's own, added in chunk
  // order, as many chunks at once as their statistics' memory allows.
  const int parallel_statistics = static_cast<int>(std::min<uint64_t>(
      threads,
      std::max<uint64_t>(1, options.parallel_statistics_bytes / std::max<uint64_t>(1, LayerStatisticsBytes(current)))));
  HessianCollector hessians(false);
  ChannelAbsMeans abs_means;
  {
    std::vector<std::unique_ptr<HessianCollector>> one(static_cast<size_t>(parallel_statistics));
    std::vector<std::unique_ptr<ChannelAbsMeans>> means(static_cast<size_t>(parallel_statistics));
    QF_RETURN_IF_ERROR(ForEachChunk(
        chunks.size(), parallel_statistics,
        [&](size_t c, size_t slot) {
          one[slot] = std::make_unique<HessianCollector>(false);
          means[slot] = std::make_unique<ChannelAbsMeans>();
          TeeSink both(one[slot].get(), means[slot].get());
          std::vector<float> h = (*hidden)[c];
          return RunForwardLayers(model, chunks[c], layer, layer + 1, &h, &both, nullptr);
        },
        [&](size_t c, size_t slot) {
          hessians.Merge(*one[slot]);
          abs_means.Merge(*means[slot]);
          if (options.progress) options.progress(absl::StrFormat("Hessians: chunk %d of %d", c + 1, chunks.size()));
        }));
  }

  // The layer's matrices as floats (every expert), from the plan's sources.
  std::map<std::string, Tensor> tensors;
  for (const Linear* m : LayerMatrices(current)) {
    auto it = tensors_in.find(m->name);
    if (it == tensors_in.end()) continue;
    Tensor& t = tensors[m->name];
    t.plan = it->second;
    const int64_t rows = t.plan->output.n_rows(), columns = t.plan->output.ne[0];
    t.values.resize(static_cast<size_t>(rows * columns));
    std::vector<float> scratch;
    ConvertRows(t.plan->source->info.type, t.plan->source->data, GgmlType::kF32, t.values.data(), rows, columns,
                nullptr, &scratch);
  }
  std::vector<float> attn_norm = current.attn_norm, ffn_norm = current.ffn_norm;

  // 2. AWQ: search the groups on the unscaled weights, then fold.
  if (fold) {
    for (const Linear* m : LayerMatrices(current)) {
      if (!tensors.contains(m->name)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("folding AWQ scales into layer %d needs '%s' among its tensors", layer, m->name));
      }
    }
    auto imatrix_of = [&](const std::string& name, const std::vector<double>& h, std::vector<float>* own) {
      const PlannedTensor& t = *tensors[name].plan;
      if (t.imatrix) return t.imatrix->data();
      const int64_t n = t.output.ne[0];
      own->resize(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) (*own)[j] = static_cast<float>(h[j * n + j] / 2);
      return static_cast<const float*>(own->data());
    };
    auto search = [&](const std::string& entry, std::vector<const Linear*> members,
                      std::vector<int64_t> shared = {}) -> absl::StatusOr<std::vector<float>> {
      const std::vector<double> h = hessians.Hessian(entry);
      std::vector<float> x_mean = abs_means.Mean(entry);
      if (h.empty() || x_mean.empty()) return std::vector<float>();
      AwqGroup group;
      group.columns = members[0]->n_in;
      group.hessian = &h;
      group.x_mean = std::move(x_mean);
      std::vector<float> own;
      group.imatrix = imatrix_of(members[0]->name, h, &own);
      group.shared = std::move(shared);
      for (const Linear* m : members) {
        const Tensor& t = tensors[m->name];
        group.members.push_back({t.values.data(), t.plan->output.ne[1], t.plan->output.type, options.awq_round});
      }
      QF_ASSIGN_OR_RETURN(AwqScales scales, SearchAwqScales(group));
      if (scales.ratio < 0) return std::vector<float>();
      ++report.scaled_groups;
      return scales.s;
    };
    const std::string blk = absl::StrFormat("blk.%d.", layer);
    LayerScales scales;
    QF_ASSIGN_OR_RETURN(scales.qkv, search(blk + "attn_qkv", {&current.wq, &current.wk, &current.wv}));
    // o reads v's rows; under grouped-query attention each v row feeds
    // several heads, whose columns then share a scale.
    const int64_t head_dim = model.hparams().head_dim;
    const int64_t heads_per_kv = current.wv.n_out > 0 ? current.wo.n_in / current.wv.n_out : 0;
    if (heads_per_kv >= 1 && current.wo.n_in == heads_per_kv * current.wv.n_out && current.wv.bias.empty() &&
        head_dim > 0 && current.wv.n_out % head_dim == 0) {
      QF_ASSIGN_OR_RETURN(scales.o, search(current.wo.name, {&current.wo},
                                           heads_per_kv > 1 ? SharedByKvHead(current.wo.n_in, head_dim, heads_per_kv)
                                                            : std::vector<int64_t>()));
    }
    if (model.hparams().n_expert == 0) {
      QF_ASSIGN_OR_RETURN(scales.gate_up, search(blk + "ffn_gate_up", {&current.gate, &current.up}));
      if (current.up.bias.empty()) {
        QF_ASSIGN_OR_RETURN(scales.down, search(current.down.name, {&current.down}));
      }
    }
    LayerFloats floats;
    floats.n_embd = model.hparams().n_embd;
    floats.head_dim = head_dim;
    floats.heads_per_kv = std::max<int64_t>(1, heads_per_kv);
    floats.attn_norm = std::move(attn_norm);
    floats.ffn_norm = std::move(ffn_norm);
    std::vector<float>* roles[] = {&floats.wq,   &floats.wk, &floats.wv,  &floats.wo,
                                   &floats.gate, &floats.up, &floats.down};
    const std::vector<const Linear*> matrices = LayerMatrices(current);
    for (size_t i = 0; i < matrices.size(); ++i) *roles[i] = std::move(tensors[matrices[i]->name].values);
    FoldAwqScales(scales, floats);
    for (size_t i = 0; i < matrices.size(); ++i) tensors[matrices[i]->name].values = std::move(*roles[i]);
    attn_norm = std::move(floats.attn_norm);
    ffn_norm = std::move(floats.ffn_norm);
    for (const Linear* m : {&current.wq, &current.wk, &current.wv}) tensors[m->name].scale = scales.qkv;
    tensors[current.wo.name].scale = scales.o;
    for (const Linear* m : {&current.gate, &current.up}) tensors[m->name].scale = scales.gate_up;
    tensors[current.down.name].scale = scales.down;
  }

  // 3. Every matrix of every tensor a job, on `threads`.
  std::vector<MatrixJob> jobs;
  for (auto& [name, t] : tensors) {
    std::vector<uint8_t>& bytes = (*solved)[name];
    bytes.assign(t.plan->output.nbytes, 0);
    const size_t matrix_bytes =
        static_cast<size_t>(t.plan->output.ne[1]) * RowSize(t.plan->output.type, t.plan->output.ne[0]);
    for (int64_t e = 0; e < t.plan->output.ne[2]; ++e) jobs.push_back({&t, e, bytes.data() + e * matrix_bytes});
  }
  report.matrices = static_cast<int>(jobs.size());
  std::atomic<size_t> next{0};
  std::vector<absl::Status> errors(jobs.size());
  std::atomic<size_t> finished{0};
  auto work = [&](bool reports) {
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      errors[j] = SolveMatrix(jobs[j], hessians, options);
      const size_t done = finished.fetch_add(1) + 1;
      if (reports && options.progress) {
        options.progress(absl::StrFormat("solving: %d of %d matrices done", done, jobs.size()));
      }
    }
  };
  std::vector<std::thread> pool;  // BLAS is on one thread: the matrices are solved one per thread
  for (int i = 1; i < std::min<int>(threads, static_cast<int>(jobs.size())); ++i) pool.emplace_back(work, false);
  work(true);  // this thread reports
  for (std::thread& t : pool) t.join();
  for (const absl::Status& s : errors) QF_RETURN_IF_ERROR(s);

  // The folded norms, written as the plan's type.
  const std::vector<float> original_attn_norm = current.attn_norm, original_ffn_norm = current.ffn_norm;
  if (fold) {
    for (auto [which, values] : {std::make_pair("attn_norm", &attn_norm), std::make_pair("ffn_norm", &ffn_norm)}) {
      const std::string name = LayerNormName(layer, which);
      auto it = tensors_in.find(name);
      if (it == tensors_in.end()) {
        return absl::InvalidArgumentError(
            absl::StrFormat("folding AWQ scales into layer %d needs '%s' among its tensors", layer, name));
      }
      const PlannedTensor& p = *it->second;
      std::vector<uint8_t>& bytes = (*solved)[name];
      bytes.assign(p.output.nbytes, 0);
      QuantizeRowsFast(p.output.type, values->data(), bytes.data(), 1, p.output.ne[0], nullptr);
    }
  }
  // 4. The next layer's inputs are what the quantized layer makes of this
  // one's; then the layer is its source again.
  absl::Cleanup restore = [&] {
    for (const auto& [name, t] : tensors) model.ReplaceMatrix(name, t.plan->source->info.type, t.plan->source->data);
    if (fold) {
      model.ReplaceNorm(LayerNormName(layer, "attn_norm"), original_attn_norm);
      model.ReplaceNorm(LayerNormName(layer, "ffn_norm"), original_ffn_norm);
    }
  };
  if (layer + 1 < n_layer) {
    for (const auto& [name, t] : tensors) model.ReplaceMatrix(name, t.plan->output.type, (*solved)[name].data());
    if (fold) {
      model.ReplaceNorm(LayerNormName(layer, "attn_norm"), attn_norm);
      model.ReplaceNorm(LayerNormName(layer, "ffn_norm"), ffn_norm);
    }
    QF_RETURN_IF_ERROR(ForEachChunk(
        chunks.size(), threads,
        [&](size_t c, size_t) {
          return RunForwardLayers(model, chunks[c], layer, layer + 1, &(*hidden)[c], nullptr, nullptr);
        },
        [&](size_t c, size_t) {
          if (options.progress)
            options.progress(absl::StrFormat("activations out: chunk %d of %d", c + 1, chunks.size()));
        }));
  }
  return report;
}

}  // namespace quantfleet
