// AWQ's per-channel scale search (Lin et al., 2023, as AutoAWQ defines it)
// for one group of weight matrices that read the same input x: with s a
// scale per input channel, W x = (W diag(s)) (x / s), and rounding
// W diag(s) hurts less where large activations meet the weights. The
// candidates are AutoAWQ's grid of 20 ratios r, s = x_mean^r / w_mean^(1-r)
// (x_mean: mean |x| per channel; w_mean: mean over rows of |W| normalised
// by its 32-column group's maximum), normalised by sqrt(max s * min s),
// plus s = 1 (no scaling), so the result is never worse than none on the
// calibration data. Each candidate's loss is the group's output error over
// the calibration inputs, tr(D H D^T) summed over the members, where
// D = W - Q(W diag(s)) / s and Q is the member's ggml type's own quantizer
// (with importance weights imatrix / s^2, the importance of x / s), or the
// member's own rounding (a checkpoint format's grid).
//
// Thread-safety: pure functions; ChannelAbsMeans belongs to one thread.
#ifndef QUANTFLEET_CORE_CALIBRATION_AWQ_SEARCH_H_
#define QUANTFLEET_CORE_CALIBRATION_AWQ_SEARCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/forward_pass.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

// Mean |x| per input channel of every dense matrix product, under
// HessianCollector's entry names (one for q/k/v, one for gate/up).
class ChannelAbsMeans : public ActivationSink {
 public:
  void OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) override;
  void OnExpertInput(const Linear&, int, const int32_t*, const float*, int64_t) override {}
  bool WantsOutput() const override { return false; }

  // Empty when no token reached `entry`.
  std::vector<float> Mean(const std::string& entry) const;
  // Adds `other`'s sums and counts (a collector per chunk, added in chunk
  // order, gives the same sums however the chunks were run).
  void Merge(const ChannelAbsMeans& other);

 private:
  struct Sums {
    std::vector<double> abs;
    int64_t tokens = 0;
  };
  std::map<std::string, Sums> sums_;
};

// Rounds rows x columns weights to a grid other than a ggml type's,
// writing the dequantized values to `back`.
using AwqRound = std::function<void(const float* w, int64_t rows, int64_t columns, float* back)>;

struct AwqMember {
  const float* w = nullptr;  // rows x columns, row-major
  int64_t rows = 0;
  GgmlType type = GgmlType::kQ4_K;  // what it will be quantized to
  AwqRound round;                   // set: this grid instead of the type's
};

struct AwqGroup {
  std::vector<AwqMember> members;
  int64_t columns = 0;
  const std::vector<double>* hessian = nullptr;  // columns x columns, of the shared input
  std::vector<float> x_mean;                     // columns
  const float* imatrix = nullptr;                // null or columns (mean x^2)
  // Columns that must share one scale (o's under grouped-query attention,
  // where one v row feeds several heads): shared[j] names column j's share,
  // 0 <= shared[j] < columns; empty: every column its own. Candidates then
  // average x_mean and w_mean over each share.
  std::vector<int64_t> shared;
};

struct AwqScales {
  std::vector<float> s;  // columns; all 1 when no scaling is best
  double ratio = -1;     // the grid's ratio chosen; -1: no scaling
  double loss = 0;       // of the chosen scales
  double unscaled_loss = 0;
};

// INVALID_ARGUMENT for shapes that do not fit or a member type without a
// quantizer.
absl::StatusOr<AwqScales> SearchAwqScales(const AwqGroup& group, int grid = 20);

// The group's loss (see above) for scales `s`.
double AwqLoss(const AwqGroup& group, const std::vector<float>& s);

// A dense llama layer's weights as floats, for folding scales into it.
struct LayerFloats {
  int64_t n_embd = 0;
  int64_t head_dim = 0;                    // o's columns are heads of head_dim
  int64_t heads_per_kv = 1;                // > 1: grouped-query attention (v's rows per kv head)
  std::vector<float> attn_norm, ffn_norm;  // n_embd each
  // Row-major; the rows of each: q n_q, k and v n_kv, o n_embd, gate and
  // up n_ff, down n_embd. Columns: n_embd, except o (n_q) and down (n_ff).
  std::vector<float> wq, wk, wv, wo, gate, up, down;
};

// Scales per group; empty: the group is not scaled.
struct LayerScales {
  std::vector<float> qkv;      // n_embd: folded into attn_norm
  std::vector<float> o;        // o's columns: folded into v's rows (equal within a kv head's heads)
  std::vector<float> gate_up;  // n_embd: folded into ffn_norm
  std::vector<float> down;     // n_ff: folded into up's rows
};

// Multiplies each scaled matrix's columns by its group's scales and
// divides what produces that input (the norm's weights, v's or up's rows)
// by them: the layer computes the same function, up to float rounding.
void FoldAwqScales(const LayerScales& scales, LayerFloats& layer);

// For o under grouped-query attention: column h * head_dim + d shares the
// scale of the first head of its kv head (the v row it reads).
std::vector<int64_t> SharedByKvHead(int64_t columns, int64_t head_dim, int64_t heads_per_kv);

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_CALIBRATION_AWQ_SEARCH_H_
