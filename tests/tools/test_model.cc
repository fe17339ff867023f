#include "tests/tools/test_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/str_format.h"
#include "core/gguf/gguf_file.h"
#include "core/gguf/gguf_model.h"
#include "core/gguf/gguf_writer.h"
#include "core/quant/half.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

struct TensorSpec {
  std::string name;
  int64_t ne0, ne1;
  bool is_norm;
  int64_t ne2 = 1;       // experts
  bool is_bias = false;  // small values around zero, F32
};

std::vector<TensorSpec> LlamaTensors(const TestModelSpec& s) {
  const int64_t head_dim = s.n_embd / s.n_head;
  const int64_t n_embd_gqa = head_dim * s.n_head_kv;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", s.n_embd, s.n_vocab, false});
  t.push_back({"output_norm.weight", s.n_embd, 1, true});
  if (!s.tied_output) t.push_back({"output.weight", s.n_embd, s.n_vocab, false});
  for (int l = 0; l < s.n_layer; ++l) {
    auto n = [&](const char* base) { return absl::StrFormat("blk.%d.%s", l, base); };
    t.push_back({n("attn_norm.weight"), s.n_embd, 1, true});
    t.push_back({n("attn_q.weight"), s.n_embd, s.n_embd, false});
    t.push_back({n("attn_k.weight"), s.n_embd, n_embd_gqa, false});
    t.push_back({n("attn_v.weight"), s.n_embd, n_embd_gqa, false});
    if (s.arch == "qwen2") {
      t.push_back({n("attn_q.bias"), s.n_embd, 1, false, 1, true});
      t.push_back({n("attn_k.bias"), n_embd_gqa, 1, false, 1, true});
      t.push_back({n("attn_v.bias"), n_embd_gqa, 1, false, 1, true});
    }
    if (s.arch == "qwen3" || s.arch == "qwen3moe") {
      t.push_back({n("attn_q_norm.weight"), head_dim, 1, true});
      t.push_back({n("attn_k_norm.weight"), head_dim, 1, true});
    }
    t.push_back({n("attn_output.weight"), s.n_embd, s.n_embd, false});
    t.push_back({n("ffn_norm.weight"), s.n_embd, 1, true});
    if (s.n_expert > 1) {
      t.push_back({n("ffn_gate_inp.weight"), s.n_embd, s.n_expert, false});
      t.push_back({n("ffn_gate_exps.weight"), s.n_embd, s.n_ff, false, s.n_expert});
      t.push_back({n("ffn_up_exps.weight"), s.n_embd, s.n_ff, false, s.n_expert});
      t.push_back({n("ffn_down_exps.weight"), s.n_ff, s.n_embd, false, s.n_expert});
    } else {
      t.push_back({n("ffn_gate.weight"), s.n_embd, s.n_ff, false});
      t.push_back({n("ffn_up.weight"), s.n_embd, s.n_ff, false});
      t.push_back({n("ffn_down.weight"), s.n_ff, s.n_embd, false});
    }
  }
  return t;
}

// Deterministic across platforms (std::normal_distribution is not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double Uniform() { return (static_cast<double>(gen_() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  float Normal() {
    const double u1 = Uniform(), u2 = Uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  uint64_t Next() { return gen_(); }

 private:
  std::mt19937_64 gen_;
};

std::vector<float> MakeValues(const TestModelSpec& s, const TensorSpec& t, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(t.ne0 * t.ne1 * t.ne2));
  if (t.is_norm) {
    for (float& x : v) x = 1.0f + 0.1f * rng.Normal();
    return v;
  }
  if (t.is_bias) {
    for (float& x : v) x = s.scale * rng.Normal();
    return v;
  }
  std::vector<float> col_scale(t.ne0, 1.0f);
  if (s.outliers) {
    for (int64_t c = 0; c < t.ne0; ++c) {
      if (rng.Uniform() < 0.01) col_scale[c] = 8.0f + 8.0f * static_cast<float>(rng.Uniform());
    }
  }
  for (int64_t r = 0; r < t.ne1 * t.ne2; ++r) {
    const bool zero_row = s.zero_rows && r % 97 == 13;
    for (int64_t c = 0; c < t.ne0; ++c) {
      float x = s.scale * rng.Normal() * col_scale[c];
      if (s.outliers && rng.Uniform() < 0.0005) x *= 60.0f;
      if (zero_row) x = 0.0f;
      if (s.zero_rows && r % 97 == 29 && c % 7 == 0) x = 1e-40f;  // subnormal
      v[static_cast<size_t>(r * t.ne0 + c)] = x;
    }
  }
  return v;
}

