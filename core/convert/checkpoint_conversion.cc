#include "core/convert/checkpoint_conversion.h"

#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/convert/hf_metadata.h"
#include "core/convert/hf_vocab.h"
#include "core/convert/metadata_list.h"
#include "core/gguf/gguf_writer.h"
#include "core/io/atomic_file.h"
#include "core/quant/ggml_type.h"
#include "core/quant/half.h"
#include "core/quant/quantize_rows.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

using Json = nlohmann::json;

constexpr size_t kAlignment = 32;

uint32_t FileTypeOf(OutType t) {
  switch (t) {
    case OutType::kF32:
      return 0;
    case OutType::kBF16:
      return 32;
    case OutType::kQ8_0:
      return 7;
    default:
      return 1;
  }
}

// The type a 16/32-bit source's values reach the output as: BF16 (and
// anything but F16 and F32) is widened to F32 first.
GgmlType WorkingType(SafetensorsDtype d) { return d == SafetensorsDtype::kF16 ? GgmlType::kF16 : GgmlType::kF32; }

// Values of one source row as floats.
void RowToFloat(const SafetensorsTensor& t, int64_t row, int64_t cols, float* out) {
  const size_t n = static_cast<size_t>(cols);
  const uint8_t* p = t.data + static_cast<size_t>(row) * n * SafetensorsDtypeBytes(t.dtype);
  switch (t.dtype) {
    case SafetensorsDtype::kF32:
      std::memcpy(out, p, n * sizeof(float));
      break;
    case SafetensorsDtype::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      break;
    default:  // BF16
      for (size_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        out[i] = BitsToFloat(static_cast<uint32_t>(b) << 16);
      }
      break;
  }
}

int64_t IntParam(const Json& hparams, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto it = hparams.find(k); it != hparams.end()) return it->is_number_integer() ? it->get<int64_t>() : 0;
  }
  return 0;
}

// Llama 3's rope frequency factors, computed in float32 as the converter's
// torch code computes them.
std::optional<std::vector<float>> Llama3RopeFactors(const Json& hparams) {
  Json rope = hparams.contains("rope_parameters") ? hparams["rope_parameters"] : hparams.value("rope_scaling", Json());
  if (!rope.is_object()) return std::nullopt;
  std::string type = rope.value("rope_type", "");
  if (type.empty()) type = rope.value("type", "");
  if (absl::AsciiStrToLower(type) != "llama3") return std::nullopt;
  auto number = [&](const Json& obj, const char* key, double fallback) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? it->get<double>() : fallback;
  };
  const double base =
      rope.contains("rope_theta") ? number(rope, "rope_theta", 10000.0) : number(hparams, "rope_theta", 10000.0);
  int64_t dim = IntParam(hparams, {"head_dim"});
  if (dim == 0)
    dim = IntParam(hparams, {"hidden_size"}) / std::max<int64_t>(1, IntParam(hparams, {"num_attention_heads"}));
  const double factor = number(rope, "factor", 8.0);
  const double low = number(rope, "low_freq_factor", 1.0);
  const double high = number(rope, "high_freq_factor", 4.0);
  const double old_context = number(rope, "original_max_position_embeddings", 8192.0);
  const double low_wavelen = old_context / low, high_wavelen = old_context / high;
  std::vector<float> factors;
  for (int64_t i = 0; i < dim; i += 2) {
    const float exponent = static_cast<float>(i) / static_cast<float>(dim);
    const float freq = 1.0f / std::pow(static_cast<float>(base), exponent);
    const float wavelen = static_cast<float>(2 * M_PI) / freq;
    if (wavelen < static_cast<float>(high_wavelen)) {
      factors.push_back(1.0f);
    } else if (wavelen > static_cast<float>(low_wavelen)) {
      factors.push_back(static_cast<float>(factor));
    } else {
      const float smooth =
          (static_cast<float>(old_context) / wavelen - static_cast<float>(low)) / static_cast<float>(high - low);
      factors.push_back(1.0f / ((1.0f - smooth) / static_cast<float>(factor) + smooth));
    }
  }
  return factors;
}

}  // namespace

