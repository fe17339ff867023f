#include "tests/tools/quantized_checkpoint_reader.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/io/mapped_file.h"
#include "core/quant/half.h"
#include "core/safetensors/safetensors_file.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/tools/safetensors_writer.h"

namespace quantfleet {
namespace {

// Field `index` (of `bits` bits) of the little-endian stream in `words`.
uint32_t Field(const int32_t* words, int64_t index, int bits) {
  uint64_t value = 0;
  const int64_t bit = index * bits;
  for (int b = 0; b < bits; ++b) {
    const int64_t at = bit + b;
    const uint32_t word = static_cast<uint32_t>(words[at / 32]);
    value |= static_cast<uint64_t>((word >> (at % 32)) & 1u) << b;
  }
  return static_cast<uint32_t>(value);
}

std::string TypeName(const SafetensorsTensor& t) { return std::string(SafetensorsDtypeName(t.dtype)); }

// AWQ's GEMM layout: field i of word c is output 8c + kOrder[i].
constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

uint32_t AwqField(const int32_t* line, int64_t output) {
  const int64_t word = output / 8;
  int slot = 0;
  while (kOrder[slot] != output % 8) ++slot;
  return (static_cast<uint32_t>(line[word]) >> (4 * slot)) & 0xf;
}

absl::StatusOr<std::map<std::string, DequantizedMatrix>> ReadAwq(const SafetensorsFile& file, int64_t group) {
  std::map<std::string, DequantizedMatrix> out;
  for (const SafetensorsTensor& qweight : file.tensors()) {
    if (!absl::EndsWith(qweight.name, ".qweight")) continue;
    const std::string module = qweight.name.substr(0, qweight.name.size() - 8);
    const SafetensorsTensor* qzeros = file.Find(module + ".qzeros");
    const SafetensorsTensor* scales = file.Find(module + ".scales");
    if (qzeros == nullptr || scales == nullptr || TypeName(qweight) != "I32" || TypeName(*qzeros) != "I32" ||
        TypeName(*scales) != "F16") {
      return absl::InvalidArgumentError(module + ": missing or mistyped qzeros or scales");
    }
    const int64_t k = qweight.shape[0], n = scales->shape[1], groups = scales->shape[0];
    const int64_t g_size = group > 0 ? group : k;
    if (qweight.shape != std::vector<int64_t>{k, n / 8} || qzeros->shape != std::vector<int64_t>{groups, n / 8} ||
        groups * g_size != k) {
      return absl::InvalidArgumentError(module + ": shapes do not match the format");
    }
    const auto* words = reinterpret_cast<const int32_t*>(qweight.data);
    const auto* zero_words = reinterpret_cast<const int32_t*>(qzeros->data);
    DequantizedMatrix m{n, k, std::vector<float>(static_cast<size_t>(n * k))};
    for (int64_t row = 0; row < k; ++row) {
      const int64_t g = row / g_size;
      for (int64_t col = 0; col < n; ++col) {
        const uint32_t q = AwqField(words + row * (n / 8), col);
        const uint32_t zero = AwqField(zero_words + g * (n / 8), col);
        uint16_t h;
        std::memcpy(&h, scales->data + 2 * (g * n + col), 2);
        m.values[static_cast<size_t>(col * k + row)] =
            static_cast<float>(static_cast<double>(HalfToFloat(h)) * (static_cast<double>(q) - zero));
      }
    }
    out[module] = std::move(m);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::map<std::string, DequantizedMatrix>> ReadQuantizedCheckpoint(const std::string& dir) {
  QF_ASSIGN_OR_RETURN(std::string config_text, ReadRegularFile(dir + "/config.json"));
  const nlohmann::json config = nlohmann::json::parse(config_text).at("quantization_config");
  const int bits = config.at("bits").get<int>();
  QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(dir + "/model.safetensors"));
  if (config.at("quant_method") == "awq") return ReadAwq(file, config.at("group_size").get<int64_t>());
  std::map<std::string, DequantizedMatrix> out;
  for (const SafetensorsTensor& qweight : file.tensors()) {
    if (!absl::EndsWith(qweight.name, ".qweight")) continue;
    const std::string module = qweight.name.substr(0, qweight.name.size() - 8);
    const SafetensorsTensor* qzeros = file.Find(module + ".qzeros");
    const SafetensorsTensor* scales = file.Find(module + ".scales");
    const SafetensorsTensor* g_idx = file.Find(module + ".g_idx");
    if (qzeros == nullptr || scales == nullptr || g_idx == nullptr || TypeName(qweight) != "I32" ||
        TypeName(*qzeros) != "I32" || TypeName(*scales) != "F16" || TypeName(*g_idx) != "I32") {
      return absl::InvalidArgumentError(module + ": missing or mistyped qzeros, scales or g_idx");
    }
    const int64_t k = g_idx->shape[0], n = scales->shape[1], groups = scales->shape[0];
    if (qweight.shape != std::vector<int64_t>{k * bits / 32, n} ||
        qzeros->shape != std::vector<int64_t>{groups, n * bits / 32}) {
      return absl::InvalidArgumentError(module + ": shapes do not match the format");
    }
    const auto* words = reinterpret_cast<const int32_t*>(qweight.data);
    const auto* zero_words = reinterpret_cast<const int32_t*>(qzeros->data);
    const auto* idx = reinterpret_cast<const int32_t*>(g_idx->data);
    DequantizedMatrix m{n, k, std::vector<float>(static_cast<size_t>(n * k))};
    const int64_t words_per_column = k * bits / 32;
    const uint32_t mask = (1u << bits) - 1;
    for (int64_t col = 0; col < n; ++col) {
      // Column `col` of qweight, its words gathered down the rows.
      std::vector<int32_t> stream(static_cast<size_t>(words_per_column));
      for (int64_t w = 0; w < words_per_column; ++w) stream[static_cast<size_t>(w)] = words[w * n + col];
      for (int64_t row = 0; row < k; ++row) {
        const int64_t g = idx[row];
        if (g < 0 || g >= groups) return absl::InvalidArgumentError(module + ": g_idx out of range");
        const uint32_t q = Field(stream.data(), row, bits);
        const uint32_t zero = (Field(zero_words + g * (n * bits / 32), col, bits) + 1) & mask;
        uint16_t h;
        std::memcpy(&h, scales->data + 2 * (g * n + col), 2);
        const double scale = HalfToFloat(h);
        m.values[static_cast<size_t>(col * k + row)] =
            static_cast<float>(scale * (static_cast<double>(q) - static_cast<double>(zero)));
      }
    }
    out[module] = std::move(m);
  }
  return out;
}

absl::Status WriteDequantizedCheckpoint(const std::string& dir, const std::string& out) {
  QF_ASSIGN_OR_RETURN(auto modules, ReadQuantizedCheckpoint(dir));
  QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(dir + "/model.safetensors"));
  std::vector<TestSafetensor> tensors;
  for (const SafetensorsTensor& t : file.tensors()) {
    const size_t dot = t.name.rfind('.');
    const std::string module = t.name.substr(0, dot), suffix = t.name.substr(dot + 1);
    if (modules.count(module)) {
      if (suffix != "qweight") continue;  // qzeros, scales, g_idx
      const DequantizedMatrix& m = modules.at(module);
      std::string bytes(m.values.size() * 4, '\0');
      std::memcpy(bytes.data(), m.values.data(), bytes.size());
      tensors.push_back({module + ".weight", "F32", {m.rows, m.columns}, bytes});
      continue;
    }
    tensors.push_back({t.name, TypeName(t), t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)});
  }
  QF_ASSIGN_OR_RETURN(std::string config_text, ReadRegularFile(dir + "/config.json"));
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(config_text);
  config.erase("quantization_config");
  std::error_code ec;
  std::filesystem::remove_all(out, ec);
  QF_RETURN_IF_ERROR(WriteTestCheckpoint(out, config.dump(2), tensors, 1));
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "config.json" || name == "quantize_config.json" || absl::EndsWith(name, ".safetensors")) continue;
    std::filesystem::copy_file(entry.path(), out + "/" + name, std::filesystem::copy_options::overwrite_existing);
  }
  return absl::OkStatus();
}

}  // namespace quantfleet
