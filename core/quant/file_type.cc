#include "core/quant/file_type.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace quantfleet {

const std::vector<FileTypeOption>& FileTypeOptions() {
  static const auto* options = new std::vector<FileTypeOption>{
      {"Q1_0", FileType::kQ1_0, " 1.125 bpw quantization", false, false},
      {"Q2_0", FileType::kQ2_0, " 2.25 bpw quantization (group 64)", false, false},
      {"Q4_0", FileType::kQ4_0, " 4.34G, +0.4685 ppl @ Llama-3-8B", true, false},
      {"Q4_1", FileType::kQ4_1, " 4.78G, +0.4511 ppl @ Llama-3-8B", true, false},
      {"MXFP4_MOE", FileType::kMXFP4_MOE, " MXFP4 MoE", false, false},
      {"Q5_0", FileType::kQ5_0, " 5.21G, +0.1316 ppl @ Llama-3-8B", true, false},
      {"Q5_1", FileType::kQ5_1, " 5.65G, +0.1062 ppl @ Llama-3-8B", true, false},
      {"IQ2_XXS", FileType::kIQ2_XXS, " 2.06 bpw quantization", false, false},
      {"IQ2_XS", FileType::kIQ2_XS, " 2.31 bpw quantization", false, false},
      {"IQ2_S", FileType::kIQ2_S, " 2.5  bpw quantization", false, false},
      {"IQ2_M", FileType::kIQ2_M, " 2.7  bpw quantization", false, false},
      {"IQ1_S", FileType::kIQ1_S, " 1.56 bpw quantization", false, false},
      {"IQ1_M", FileType::kIQ1_M, " 1.75 bpw quantization", false, false},
      {"TQ1_0", FileType::kTQ1_0, " 1.69 bpw ternarization", false, false},
      {"TQ2_0", FileType::kTQ2_0, " 2.06 bpw ternarization", false, false},
      {"Q2_K", FileType::kQ2_K, " 2.96G, +3.5199 ppl @ Llama-3-8B", true, false},
      {"Q2_K_S", FileType::kQ2_K_S, " 2.96G, +3.1836 ppl @ Llama-3-8B", true, false},
      {"IQ3_XXS", FileType::kIQ3_XXS, " 3.06 bpw quantization", false, false},
      {"IQ3_S", FileType::kIQ3_S, " 3.44 bpw quantization", false, false},
      {"IQ3_M", FileType::kIQ3_M, " 3.66 bpw quantization mix", false, false},
      {"Q3_K", FileType::kQ3_K_M, "alias for Q3_K_M", true, false},
      {"IQ3_XS", FileType::kIQ3_XS, " 3.3 bpw quantization", false, false},
      {"Q3_K_S", FileType::kQ3_K_S, " 3.41G, +1.6321 ppl @ Llama-3-8B", true, false},
      {"Q3_K_M", FileType::kQ3_K_M, " 3.74G, +0.6569 ppl @ Llama-3-8B", true, false},
      {"Q3_K_L", FileType::kQ3_K_L, " 4.03G, +0.5562 ppl @ Llama-3-8B", true, false},
      {"IQ4_NL", FileType::kIQ4_NL, " 4.50 bpw non-linear quantization", true, false},
      {"IQ4_XS", FileType::kIQ4_XS, " 4.25 bpw non-linear quantization", true, false},
      {"Q4_K", FileType::kQ4_K_M, "alias for Q4_K_M", true, false},
      {"Q4_K_S", FileType::kQ4_K_S, " 4.37G, +0.2689 ppl @ Llama-3-8B", true, false},
      {"Q4_K_M", FileType::kQ4_K_M, " 4.58G, +0.1754 ppl @ Llama-3-8B", true, false},
      {"Q5_K", FileType::kQ5_K_M, "alias for Q5_K_M", true, false},
      {"Q5_K_S", FileType::kQ5_K_S, " 5.21G, +0.1049 ppl @ Llama-3-8B", true, false},
      {"Q5_K_M", FileType::kQ5_K_M, " 5.33G, +0.0569 ppl @ Llama-3-8B", true, false},
      {"Q6_K", FileType::kQ6_K, " 6.14G, +0.0217 ppl @ Llama-3-8B", true, false},
      {"Q8_0", FileType::kQ8_0, " 7.96G, +0.0026 ppl @ Llama-3-8B", true, false},
      {"F16", FileType::kF16, "14.00G, +0.0020 ppl @ Mistral-7B", true, false},
      {"BF16", FileType::kBF16, "14.00G, -0.0050 ppl @ Mistral-7B", true, false},
      {"F32", FileType::kAllF32, "26.00G              @ 7B", true, false},
      {"COPY", FileType::kAllF32, "only copy tensors, no quantizing", true, true},
  };
  return *options;
}