// Output row `r` of a head of `d` rows is input row (r % 2) * d/2 + r / 2
// of that head.
int64_t RotaryRowSource(int64_t r, int64_t rows, int heads) {
  if (heads <= 0) return r;
  const int64_t d = rows / heads;
  const int64_t h = r / d, within = r % d;
  return h * d + (within % 2) * (d / 2) + within / 2;
}

absl::StatusOr<OutType> ParseOutType(std::string_view name) {
  if (name == "auto") return OutType::kAuto;
  if (name == "f32") return OutType::kF32;
  if (name == "f16") return OutType::kF16;
  if (name == "bf16") return OutType::kBF16;
  if (name == "q8_0") return OutType::kQ8_0;
  return absl::InvalidArgumentError(
      absl::StrFormat("--outtype %s: not one of auto, f32, f16, bf16, q8_0", std::string(name)));
}

absl::StatusOr<std::unique_ptr<CheckpointConversion>> CheckpointConversion::Plan(const std::string& dir,
                                                                                 OutType out_type) {
  QF_ASSIGN_OR_RETURN(std::optional<Json> config, ReadJsonFile(dir, "config.json"));
  if (!config || !config->is_object()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s/config.json: missing or not a JSON object", dir));
  }
  Json hparams = *config;
  if (auto it = config->find("text_config"); it != config->end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) hparams[k] = v;
  }
  QF_ASSIGN_OR_RETURN(HfArchitecture arch, ArchitectureOf(*config, dir));
  QF_ASSIGN_OR_RETURN(SafetensorsCheckpoint checkpoint, SafetensorsCheckpoint::Open(dir));
  std::unique_ptr<CheckpointConversion> c(new CheckpointConversion(dir, std::move(checkpoint)));
  c->arch_ = std::move(arch);
  // The first matrix's type decides "auto".
  if (out_type == OutType::kAuto) {
    out_type = OutType::kF16;
    for (const SafetensorsTensor* t : c->checkpoint_.tensors()) {
      if (t->shape.size() < 2) continue;
      if (t->dtype == SafetensorsDtype::kBF16) out_type = OutType::kBF16;
      if (t->dtype == SafetensorsDtype::kBF16 || t->dtype == SafetensorsDtype::kF16) break;
    }
  }
  QF_RETURN_IF_ERROR(c->PlanTensors(hparams, out_type));

  ParameterCount count;
  int64_t expert_sum = 0, expert_tensors = 0;
  for (const ConvertedTensor& t : c->tensors_) {
    const int64_t size = t.info.n_elements();
    count.total += size;
    if (absl::StrContains(t.info.name, "_exps.") && t.info.n_dims() >= 3) {
      const int64_t experts = t.info.ne[2];
      count.expert += size / experts;
      expert_sum += experts;
      ++expert_tensors;
    } else {
      count.shared += size;
    }
  }
  count.expert_count = expert_tensors > 0 ? expert_sum / expert_tensors : 0;

  MetadataList meta;
  meta.Set(GgufKv::Str("general.architecture", c->arch_.gguf_arch));
  meta.Set(GgufKv::Str("general.type", "model"));
  QF_RETURN_IF_ERROR(AddAuthorship(dir, *config, count, meta));
  QF_RETURN_IF_ERROR(AddHyperparameters(c->arch_, hparams, FileTypeOf(out_type), dir, meta));
  meta.Set(GgufKv::U32("general.quantization_version", 2));
  QF_RETURN_IF_ERROR(AddVocabulary(c->arch_, hparams, dir, meta));
  c->kv_ = meta.kvs();

  std::vector<GgufTensorInfo> infos;
  for (const ConvertedTensor& t : c->tensors_) infos.push_back(t.info);
  c->data_size_ = LayOutTensors(infos, kAlignment);
  for (size_t i = 0; i < infos.size(); ++i) c->tensors_[i].info.offset = infos[i].offset;
  c->header_ = SerializeGgufMeta(c->kv_, infos, kAlignment);
  return c;
}