std::vector<uint8_t> Encode(const std::vector<float>& v, GgmlType type) {
  std::vector<uint8_t> out;
  if (type == GgmlType::kF32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    out.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = type == GgmlType::kF16 ? FloatToHalf(v[i]) : FloatToBFloat16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

struct Part {
  std::vector<GgufKv> kv;
  std::vector<GgufTensorInfo> infos;
  std::vector<std::vector<uint8_t>> data;
};

absl::Status WritePart(const Part& part, size_t alignment, const std::string& path) {
  std::vector<GgufTensorInfo> infos = part.infos;
  LayOutTensors(infos, alignment);
  std::vector<uint8_t> meta = SerializeGgufMeta(part.kv, infos, alignment);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrFormat("%s: cannot create", path));
  out.write(reinterpret_cast<const char*>(meta.data()), static_cast<std::streamsize>(meta.size()));
  for (size_t i = 0; i < infos.size(); ++i) {
    const std::vector<uint8_t>& d = part.data[i];
    out.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
    const size_t pad = (alignment - d.size() % alignment) % alignment;
    static const char kZeros[256] = {};
    out.write(kZeros, static_cast<std::streamsize>(pad));
  }
  if (!out.good()) return absl::InternalError(absl::StrFormat("%s: write failed", path));
  return absl::OkStatus();
}

std::vector<GgufKv> LlamaMetadata(const TestModelSpec& s) {
  std::vector<GgufKv> kv;
  kv.push_back(GgufKv::Str("general.architecture", s.arch));
  const std::string a = s.arch + ".";
  kv.push_back(GgufKv::Str("general.name", s.name));
  if (s.alignment) kv.push_back(GgufKv::U32("general.alignment", s.alignment));
  kv.push_back(GgufKv::U32(a + "context_length", 2048));
  kv.push_back(GgufKv::U32(a + "embedding_length", static_cast<uint32_t>(s.n_embd)));
  kv.push_back(GgufKv::U32(a + "block_count", static_cast<uint32_t>(s.n_layer)));
  kv.push_back(GgufKv::U32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff)));
  kv.push_back(GgufKv::U32(a + "rope.dimension_count", static_cast<uint32_t>(s.n_embd / s.n_head)));
  kv.push_back(GgufKv::U32(a + "attention.head_count", static_cast<uint32_t>(s.n_head)));
  kv.push_back(GgufKv::U32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv)));
  kv.push_back(GgufKv::F32(a + "attention.layer_norm_rms_epsilon", 1e-5f));
  kv.push_back(GgufKv::F32(a + "rope.freq_base", 10000.0f));
  const uint32_t ft = s.type == GgmlType::kF32 ? 0 : s.type == GgmlType::kF16 ? 1 : 32;
  kv.push_back(GgufKv::U32("general.file_type", ft));
  kv.push_back(GgufKv::U32(a + "vocab_size", static_cast<uint32_t>(s.n_vocab)));
  if (s.n_expert > 1) {
    kv.push_back(GgufKv::U32(a + "expert_count", static_cast<uint32_t>(s.n_expert)));
    kv.push_back(GgufKv::U32(a + "expert_used_count", 2));
    kv.push_back(GgufKv::U32(a + "expert_feed_forward_length", static_cast<uint32_t>(s.n_ff)));
  }
  kv.push_back(GgufKv::NumArray<int32_t>("test.int_array", GgufValueType::kInt32, {1, -2, 3}));
  kv.push_back(GgufKv::Bool("test.flag", true));
  kv.push_back(GgufKv::StrArray("test.strings", {"alpha", "", "gamma"}));
  return kv;
}

}  // namespace

