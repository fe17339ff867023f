#include "core/quant/quantize_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "core/gguf/gguf_writer.h"
#include "core/quant/reference_kernels.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION
constexpr size_t kOutputAlignment = kGgufDefaultAlignment;
constexpr size_t kMaxOverrideString = 127;

// gguf_set_*: a key that exists is removed, then the pair is appended.
void SetKv(std::vector<GgufKv>& kvs, GgufKv kv) {
  std::erase_if(kvs, [&](const GgufKv& e) { return e.key == kv.key; });
  kvs.push_back(std::move(kv));
}

void RemoveKv(std::vector<GgufKv>& kvs, const std::string& key) {
  std::erase_if(kvs, [&](const GgufKv& e) { return e.key == key; });
}

// The file type llama.cpp's loader infers from the commonest tensor type,
// marked as guessed (used by COPY when general.file_type is absent).
uint32_t GuessFileType(const std::vector<const ModelTensor*>& sorted) {
  std::map<GgmlType, uint32_t> counts;
  uint32_t best_count = 0;
  GgmlType best = GgmlType::kF32;
  for (const ModelTensor* t : sorted) {
    const uint32_t c = ++counts[t->info.type];
    if (best_count < c) {
      best_count = c;
      best = t->info.type;
    }
  }
  FileType ft = FileType::kAllF32;
  switch (best) {
    case GgmlType::kF16:
      ft = FileType::kF16;
      break;
    case GgmlType::kBF16:
      ft = FileType::kBF16;
      break;
    case GgmlType::kQ4_0:
      ft = FileType::kQ4_0;
      break;
    case GgmlType::kQ4_1:
      ft = FileType::kQ4_1;
      break;
    case GgmlType::kQ5_0:
      ft = FileType::kQ5_0;
      break;
    case GgmlType::kQ5_1:
      ft = FileType::kQ5_1;
      break;
    case GgmlType::kQ8_0:
      ft = FileType::kQ8_0;
      break;
    case GgmlType::kQ2_K:
      ft = FileType::kQ2_K;
      break;
    case GgmlType::kQ3_K:
      ft = FileType::kQ3_K_M;
      break;
    case GgmlType::kQ4_K:
      ft = FileType::kQ4_K_M;
      break;
    case GgmlType::kQ5_K:
      ft = FileType::kQ5_K_M;
      break;
    case GgmlType::kQ6_K:
      ft = FileType::kQ6_K;
      break;
    case GgmlType::kTQ1_0:
      ft = FileType::kTQ1_0;
      break;
    case GgmlType::kTQ2_0:
      ft = FileType::kTQ2_0;
      break;
    case GgmlType::kIQ2_XXS:
      ft = FileType::kIQ2_XXS;
      break;
    case GgmlType::kIQ2_XS:
      ft = FileType::kIQ2_XS;
      break;
    case GgmlType::kIQ2_S:
      ft = FileType::kIQ2_S;
      break;
    case GgmlType::kIQ3_XXS:
      ft = FileType::kIQ3_XXS;
      break;
    case GgmlType::kIQ1_S:
      ft = FileType::kIQ1_S;
      break;
    case GgmlType::kIQ1_M:
      ft = FileType::kIQ1_M;
      break;
    case GgmlType::kIQ4_NL:
      ft = FileType::kIQ4_NL;
      break;
    case GgmlType::kIQ4_XS:
      ft = FileType::kIQ4_XS;
      break;
    case GgmlType::kIQ3_S:
      ft = FileType::kIQ3_S;
      break;
    case GgmlType::kNVFP4:
      ft = FileType::kNVFP4;
      break;
    case GgmlType::kQ1_0:
      ft = FileType::kQ1_0;
      break;
    case GgmlType::kQ2_0:
      ft = FileType::kQ2_0;
      break;
    default:
      break;
  }
  return static_cast<uint32_t>(ft) | kFileTypeGuessed;
}

std::string Truncate(const std::string& s, size_t n) { return s.size() > n ? s.substr(0, n) : s; }

}  // namespace