absl::Status CheckpointConversion::PlanTensors(const Json& hparams, OutType out_type) {
  const int n_head = static_cast<int>(IntParam(hparams, {"n_heads", "num_attention_heads"}));
  int n_head_kv = static_cast<int>(IntParam(hparams, {"n_kv_heads", "num_key_value_heads"}));
  if (n_head_kv == 0) n_head_kv = n_head;
  const int64_t n_experts = IntParam(hparams, {"num_local_experts", "num_experts"});

  auto add = [&](std::string name, std::vector<const SafetensorsTensor*> sources, std::vector<int64_t> shape,
                 int permute_heads) -> absl::Status {
    ConvertedTensor t;
    t.info.name = std::move(name);
    if (shape.size() > static_cast<size_t>(kGgufMaxDims)) {
      return absl::InvalidArgumentError(absl::StrFormat("tensor '%s' has %d dimensions", t.info.name, shape.size()));
    }
    for (size_t d = 0; d < shape.size(); ++d) t.info.ne[d] = shape[shape.size() - 1 - d];
    const bool vector = shape.size() <= 1 || absl::EndsWith(t.info.name, "_norm.weight") ||
                        absl::EndsWith(t.info.name, ".ffn_gate_inp.weight") || !absl::EndsWith(t.info.name, ".weight");
    GgmlType type = GgmlType::kF32;
    if (!vector) {
      switch (out_type) {
        case OutType::kF32:
          type = GgmlType::kF32;
          break;
        case OutType::kBF16:
          type = GgmlType::kBF16;
          break;
        case OutType::kQ8_0:
          type = t.info.ne[0] % 32 == 0 ? GgmlType::kQ8_0 : GgmlType::kF16;
          break;
        default:
          type = GgmlType::kF16;
          break;
      }
    }
    t.info.type = type;
    t.info.nbytes = TensorBytes(type, t.info.ne);
    t.sources = std::move(sources);
    t.permute_heads = permute_heads;
    tensors_.push_back(std::move(t));
    return absl::OkStatus();
  };

  if (std::optional<std::vector<float>> factors = Llama3RopeFactors(hparams)) {
    ConvertedTensor t;
    t.info.name = "rope_freqs.weight";
    t.info.ne[0] = static_cast<int64_t>(factors->size());
    t.info.type = GgmlType::kF32;
    t.info.nbytes = factors->size() * sizeof(float);
    t.generated.resize(t.info.nbytes);
    std::memcpy(t.generated.data(), factors->data(), t.info.nbytes);
    tensors_.push_back(std::move(t));
  }

  // The converter's order: shard by shard, names sorted within a shard.
  std::vector<const SafetensorsTensor*> order;
  for (const SafetensorsFile& shard : checkpoint_.shards()) {
    std::vector<const SafetensorsTensor*> in_shard;
    for (const SafetensorsTensor& t : shard.tensors()) in_shard.push_back(&t);
    std::sort(in_shard.begin(), in_shard.end(),
              [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->name < b->name; });
    order.insert(order.end(), in_shard.begin(), in_shard.end());
  }

  // Experts wait until their layer has all of them.
  std::map<int, std::map<std::pair<std::string, int>, const SafetensorsTensor*>> waiting;
  for (const SafetensorsTensor* t : order) {
    const std::string& name = t->name;
    if (absl::EndsWith(name, ".attention.masked_bias") || absl::EndsWith(name, ".attention.bias") ||
        absl::EndsWith(name, ".rotary_emb.inv_freq")) {
      continue;
    }
    if (t->dtype != SafetensorsDtype::kF32 && t->dtype != SafetensorsDtype::kF16 &&
        t->dtype != SafetensorsDtype::kBF16) {
      return absl::UnimplementedError(absl::StrFormat("%s: tensor '%s' is %s; only F32, F16 and BF16 are converted",
                                                      dir_, name, SafetensorsDtypeName(t->dtype)));
    }
    if (std::optional<ExpertPart> part = ExpertPartOf(arch_, name)) {
      if (n_experts <= 0 || part->expert >= n_experts) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: tensor '%s' is expert %d but config.json says %d experts", dir_, name, part->expert, n_experts));
      }
      auto& layer = waiting[part->layer];
      layer[{part->projection, part->expert}] = t;
      if (static_cast<int64_t>(layer.size()) < n_experts * static_cast<int64_t>(arch_.expert_projections.size())) {
        continue;
      }
      for (const std::string& projection : arch_.expert_projections) {
        std::vector<const SafetensorsTensor*> experts;
        for (int64_t e = 0; e < n_experts; ++e) experts.push_back(layer.at({projection, static_cast<int>(e)}));
        const SafetensorsTensor* first = experts.front();
        for (const SafetensorsTensor* e : experts) {
          if (e->shape != first->shape || WorkingType(e->dtype) != WorkingType(first->dtype) || e->shape.size() != 2) {
            return absl::InvalidArgumentError(
                absl::StrFormat("%s: the experts of layer %d's %s differ in shape or type ('%s' and '%s')", dir_,
                                part->layer, projection, first->name, e->name));
          }
        }
        QF_ASSIGN_OR_RETURN(std::string out_name, GgufTensorName(arch_, MergedExpertName(part->layer, projection)));
        std::vector<int64_t> shape = {n_experts, first->shape[0], first->shape[1]};
        QF_RETURN_IF_ERROR(add(out_name, experts, shape, 0));
      }
      waiting.erase(part->layer);
      continue;
    }
    QF_ASSIGN_OR_RETURN(std::string out_name, GgufTensorName(arch_, name));
    int heads = 0;
    if (arch_.permutes_qk) {
      if (absl::EndsWith(name, "q_proj.weight") || absl::EndsWith(name, "q_proj.bias")) heads = n_head;
      if (absl::EndsWith(name, "k_proj.weight") || absl::EndsWith(name, "k_proj.bias")) heads = n_head_kv;
      if (heads > 0 && (t->shape.empty() || t->shape[0] % (2 * heads) != 0)) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: tensor '%s' has %d rows, not a multiple of 2 x %d heads",
                                                          dir_, name, t->shape.empty() ? 0 : t->shape[0], heads));
      }
    }
    QF_RETURN_IF_ERROR(add(out_name, {t}, t->shape, heads));
  }
  if (!waiting.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: layer %d does not have all %d experts of each projection",
                                                      dir_, waiting.begin()->first, n_experts));
  }
  return absl::OkStatus();
}

