// Quantization layer after layer over a calibration text (GPTQ, AWQ, or
// both). See layerwise_method.h.
#include "core/calibration/layerwise_method.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/calibration/awq_search.h"
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

std::string NormName(int layer, const char* which) { return absl::StrFormat("blk.%d.%s.weight", layer, which); }

// Hands every product's input to two sinks.
class Tee : public ActivationSink {
 public:
  Tee(ActivationSink* a, ActivationSink* b) : a_(a), b_(b) {}
  void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) override {
    a_->OnMatMulInput(weight, x, n_tokens);
    b_->OnMatMulInput(weight, x, n_tokens);
  }
  void OnExpertInput(const Linear& weight, int slot, const int32_t* experts, const float* x,
                     int64_t n_tokens) override {
    a_->OnExpertInput(weight, slot, experts, x, n_tokens);
    b_->OnExpertInput(weight, slot, experts, x, n_tokens);
  }
  bool WantsOutput() const override { return a_->WantsOutput() || b_->WantsOutput(); }

 private:
  ActivationSink* a_;
  ActivationSink* b_;
};

// S^-1 H S^-1: the Hessian of x / s.
std::vector<double> ScaledHessian(std::vector<double> h, const std::vector<float>& s) {
  if (s.empty() || h.empty()) return h;
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) h[i * n + j] /= static_cast<double>(s[i]) * s[j];
  }
  return h;
}

}  // namespace