absl::Status WriteTestModel(const TestModelSpec& given, const std::string& path) {
  TestModelSpec spec = given;
  std::vector<GgufKv> tokenizer_kv;
  if (!spec.vocab_from.empty()) {
    absl::StatusOr<GgufModel> vocab = GgufModel::Open(spec.vocab_from);
    if (!vocab.ok()) return vocab.status();
    for (const GgufKv& kv : vocab->kv()) {
      if (kv.key.rfind("tokenizer.", 0) == 0) tokenizer_kv.push_back(kv);
    }
    const GgufKv* tokens = FindKv(tokenizer_kv, "tokenizer.ggml.tokens");
    if (tokens == nullptr) return absl::InvalidArgumentError(spec.vocab_from + ": no tokenizer.ggml.tokens");
    spec.n_vocab = static_cast<int>(tokens->size());
  }
  Rng rng(spec.seed);
  std::vector<TensorSpec> tensors = LlamaTensors(spec);
  std::vector<GgufTensorInfo> infos;
  std::vector<std::vector<uint8_t>> data;
  for (const TensorSpec& t : tensors) {
    const GgmlType type = t.is_norm || t.is_bias ? GgmlType::kF32 : spec.type;
    GgufTensorInfo info;
    info.name = t.name;
    info.ne[0] = t.ne0;
    info.ne[1] = t.ne1;
    info.ne[2] = t.ne2;
    info.type = type;
    info.nbytes = TensorBytes(type, info.ne);
    infos.push_back(info);
    data.push_back(Encode(MakeValues(spec, t, rng), type));
  }
  if (spec.shuffle) {
    std::vector<size_t> order(infos.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Next() % i]);
    std::vector<GgufTensorInfo> i2;
    std::vector<std::vector<uint8_t>> d2;
    for (size_t i : order) {
      i2.push_back(infos[i]);
      d2.push_back(std::move(data[i]));
    }
    infos = std::move(i2);
    data = std::move(d2);
  }
  const size_t alignment = spec.alignment ? spec.alignment : kGgufDefaultAlignment;
  std::vector<GgufKv> kv = LlamaMetadata(spec);
  kv.insert(kv.end(), tokenizer_kv.begin(), tokenizer_kv.end());
  if (spec.n_split <= 1) {
    Part part{kv, infos, std::move(data)};
    return WritePart(part, alignment, path);
  }
  const std::string suffix = absl::StrFormat("-%05d-of-%05d.gguf", 1, spec.n_split);
  if (path.size() <= suffix.size() || path.substr(path.size() - suffix.size()) != suffix) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: a split model's first part must end in %s", path, suffix));
  }
  const std::string prefix = path.substr(0, path.size() - suffix.size());
  const size_t per_part = (infos.size() + spec.n_split - 1) / spec.n_split;
  for (int p = 0; p < spec.n_split; ++p) {
    Part part;
    if (p == 0) part.kv = kv;
    part.kv.push_back(GgufKv::U16("split.no", static_cast<uint16_t>(p)));
    part.kv.push_back(GgufKv::U16("split.count", static_cast<uint16_t>(spec.n_split)));
    part.kv.push_back(GgufKv::I32("split.tensors.count", static_cast<int32_t>(infos.size())));
    for (size_t i = p * per_part; i < std::min(infos.size(), (p + 1) * per_part); ++i) {
      part.infos.push_back(infos[i]);
      part.data.push_back(std::move(data[i]));
    }
    QF_RETURN_IF_ERROR(
        WritePart(part, alignment, absl::StrFormat("%s-%05d-of-%05d.gguf", prefix, p + 1, spec.n_split)));
  }
  return absl::OkStatus();
}

