#include "core/calibration/type_budget.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/calibration/evaluation.h"
#include "core/model/forward_pass.h"
#include "core/quant/quantize_rows.h"

namespace quantfleet {
namespace {

constexpr uint64_t kAlignment = 32;  // tensors are laid out 32 bytes apart

// The layer a matrix belongs to: its blk.N, 0 for the embedding, the last
// layer for the output (whose run starts there).
int LayerOf(const std::string& name, int n_layer) {
  int layer = 0;
  if (name.rfind("blk.", 0) == 0) {
    const size_t dot = name.find('.', 4);
    if (dot != std::string::npos && absl::SimpleAtoi(name.substr(4, dot - 4), &layer)) return layer;
  }
  return name.rfind("output", 0) == 0 ? n_layer - 1 : 0;
}

const Linear* FindMatrix(const LlamaModel& model, const std::string& name) {
  if (model.token_embd().name == name) return &model.token_embd();
  if (model.output().name == name) return &model.output();
  for (const LlamaLayer& l : model.layers()) {
    for (const Linear* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) {
      if (m->name == name) return m;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::vector<TensorCosts>> MeasureTypeCosts(const LlamaModel& model,
                                                          const std::vector<std::vector<TokenId>>& chunks,
                                                          const std::vector<std::string>& names,
                                                          const std::map<std::string, std::vector<float>>& imatrix,
                                                          int threads,
                                                          const std::function<void(int done, int total)>& on_tensor) {
  const LlamaHparams& hp = model.hparams();
  if (chunks.empty()) return absl::InvalidArgumentError("no calibration chunk to measure with");
  const int ctx = static_cast<int>(chunks.front().size());
  const int first = ctx / 2;
  const size_t n_vocab = static_cast<size_t>(hp.n_vocab);

  for (const std::string& name : names) {
    const Linear* m = FindMatrix(model, name);
    if (m == nullptr || m->n_mat != 1) {
      return absl::InvalidArgumentError(absl::StrFormat("%s is not a dense weight matrix of the model", name));
    }
  }
  // The unquantized model, once: each chunk's logits over the scored half,
  // and the residual stream entering every layer a measured matrix is in.
  std::vector<bool> wanted(static_cast<size_t>(hp.n_layer), false);
  for (const std::string& name : names) wanted[static_cast<size_t>(LayerOf(name, hp.n_layer))] = true;
  std::vector<std::vector<float>> base_logits(chunks.size());
  std::vector<std::vector<std::vector<float>>> layer_input(chunks.size());
  for (size_t c = 0; c < chunks.size(); ++c) {
    std::vector<float> hidden, logits;
    layer_input[c].resize(static_cast<size_t>(hp.n_layer));
    for (int l = 0; l < hp.n_layer; ++l) {
      if (wanted[static_cast<size_t>(l)]) layer_input[c][static_cast<size_t>(l)] = hidden;
      const bool last = l + 1 == hp.n_layer;
      if (absl::Status s = RunForwardLayers(model, chunks[c], l, l + 1, &hidden, nullptr, last ? &logits : nullptr);
          !s.ok()) {
        return s;
      }
    }
    base_logits[c].assign(logits.begin() + static_cast<std::ptrdiff_t>(first * n_vocab), logits.end());
  }

  // Matrices are measured in parallel, each thread on its own copy of the
  // model (weights are shared pointers; only the matrix under test is
  // swapped) with single-threaded BLAS.
  const int n_threads = std::max(1, std::min<int>(threads, static_cast<int>(names.size())));
  if (n_threads > 1) SetBlasThreads(1);
  std::vector<TensorCosts> out(names.size());
  absl::Mutex mu;
  size_t next = 0;
  int done = 0;
  absl::Status failed;
  auto work = [&] {
    LlamaModel local = model;
    std::vector<float> rows, logits;
    std::vector<uint8_t> quantized;
    for (;;) {
      size_t t;
      {
        absl::MutexLock l(&mu);
        if (next >= names.size() || !failed.ok()) return;
        t = next++;
      }
      const std::string& name = names[t];
      const Linear original = *FindMatrix(local, name);
      const int layer = LayerOf(name, hp.n_layer);
      auto im = imatrix.find(name);
      const float* weights =
          im != imatrix.end() && im->second.size() == static_cast<size_t>(original.n_in) ? im->second.data() : nullptr;
      rows.resize(static_cast<size_t>(original.n_out) * static_cast<size_t>(original.n_in));
      original.RowsToFloat(0, original.n_out, rows.data());
      TensorCosts costs{name, {}};
      absl::Status status;
      for (GgmlType type : CandidateTypes(original.n_in)) {
        const size_t row_bytes = RowSize(type, original.n_in);
        quantized.resize(row_bytes * static_cast<size_t>(original.n_out));
        QuantizeRowsFast(type, rows.data(), quantized.data(), original.n_out, original.n_in, weights);
        local.ReplaceMatrix(name, type, quantized.data());
        EvalAccumulator acc;
        for (size_t c = 0; c < chunks.size() && status.ok(); ++c) {
          std::vector<float> hidden = layer_input[c][static_cast<size_t>(layer)];
          status = RunForwardLayers(local, chunks[c], layer, hp.n_layer, &hidden, nullptr, &logits);
          for (int j = first; status.ok() && j + 1 < ctx; ++j) {
            acc.Add(base_logits[c].data() + static_cast<size_t>(j - first) * n_vocab,
                    logits.data() + static_cast<size_t>(j) * n_vocab, hp.n_vocab,
                    chunks[c][static_cast<size_t>(j) + 1]);
          }
        }
        local.ReplaceMatrix(name, original.source_type, original.data);
        if (!status.ok()) break;
        const uint64_t bytes =
            (row_bytes * static_cast<uint64_t>(original.n_out) + kAlignment - 1) / kAlignment * kAlignment;
        costs.options.push_back({type, bytes, acc.Report(static_cast<int>(chunks.size())).kld.value});
      }
      std::sort(costs.options.begin(), costs.options.end(),
                [](const TypeCost& a, const TypeCost& b) { return a.bytes < b.bytes; });
      absl::MutexLock l(&mu);
      if (!status.ok()) {
        if (failed.ok()) failed = status;
        return;
      }
      out[t] = std::move(costs);
      ++done;
      if (on_tensor) on_tensor(done, static_cast<int>(names.size()));
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (!failed.ok()) return failed;
  return out;
}

}  // namespace quantfleet
