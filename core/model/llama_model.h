// The weights and hyperparameters of a llama-family model (architectures
// "llama" with or without a mixture of experts, "qwen2", "qwen3") read from GGUF, as the forward pass uses them.
// Weight matrices stay where they are in the memory-mapped file, in their
// own type (F32, F16, BF16 or any type core/quant can dequantize: Q4_0 to
// Q8_0, the K-quants, IQ4_NL, IQ4_XS), and are converted a block of rows at
// a time as products need them, so memory stays near the model's own size;
// norms and biases are copied as F32.
//
// Thread-safety: immutable after Load; share freely. The GgufModel given
// to Load must outlive it.
#ifndef QUANTFLEET_CORE_MODEL_LLAMA_MODEL_H_
#define QUANTFLEET_CORE_MODEL_LLAMA_MODEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/gguf/gguf_model.h"
#include "core/quant/ggml_type.h"

namespace quantfleet {

struct LlamaHparams {
  std::string arch;
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // per head (key_length), n_embd / n_head unless given
  int n_rot = 0;     // rotated dimensions per head
  int n_vocab = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  int n_expert = 0;              // > 0: a mixture of experts in every feed-forward block
  int n_expert_used = 0;         // experts each token is routed to
};

// y = W x (+ b) for one weight matrix of n_out rows of n_in (or n_mat such
// matrices back to back: the experts of a mixture).
struct Linear {
  std::string name;  // the GGUF tensor name, e.g. "blk.0.attn_q.weight"
  int n_in = 0;
  int n_out = 0;
  int n_mat = 1;
  GgmlType source_type = GgmlType::kF32;
  const uint8_t* data = nullptr;  // n_out rows of n_in values of source_type (mapped)
  std::vector<float> bias;        // empty or n_out

  // Rows [first, first + count) as F32 into `out` (count * n_in values);
  // expert e's rows start at e * n_out.
  void RowsToFloat(int64_t first, int64_t count, float* out) const;
};

struct LlamaLayer {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> q_norm, k_norm;      // qwen3: per-head RMSNorm of Q and K
  Linear wq, wk, wv, wo, gate, up, down;  // gate/up/down: n_expert matrices in a mixture
  Linear router;                          // ffn_gate_inp: expert scores (mixtures only)
};

class LlamaModel {
 public:
  // Reads `model` (named `path` in errors). INVALID_ARGUMENT names the key
  // or tensor that is missing or has the wrong shape; UNIMPLEMENTED for
  // other architectures, quantized weights and other mixtures of experts.
  static absl::StatusOr<LlamaModel> Load(const GgufModel& model, const std::string& path);

  const LlamaHparams& hparams() const { return hp_; }
  const Linear& token_embd() const { return token_embd_; }  // n_vocab rows of n_embd
  const std::vector<float>& output_norm() const { return output_norm_; }
  const Linear& output() const { return output_; }                      // token_embd when tied
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }  // empty or n_rot / 2
  const std::vector<LlamaLayer>& layers() const { return layers_; }

  // Points every matrix named `name` (the GGUF tensor name; a tied output
  // shares the embedding's) at `data`, rows of `type` with the same shape,
  // which must outlive the model's use. Returns false when no matrix has
  // that name. For measuring the model with one matrix quantized.
  bool ReplaceMatrix(const std::string& name, GgmlType type, const uint8_t* data);
  // Replaces a layer's attn_norm or ffn_norm weights (n_embd values),
  // named as in GGUF ("blk.3.ffn_norm.weight"). Returns false for any
  // other name or size. For folding scales into the norms.
  bool ReplaceNorm(const std::string& name, std::vector<float> values);

 private:
  LlamaHparams hp_;
  Linear token_embd_;
  std::vector<float> output_norm_;
  Linear output_;
  std::vector<float> rope_freqs_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace quantfleet

#endif  // QUANTFLEET_CORE_MODEL_LLAMA_MODEL_H_