absl::Status WriteTestVocab(const std::string& path) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(absl::StrFormat("<0x%02X>", b));
    types.push_back(6);
  }
  tokens.push_back("\xE2\x96\x81");
  types.push_back(1);
  for (char c = 'a'; c <= 'z'; ++c) {
    tokens.push_back(std::string(1, c));
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), -1.0f);
  Part part;
  part.kv = {GgufKv::Str("tokenizer.ggml.model", "llama"), GgufKv::StrArray("tokenizer.ggml.tokens", tokens),
             GgufKv::NumArray("tokenizer.ggml.scores", GgufValueType::kFloat32, scores),
             GgufKv::NumArray("tokenizer.ggml.token_type", GgufValueType::kInt32, types)};
  return WritePart(part, kGgufDefaultAlignment, path);
}

absl::Status WriteTestImatrix(const TestModelSpec& spec, const std::string& path, ImatrixFormat format, uint64_t seed) {
  Rng rng(seed);
  struct Entry {
    std::string name;
    std::vector<float> sums;  // ne0 per expert
    float count;
    int64_t experts;
  };
  std::vector<Entry> entries;
  const int chunks = 10;
  const int chunk_size = 512;
  for (const TensorSpec& t : LlamaTensors(spec)) {
    if (t.is_norm || t.name == "token_embd.weight" || t.name.find("ffn_gate_inp") != std::string::npos) continue;
    Entry e{t.name, std::vector<float>(t.ne0 * t.ne2), static_cast<float>(chunks * chunk_size), t.ne2};
    for (float& x : e.sums) {
      const float a = rng.Normal();
      x = e.count * (0.05f + a * a) * (rng.Uniform() < 0.02 ? 30.0f : 1.0f);
    }
    entries.push_back(std::move(e));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrFormat("%s: cannot create", path));
  if (format == ImatrixFormat::kLegacy) {
    auto put_i32 = [&](int32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    put_i32(static_cast<int32_t>(entries.size()));
    for (const Entry& e : entries) {
      put_i32(static_cast<int32_t>(e.name.size()));
      out.write(e.name.data(), static_cast<std::streamsize>(e.name.size()));
      put_i32(chunks);
      put_i32(static_cast<int32_t>(e.sums.size()));
      // The legacy format stores sums already divided by the token count and
      // multiplied by the call count.
      for (float s : e.sums) {
        const float v = s / e.count * chunks;
        out.write(reinterpret_cast<const char*>(&v), 4);
      }
    }
    put_i32(chunks);
    const std::string dataset = "synthetic-calibration.txt";
    put_i32(static_cast<int32_t>(dataset.size()));
    out.write(dataset.data(), static_cast<std::streamsize>(dataset.size()));
    return out.good() ? absl::OkStatus() : absl::InternalError(absl::StrFormat("%s: write failed", path));
  }
  out.close();
  Part part;
  part.kv.push_back(GgufKv::Str("general.type", "imatrix"));
  part.kv.push_back(GgufKv::StrArray("imatrix.datasets", {"synthetic-calibration.txt"}));
  part.kv.push_back(GgufKv::U32("imatrix.chunk_count", chunks));
  part.kv.push_back(GgufKv::U32("imatrix.chunk_size", chunk_size));
  for (const Entry& e : entries) {
    GgufTensorInfo sums;
    sums.name = e.name + ".in_sum2";
    sums.ne[0] = static_cast<int64_t>(e.sums.size());
    sums.nbytes = e.sums.size() * 4;
    part.infos.push_back(sums);
    part.data.push_back(Encode(e.sums, GgmlType::kF32));
    GgufTensorInfo counts;
    counts.name = e.name + ".counts";
    counts.ne[0] = e.experts;
    counts.nbytes = 4 * e.experts;
    part.infos.push_back(counts);
    // Experts see different token counts; one never routed to gets weight 1.
    std::vector<float> c(e.experts, e.count);
    for (int64_t x = 1; x < e.experts; ++x) c[x] = x == e.experts - 1 ? 0.0f : e.count / (x + 1);
    part.data.push_back(Encode(c, GgmlType::kF32));
  }
  return WritePart(part, kGgufDefaultAlignment, path);
}

}  // namespace quantfleet