absl::Status CheckpointConversion::Produce(size_t index, uint8_t* dst) const {
  const ConvertedTensor& t = tensors_[index];
  if (t.sources.empty()) {
    std::memcpy(dst, t.generated.data(), t.generated.size());
    return absl::OkStatus();
  }
  const int64_t cols = t.info.ne[0];
  const size_t out_row = RowSize(t.info.type, cols);
  std::vector<float> row(static_cast<size_t>(cols)), scratch;
  uint8_t* out = dst;
  for (const SafetensorsTensor* src : t.sources) {
    const int64_t rows = src->elements() / std::max<int64_t>(cols, 1);
    // A 16-bit source that stays in its own type is copied as it is.
    const bool copy = (src->dtype == SafetensorsDtype::kF16 && t.info.type == GgmlType::kF16) ||
                      (src->dtype == SafetensorsDtype::kF32 && t.info.type == GgmlType::kF32);
    const size_t in_row = static_cast<size_t>(cols) * SafetensorsDtypeBytes(src->dtype);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t from = RotaryRowSource(r, rows, t.permute_heads);
      if (copy) {
        std::memcpy(out, src->data + static_cast<size_t>(from) * in_row, in_row);
      } else {
        RowToFloat(*src, from, cols, row.data());
        ConvertRows(GgmlType::kF32, row.data(), t.info.type, out, 1, cols, nullptr, &scratch);
      }
      out += out_row;
    }
  }
  if (static_cast<size_t>(out - dst) != t.info.nbytes) {
    return absl::InternalError(
        absl::StrFormat("tensor '%s': produced %d bytes for %d", t.info.name, out - dst, t.info.nbytes));
  }
  return absl::OkStatus();
}