absl::StatusOr<GgufKv> ParseKvOverride(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq >= 128) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--override-kv '%s': expected KEY=TYPE:VALUE with a key under 128 bytes, e.g. general.name=str:mymodel", text));
  }
  const std::string key = text.substr(0, eq);
  const std::string rest = text.substr(eq + 1);
  auto value_after = [&](const std::string& prefix) { return rest.substr(prefix.size()); };
  if (rest.rfind("int:", 0) == 0) {
    int64_t v;
    if (!absl::SimpleAtoi(value_after("int:"), &v)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--override-kv '%s': '%s' is not an integer", text, value_after("int:")));
    }
    return GgufKv::U32(key, static_cast<uint32_t>(std::llabs(v)));
  }
  if (rest.rfind("float:", 0) == 0) {
    double v;
    if (!absl::SimpleAtod(value_after("float:"), &v)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--override-kv '%s': '%s' is not a number", text, value_after("float:")));
    }
    return GgufKv::F32(key, static_cast<float>(v));
  }
  if (rest.rfind("bool:", 0) == 0) {
    const std::string v = value_after("bool:");
    if (v != "true" && v != "false") {
      return absl::InvalidArgumentError(absl::StrFormat("--override-kv '%s': a bool is 'true' or 'false'", text));
    }
    return GgufKv::Bool(key, v == "true");
  }
  if (rest.rfind("str:", 0) == 0) {
    const std::string v = value_after("str:");
    if (v.size() > kMaxOverrideString) {
      return absl::InvalidArgumentError(absl::StrFormat("--override-kv '%s': the value exceeds 127 bytes", text));
    }
    return GgufKv::Str(key, v);
  }
  return absl::InvalidArgumentError(absl::StrFormat("--override-kv '%s': TYPE must be int, float, bool or str", text));
}

absl::StatusOr<TensorTypeOverride> ParseTensorTypeOverride(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tensor-type '%s': expected NAME=TYPE, e.g. attn_v=q8_0", spec));
  }
  if (eq == 0) return absl::InvalidArgumentError(absl::StrFormat("--tensor-type '%s': the tensor name is empty", spec));
  if (eq + 1 == spec.size()) {
    return absl::InvalidArgumentError(absl::StrFormat("--tensor-type '%s': the type is missing", spec));
  }
  const std::string type_name = spec.substr(eq + 1);
  std::optional<GgmlType> type = ParseGgmlTypeName(type_name);
  if (!type) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tensor-type: '%s' is not a tensor type (e.g. q8_0, q6_K, f16)", type_name));
  }
  std::string pattern = spec.substr(0, eq);
  for (char& c : pattern) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  try {
    std::regex check(pattern);
  } catch (const std::regex_error&) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tensor-type '%s': '%s' is not a valid regular expression", spec, pattern));
  }
  return TensorTypeOverride{pattern, *type};
}