std::optional<FileTypeOption> ParseFileType(std::string_view text) {
  for (const FileTypeOption& o : FileTypeOptions()) {
    if (EqualsIgnoreCase(o.name, text)) return o;
  }
  // llama-quantize accepts the numeric id too (std::stoi: leading digits).
  std::string_view digits = text;
  size_t n = 0;
  while (n < digits.size() && (absl::ascii_isdigit(digits[n]) || (n == 0 && (digits[n] == '-' || digits[n] == '+')))) {
    ++n;
  }
  int id;
  if (n == 0 || !absl::SimpleAtoi(absl::string_view(digits.data(), n), &id)) return std::nullopt;
  for (const FileTypeOption& o : FileTypeOptions()) {
    if (static_cast<int>(o.type) == id) return o;
  }
  return std::nullopt;
}

GgmlType DefaultTensorType(FileType type) {
  switch (type) {
    case FileType::kQ4_0:
      return GgmlType::kQ4_0;
    case FileType::kQ4_1:
      return GgmlType::kQ4_1;
    case FileType::kQ5_0:
      return GgmlType::kQ5_0;
    case FileType::kQ5_1:
      return GgmlType::kQ5_1;
    case FileType::kQ8_0:
      return GgmlType::kQ8_0;
    case FileType::kF16:
      return GgmlType::kF16;
    case FileType::kBF16:
      return GgmlType::kBF16;
    case FileType::kAllF32:
      return GgmlType::kF32;
    case FileType::kQ1_0:
      return GgmlType::kQ1_0;
    case FileType::kQ2_0:
      return GgmlType::kQ2_0;
    case FileType::kMXFP4_MOE:
      return GgmlType::kMXFP4;
    case FileType::kQ2_K_S:
    case FileType::kQ2_K:
      return GgmlType::kQ2_K;
    case FileType::kIQ3_XS:
      return GgmlType::kIQ3_S;
    case FileType::kQ3_K_S:
    case FileType::kQ3_K_M:
    case FileType::kQ3_K_L:
      return GgmlType::kQ3_K;
    case FileType::kQ4_K_S:
    case FileType::kQ4_K_M:
      return GgmlType::kQ4_K;
    case FileType::kQ5_K_S:
    case FileType::kQ5_K_M:
      return GgmlType::kQ5_K;
    case FileType::kQ6_K:
      return GgmlType::kQ6_K;
    case FileType::kTQ1_0:
      return GgmlType::kTQ1_0;
    case FileType::kTQ2_0:
      return GgmlType::kTQ2_0;
    case FileType::kIQ2_XXS:
      return GgmlType::kIQ2_XXS;
    case FileType::kIQ2_XS:
      return GgmlType::kIQ2_XS;
    case FileType::kIQ2_S:
      return GgmlType::kIQ2_XS;
    case FileType::kIQ2_M:
      return GgmlType::kIQ2_S;
    case FileType::kIQ3_XXS:
      return GgmlType::kIQ3_XXS;
    case FileType::kIQ1_S:
      return GgmlType::kIQ1_S;
    case FileType::kIQ1_M:
      return GgmlType::kIQ1_M;
    case FileType::kIQ4_NL:
      return GgmlType::kIQ4_NL;
    case FileType::kIQ4_XS:
      return GgmlType::kIQ4_XS;
    case FileType::kIQ3_S:
    case FileType::kIQ3_M:
      return GgmlType::kIQ3_S;
    case FileType::kNVFP4:
      return GgmlType::kNVFP4;
  }
  return GgmlType::kF32;
}

}  // namespace quantfleet