void CheckpointConversion::Drop(size_t index) const {
  for (const SafetensorsTensor* src : tensors_[index].sources) {
    if (const SafetensorsFile* shard = checkpoint_.ShardOf(*src)) shard->Drop(*src);
  }
}

absl::Status CheckpointConversion::Write(const std::string& path, bool overwrite,
                                         const std::function<void(size_t, size_t)>& on_tensor) const {
  QF_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path, overwrite));
  QF_RETURN_IF_ERROR(file->PWrite(header_.data(), header_.size(), 0));
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const GgufTensorInfo& info = tensors_[i].info;
    const size_t padded = (info.nbytes + kAlignment - 1) / kAlignment * kAlignment;
    buffer.assign(padded, 0);
    QF_RETURN_IF_ERROR(Produce(i, buffer.data()));
    QF_RETURN_IF_ERROR(file->PWrite(buffer.data(), padded, header_.size() + info.offset));
    Drop(i);
    if (on_tensor) on_tensor(i + 1, tensors_.size());
  }
  QF_RETURN_IF_ERROR(file->Truncate(file_size()));
  return file->Commit();
}

absl::StatusOr<GgufModel> CheckpointConversion::ToModel() const {
  // Shards become parts 1..N; part 0 holds what is produced here.
  std::vector<std::shared_ptr<const MappedFile>> parts = {nullptr};
  std::map<const MappedFile*, int> part_of;
  for (const SafetensorsFile& shard : checkpoint_.shards()) {
    part_of[shard.mapping().get()] = static_cast<int>(parts.size());
    parts.push_back(shard.mapping());
  }
  auto in_place = [](const ConvertedTensor& t) {
    if (t.sources.size() != 1 || t.permute_heads != 0) return false;
    const SafetensorsDtype d = t.sources[0]->dtype;
    return (d == SafetensorsDtype::kF16 && t.info.type == GgmlType::kF16) ||
           (d == SafetensorsDtype::kF32 && t.info.type == GgmlType::kF32) ||
           (d == SafetensorsDtype::kBF16 && t.info.type == GgmlType::kBF16);
  };
  std::vector<uint64_t> memory_offset(tensors_.size(), 0);
  uint64_t memory_size = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (in_place(tensors_[i])) continue;
    memory_offset[i] = memory_size;
    memory_size += (tensors_[i].info.nbytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  QF_ASSIGN_OR_RETURN(MappedFile memory, MappedFile::Anonymous(memory_size, dir_ + " (converted in memory)"));
  std::vector<ModelTensor> tensors;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const ConvertedTensor& t = tensors_[i];
    ModelTensor mt;
    mt.info = t.info;
    if (in_place(t)) {
      const SafetensorsFile* shard = checkpoint_.ShardOf(*t.sources[0]);
      if (shard == nullptr) return absl::InternalError(absl::StrFormat("tensor '%s': no shard", t.info.name));
      mt.split = part_of.at(shard->mapping().get());
      mt.file_offset = t.sources[0]->offset;
      mt.data = t.sources[0]->data;
    } else {
      mt.split = 0;
      mt.file_offset = memory_offset[i];
      mt.data = memory.data() + memory_offset[i];
      QF_RETURN_IF_ERROR(Produce(i, memory.mutable_data() + memory_offset[i]));
    }
    tensors.push_back(std::move(mt));
  }
  parts[0] = std::make_shared<const MappedFile>(std::move(memory));
  // Only the header is parsed: the size stands for the file it would be.
  QF_ASSIGN_OR_RETURN(GgufFile header, GgufFile::Parse(header_.data(), file_size(), dir_));
  return GgufModel::FromParts(std::move(parts), std::move(header), std::move(tensors));
}

absl::StatusOr<GgufModel> OpenModel(const std::string& path) {
  if (!IsCheckpointDir(path)) return GgufModel::Open(path);
  QF_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointConversion> plan, CheckpointConversion::Plan(path, OutType::kAuto));
  return plan->ToModel();
}

}  // namespace quantfleet