std::string LayerwiseMethod::EntryFor(const std::string& weight_name) {
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

absl::StatusOr<std::unique_ptr<LayerwiseMethod>> LayerwiseMethod::Create(const GgufModel& file, const std::string& path,
                                                                         const QuantizePlan& plan,
                                                                         std::vector<std::vector<TokenId>> chunks,
                                                                         LayerwiseOptions options, int threads,
                                                                         Progress progress) {
  QF_ASSIGN_OR_RETURN(LlamaModel model, LlamaModel::Load(file, path));
  return std::unique_ptr<LayerwiseMethod>(
      new LayerwiseMethod(std::move(model), plan, std::move(chunks), options, threads, std::move(progress)));
}

LayerwiseMethod::LayerwiseMethod(LlamaModel model, const QuantizePlan& plan, std::vector<std::vector<TokenId>> chunks,
                                 LayerwiseOptions options, int threads, Progress progress)
    : plan_(plan),
      chunks_(std::move(chunks)),
      options_(options),
      threads_(std::max(1, threads)),
      progress_(std::move(progress)),
      model_(std::move(model)),
      hidden_(chunks_.size()) {
  // Folding rewrites every matrix and both norms of a layer, whatever
  // their types; GPTQ alone takes the matrices whose types have levels,
  // and a solver of its own every matrix.
  // Mixtures of experts fold the attention's groups only (their FFN input
  // also feeds the router, and each expert sees its own tokens).
  fold_ = options_.awq;
  std::map<std::string, const Linear*> matrices;
  for (size_t l = 0; l < model_.layers().size(); ++l) {
    for (const Linear* m : Matrices(model_.layers()[l])) matrices[m->name] = m;
    if (fold_) {
      matrices[NormName(static_cast<int>(l), "attn_norm")] = nullptr;
      matrices[NormName(static_cast<int>(l), "ffn_norm")] = nullptr;
    }
  }
  for (size_t i = 0; i < plan_.tensors.size(); ++i) {
    const PlannedTensor& t = plan_.tensors[i];
    auto m = matrices.find(t.output.name);
    if (m == matrices.end() || t.output.ne[0] % BlockSize(t.output.type) != 0) continue;
    if (m->second != nullptr && t.output.ne[0] != m->second->n_in) continue;
    if (!fold_ && !options_.solve && (!t.convert || !HasBlockLevels(t.output.type))) continue;
    handled_[t.output.name] = i;
  }
  if (fold_) {
    // A layer folds only when every tensor it rewrites is written here.
    for (size_t l = 0; l < model_.layers().size(); ++l) {
      bool all = handled_.contains(NormName(static_cast<int>(l), "attn_norm")) &&
                 handled_.contains(NormName(static_cast<int>(l), "ffn_norm"));
      for (const Linear* m : Matrices(model_.layers()[l])) all = all && handled_.contains(m->name);
      if (!all) fold_ = false;
    }
    if (!fold_) {
      for (auto it = handled_.begin(); it != handled_.end();) {
        const PlannedTensor& t = plan_.tensors[it->second];
        const bool keep = t.convert && HasBlockLevels(t.output.type) && !absl::EndsWith(t.output.name, "norm.weight");
        it = keep && options_.gptq ? std::next(it) : handled_.erase(it);
      }
    }
  }
}

bool LayerwiseMethod::Handles(const PlannedTensor& t) const { return handled_.contains(t.output.name); }

absl::StatusOr<std::vector<uint8_t>> LayerwiseMethod::Quantize(const PlannedTensor& t, int64_t matrix) {
  const int64_t n_rows = t.output.ne[1];  // one matrix
  absl::MutexLock lock(&mu_);
  QF_RETURN_IF_ERROR(SolveThrough(EntryLayer(t.output.name)));
  auto it = solved_.find(t.output.name);
  if (it == solved_.end()) {
    return absl::InternalError(absl::StrFormat("tensor '%s' was not solved", t.output.name));
  }
  const size_t matrix_bytes = static_cast<size_t>(n_rows) * RowSize(t.output.type, t.output.ne[0]);
  const size_t at = static_cast<size_t>(matrix) * matrix_bytes;
  if (at + matrix_bytes > it->second.bytes.size()) {
    return absl::InternalError(absl::StrFormat("tensor '%s' has no matrix %d", t.output.name, matrix));
  }
  std::vector<uint8_t> out(it->second.bytes.begin() + at, it->second.bytes.begin() + at + matrix_bytes);
  if (--it->second.matrices_left == 0) solved_.erase(it);
  return out;
}

absl::Status LayerwiseMethod::SolveThrough(int layer) {
  while (failed_.ok() && next_layer_ <= layer) {
    absl::StatusOr<LayerReport> report = SolveLayer(next_layer_);
    ++next_layer_;
    if (!report.ok()) {
      failed_ = report.status();
    } else if (progress_) {
      progress_(*report, static_cast<int>(model_.layers().size()));
    }
  }
  return failed_;
}

absl::StatusOr<LayerReport> LayerwiseMethod::SolveLayer(int layer) {
  const int n_layer = static_cast<int>(model_.layers().size());
  const LlamaLayer& current = model_.layers()[static_cast<size_t>(layer)];
  LayerReport report;
  report.layer = layer;
  // 1. Statistics of the layer's inputs, through the quantized layers before it.
  SetBlasThreads(threads_);
  HessianCollector hessians(false);
  ChannelAbsMeans abs_means;
  for (size_t c = 0; c < chunks_.size(); ++c) {
    HessianCollector one(false);
    Tee both(&one, &abs_means);
    std::vector<float> h = hidden_[c];
    QF_RETURN_IF_ERROR(RunForwardLayers(model_, chunks_[c], layer, layer + 1, &h, &both, nullptr));
    hessians.Merge(one);
  }

  // The layer's tensors as floats (every expert), from the plan's sources.
  struct Tensor {
    const PlannedTensor* plan;
    std::vector<float> values;
    std::vector<float> scale;  // AWQ: its columns' scales (empty: none)
  };
  std::map<std::string, Tensor> tensors;
  for (const Linear* m : Matrices(current)) {
    auto h = handled_.find(m->name);
    if (h == handled_.end()) continue;
    Tensor& t = tensors[m->name];
    t.plan = &plan_.tensors[h->second];
    const int64_t rows = t.plan->output.n_rows(), columns = t.plan->output.ne[0];
    t.values.resize(static_cast<size_t>(rows * columns));
    std::vector<float> scratch;
    ConvertRows(t.plan->source->info.type, t.plan->source->data, GgmlType::kF32, t.values.data(), rows, columns,
                nullptr, &scratch);
  }
  std::vector<float> attn_norm = current.attn_norm, ffn_norm = current.ffn_norm;

  // 2. AWQ: search the four groups on the unscaled weights, then fold.
  if (fold_) {
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
        group.members.push_back({t.values.data(), t.plan->output.ne[1], t.plan->output.type, options_.awq_round});
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
    const int64_t head_dim = model_.hparams().head_dim;
    const int64_t heads_per_kv = current.wv.n_out > 0 ? current.wo.n_in / current.wv.n_out : 0;
    if (heads_per_kv >= 1 && current.wo.n_in == heads_per_kv * current.wv.n_out && current.wv.bias.empty() &&
        head_dim > 0 && current.wv.n_out % head_dim == 0) {
      QF_ASSIGN_OR_RETURN(scales.o, search(current.wo.name, {&current.wo},
                                           heads_per_kv > 1 ? SharedByKvHead(current.wo.n_in, head_dim, heads_per_kv)
                                                            : std::vector<int64_t>()));
    }
    if (model_.hparams().n_expert == 0) {
      QF_ASSIGN_OR_RETURN(scales.gate_up, search(blk + "ffn_gate_up", {&current.gate, &current.up}));
      if (current.up.bias.empty()) {
        QF_ASSIGN_OR_RETURN(scales.down, search(current.down.name, {&current.down}));
      }
    }
    LayerFloats floats;
    floats.n_embd = model_.hparams().n_embd;
    floats.head_dim = head_dim;
    floats.heads_per_kv = std::max<int64_t>(1, heads_per_kv);
    floats.attn_norm = std::move(attn_norm);
    floats.ffn_norm = std::move(ffn_norm);
    std::vector<float>* roles[] = {&floats.wq,   &floats.wk, &floats.wv,  &floats.wo,
                                   &floats.gate, &floats.up, &floats.down};
    const std::vector<const Linear*> matrices = Matrices(current);
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

  // 3. Every matrix of every tensor a job, on threads_.
  struct Job {
    Tensor* tensor;
    int64_t matrix;
    uint8_t* dst;  // where its rows go in the tensor's bytes
  };
  std::vector<Job> jobs;
  for (auto& [name, t] : tensors) {
    Solved& s = solved_[name];
    s.bytes.assign(t.plan->output.nbytes, 0);
    s.matrices_left = t.plan->output.ne[2];
    const size_t matrix_bytes =
        static_cast<size_t>(t.plan->output.ne[1]) * RowSize(t.plan->output.type, t.plan->output.ne[0]);
    for (int64_t e = 0; e < t.plan->output.ne[2]; ++e) jobs.push_back({&t, e, s.bytes.data() + e * matrix_bytes});
  }
  report.matrices = static_cast<int>(jobs.size());
  std::atomic<size_t> next{0};
  std::vector<absl::Status> errors(jobs.size());
  auto work = [&] {
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      const Tensor& t = *jobs[j].tensor;
      const PlannedTensor& p = *t.plan;
      const int64_t e = jobs[j].matrix, rows = p.output.ne[1], columns = p.output.ne[0];
      const float* w = t.values.data() + e * rows * columns;
      std::vector<double> h = ScaledHessian(hessians.Hessian(EntryFor(p.output.name), static_cast<int>(e)), t.scale);
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
      if (options_.solve) {
        absl::StatusOr<std::vector<uint8_t>> bytes = options_.solve(p, e, w, rows, columns, std::move(h));
        if (bytes.ok() && bytes->size() != static_cast<size_t>(rows) * RowSize(p.output.type, columns)) {
          bytes = absl::InternalError(absl::StrFormat("the solver gave %d bytes", bytes->size()));
        }
        if (!bytes.ok()) {
          errors[j] = absl::Status(bytes.status().code(),
                                   absl::StrFormat("tensor '%s': %s", p.output.name, bytes.status().message()));
          continue;
        }
        std::copy(bytes->begin(), bytes->end(), jobs[j].dst);
        continue;
      }
      if (!options_.gptq || h.empty() || !HasBlockLevels(p.output.type)) {
        QuantizeRowsFast(p.output.type, w, jobs[j].dst, rows, columns, qw);
        continue;
      }
      absl::StatusOr<std::vector<uint8_t>> bytes =
          GptqQuantizeRows(p.output.type, w, rows, columns, std::move(h), qw, options_.gptq_options);
      if (!bytes.ok()) {
        errors[j] = absl::Status(bytes.status().code(),
                                 absl::StrFormat("tensor '%s': %s", p.output.name, bytes.status().message()));
        continue;
      }
      std::copy(bytes->begin(), bytes->end(), jobs[j].dst);
    }
  };
  SetBlasThreads(1);  // the matrices are solved one per thread
  std::vector<std::thread> pool;
  for (int i = 1; i < std::min<int>(threads_, static_cast<int>(jobs.size())); ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const absl::Status& s : errors) QF_RETURN_IF_ERROR(s);

  // The folded norms, written as the plan's type.
  if (fold_) {
    for (auto [which, values] : {std::make_pair("attn_norm", &attn_norm), std::make_pair("ffn_norm", &ffn_norm)}) {
      const std::string name = NormName(layer, which);
      const PlannedTensor& p = plan_.tensors[handled_[name]];
      Solved& s = solved_[name];
      s.bytes.assign(p.output.nbytes, 0);
      s.matrices_left = 1;
      QuantizeRowsFast(p.output.type, values->data(), s.bytes.data(), 1, p.output.ne[0], nullptr);
      model_.ReplaceNorm(name, *values);
    }
  }
  // 4. The layer from now on is its quantized self; the next one's inputs
  // are what it makes of this one's.
  for (const auto& [name, t] : tensors) model_.ReplaceMatrix(name, t.plan->output.type, solved_[name].bytes.data());
  if (layer + 1 < n_layer) {
    SetBlasThreads(threads_);
    for (size_t c = 0; c < chunks_.size(); ++c) {
      QF_RETURN_IF_ERROR(RunForwardLayers(model_, chunks_[c], layer, layer + 1, &hidden_[c], nullptr, nullptr));
    }
  }
  // The quantized bytes go to the executor, which frees them once taken;
  // the layer, never run again, points back at its mapped source.
  for (const auto& [name, t] : tensors) model_.ReplaceMatrix(name, t.plan->source->info.type, t.plan->source->data);
  return report;
}

}  // namespace quantfleet