absl::StatusOr<QuantizePlan> BuildQuantizePlan(const GgufModel& model, const QuantizeOptions& options,
                                               const Imatrix* imatrix, bool dry_run) {
  QuantizePlan plan;
  const FileTypeOption& ft = options.file_type;
  if (!ft.supported) {
    return absl::UnimplementedError(absl::StrFormat(
        "file type %s is not supported yet; supported: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L "
        "Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS F16 BF16 F32 COPY",
        ft.name));
  }
  const bool has_imatrix = imatrix != nullptr && !imatrix->weights.empty();

  // Tensors in llama.cpp's order: by layer, then by name.
  std::vector<const ModelTensor*> sorted;
  for (const ModelTensor& t : model.tensors()) sorted.push_back(&t);
  std::stable_sort(sorted.begin(), sorted.end(), [](const ModelTensor* a, const ModelTensor* b) {
    return LlamaTensorOrderLess(a->info.name, b->info.name);
  });

  QF_ASSIGN_OR_RETURN(ModelFacts facts, ReadModelFacts(model.kv(), options.kv_overrides));
  TypePolicyOptions policy_options;
  policy_options.file_type = ft.type;
  policy_options.output_tensor_type = options.output_tensor_type;
  policy_options.token_embedding_type = options.token_embedding_type;
  policy_options.quantize_output_tensor = !options.leave_output_tensor;
  policy_options.only_copy = ft.copy_only;
  policy_options.pure = options.pure;
  policy_options.has_imatrix = has_imatrix;
  policy_options.tensor_types = options.tensor_types;
  std::vector<PolicyTensor> policy_tensors;
  for (const ModelTensor* t : sorted) {
    policy_tensors.push_back({t->info.name, t->info.n_dims(), t->info.ne[0], t->info.ne[2], t->info.type});
  }
  TypePolicy policy(facts, policy_options);
  QF_ASSIGN_OR_RETURN(std::vector<TensorDecision> decisions, policy.Decide(policy_tensors));

  // Output metadata: the input's pairs, then what llama-quantize sets.
  uint32_t file_type_value = static_cast<uint32_t>(ft.type);
  if (ft.copy_only) {
    const GgufKv* input_ft = FindKv(model.kv(), "general.file_type");
    file_type_value = input_ft && input_ft->GetU32() ? *input_ft->GetU32() : GuessFileType(sorted);
  }
  plan.kv = model.kv();
  SetKv(plan.kv, GgufKv::U32("general.quantization_version", kQuantizationVersion));
  SetKv(plan.kv, GgufKv::U32("general.file_type", file_type_value));
  RemoveKv(plan.kv, kSplitNoKey);
  RemoveKv(plan.kv, kSplitCountKey);
  RemoveKv(plan.kv, kSplitTensorsCountKey);
  for (const GgufKv& kv : options.kv_overrides) SetKv(plan.kv, kv);
  if (has_imatrix) {
    SetKv(plan.kv, GgufKv::Str(kImatrixFileKey, Truncate(options.imatrix_path, kMaxOverrideString)));
    if (!imatrix->datasets.empty()) {
      SetKv(plan.kv, GgufKv::Str(kImatrixDatasetKey, Truncate(imatrix->datasets[0], kMaxOverrideString)));
    }
    SetKv(plan.kv, GgufKv::U32(kImatrixEntriesKey, static_cast<uint32_t>(imatrix->weights.size())));
    if (imatrix->chunk_count > 0) {
      SetKv(plan.kv, GgufKv::U32(kImatrixChunksKey, static_cast<uint32_t>(imatrix->chunk_count)));
    }
  }
  if (const GgufKv* align = FindKv(plan.kv, kGgufAlignmentKey); align && align->GetU32() != kOutputAlignment) {
    plan.warnings.push_back(absl::StrFormat(
        "the input sets %s=%d; the output keeps that key but is laid out with %d-byte alignment, as llama-quantize "
        "does, so readers that honour the key may reject it",
        kGgufAlignmentKey, align->GetU32().value_or(0), kOutputAlignment));
  }

  size_t matched_imatrix = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const ModelTensor& src = *sorted[i];
    const TensorDecision& d = decisions[i];
    PlannedTensor p;
    p.source = &src;
    p.output = src.info;
    p.output.type = d.type;
    p.output.nbytes = TensorBytes(d.type, src.info.ne);
    p.convert = d.type != src.info.type;
    p.fell_back = d.fell_back;
    p.requires_imatrix = d.requires_imatrix;
    plan.n_fallbacks += d.fell_back ? 1 : 0;
    plan.source_bytes += src.info.nbytes;
    plan.output_bytes += p.output.nbytes;
    plan.n_elements += src.info.n_elements();
    const std::string& name = src.info.name;
    if (d.allows_quantization && d.requires_imatrix && !has_imatrix) {
      if (!dry_run) {
        return absl::FailedPreconditionError(
            absl::StrFormat("file type %s needs an importance matrix for tensor '%s' (type %s); pass --imatrix FILE",
                            ft.name, name, TypeName(d.type)));
      }
      plan.missing_imatrix = true;
    }
    if (p.convert) {
      if (!IsSupportedTargetType(d.type)) {
        return absl::UnimplementedError(
            absl::StrFormat("tensor '%s': quantizing to type %s is not supported yet", name, TypeName(d.type)));
      }
      if (IsQuantized(src.info.type) && !options.allow_requantize) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "tensor '%s' is already quantized (%s); requantizing loses quality, pass --allow-requantize to do it "
            "anyway",
            name, TypeName(src.info.type)));
      }
      if (!CanDequantize(src.info.type)) {
        return absl::UnimplementedError(
            absl::StrFormat("tensor '%s': cannot convert from type %s", name, TypeName(src.info.type)));
      }
      if (has_imatrix) {
        auto it = imatrix->weights.find(name);
        if (it != imatrix->weights.end()) {
          const size_t expected = static_cast<size_t>(src.info.ne[0] * src.info.ne[2]);
          if (it->second.size() == expected) {
            p.imatrix = &it->second;
          } else if (name != "token_embd.weight" && name != "per_layer_token_embd.weight") {
            return absl::InvalidArgumentError(absl::StrFormat(
                "%s: entry '%s' has %d values but the tensor needs %d (ne0 x experts); the importance matrix was "
                "computed for another model",
                options.imatrix_path, name, it->second.size(), expected));
          }
        }
      }
      if (!p.imatrix && d.requires_imatrix && !dry_run) {
        return absl::FailedPreconditionError(
            absl::StrFormat("tensor '%s' needs importance weights for type %s but %s has no entry for it", name,
                            TypeName(d.type), options.imatrix_path));
      }
    }
    plan.tensors.push_back(std::move(p));
  }
  if (has_imatrix) {
    for (const ModelTensor* t : sorted) matched_imatrix += imatrix->weights.count(t->info.name);
    if (matched_imatrix == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: none of its %d entries names a tensor of %s; was it computed for another model?",
                          options.imatrix_path, imatrix->weights.size(), model.part(0).path()));
    }
  }

  std::vector<GgufTensorInfo> infos;
  for (const PlannedTensor& p : plan.tensors) infos.push_back(p.output);
  plan.data_size = LayOutTensors(infos, kOutputAlignment);
  for (size_t i = 0; i < infos.size(); ++i) plan.tensors[i].output.offset = infos[i].offset;
  plan.meta = SerializeGgufMeta(plan.kv, infos, kOutputAlignment);
  return plan;
}

}  // namespace quantfleet
