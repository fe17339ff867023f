#include "core/quant/imatrix_file.h"

#include <cmath>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/gguf/gguf_file.h"
#include "core/io/mapped_file.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

struct RawEntry {
  std::vector<float> sums;
  std::vector<int64_t> counts;
};

absl::Status Malformed(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: not a valid importance matrix: %s", path, what));
}

absl::StatusOr<Imatrix> ParseLegacy(const uint8_t* p, size_t size, const std::string& path) {
  size_t pos = 0;
  auto read_i32 = [&](const char* what) -> absl::StatusOr<int32_t> {
    if (size - pos < 4) return Malformed(path, absl::StrFormat("file ends inside %s at offset %d", what, pos));
    int32_t v;
    std::memcpy(&v, p + pos, 4);
    pos += 4;
    return v;
  };
  Imatrix out;
  out.is_legacy = true;
  QF_ASSIGN_OR_RETURN(int32_t n_entries, read_i32("the entry count"));
  if (n_entries < 1) return Malformed(path, "no entries");
  for (int32_t i = 0; i < n_entries; ++i) {
    QF_ASSIGN_OR_RETURN(int32_t len, read_i32("a name length"));
    if (len < 0 || static_cast<size_t>(len) > size - pos) {
      return Malformed(path,
                       absl::StrFormat("entry %d name length %d is impossible at offset %d", i + 1, len, pos - 4));
    }
    // The name ends at its first NUL, as the reference reads it.
    std::string name(reinterpret_cast<const char*>(p + pos), strnlen(reinterpret_cast<const char*>(p + pos), len));
    pos += len;
    QF_ASSIGN_OR_RETURN(int32_t ncall, read_i32("a call count"));
    QF_ASSIGN_OR_RETURN(int32_t nval, read_i32("a value count"));
    if (nval < 1 || static_cast<size_t>(nval) > (size - pos) / 4) {
      return Malformed(path, absl::StrFormat("entry '%s' has an impossible value count %d", name, nval));
    }
    std::vector<float> sums(nval);
    std::memcpy(sums.data(), p + pos, 4 * static_cast<size_t>(nval));
    pos += 4 * static_cast<size_t>(nval);
    if (out.weights.contains(name)) return Malformed(path, absl::StrFormat("entry '%s' appears twice", name));
    std::vector<float>& w = out.weights[name];
    w.resize(nval);
    for (int32_t j = 0; j < nval; ++j) w[j] = ncall > 0 ? sums[j] / static_cast<float>(ncall) : sums[j];
  }
  if (pos < size) {
    absl::StatusOr<int32_t> chunks = read_i32("the chunk count");
    if (chunks.ok()) {
      out.chunk_count = *chunks;
      absl::StatusOr<int32_t> len = read_i32("the dataset name length");
      if (len.ok() && *len > 0 && static_cast<size_t>(*len) <= size - pos) {
        out.datasets.emplace_back(reinterpret_cast<const char*>(p + pos),
                                  strnlen(reinterpret_cast<const char*>(p + pos), *len));
      }
    }
  }
  return out;
}

absl::StatusOr<Imatrix> ParseGguf(const uint8_t* data, size_t size, const std::string& path) {
  QF_ASSIGN_OR_RETURN(GgufFile gguf, GgufFile::Parse(data, size, path));
  if (gguf.tensors().empty()) return Malformed(path, "no entries");
  Imatrix out;
  const GgufKv* datasets = FindKv(gguf.kv(), "imatrix.datasets");
  const GgufKv* chunk_count = FindKv(gguf.kv(), "imatrix.chunk_count");
  const GgufKv* chunk_size = FindKv(gguf.kv(), "imatrix.chunk_size");
  if (!datasets || !chunk_count || !chunk_size) {
    return Malformed(path, "missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size)");
  }
  if (datasets->is_array && datasets->type == GgufValueType::kString) out.datasets = datasets->strings;
  if (!chunk_count->GetU32()) return Malformed(path, "imatrix.chunk_count must be a u32");
  out.chunk_count = static_cast<int32_t>(*chunk_count->GetU32());
  std::map<std::string, std::pair<const GgufTensorInfo*, const GgufTensorInfo*>> sums_counts;
  for (const GgufTensorInfo& t : gguf.tensors()) {
    absl::string_view name = t.name;
    if (absl::ConsumeSuffix(&name, ".in_sum2")) {
      sums_counts[std::string(name)].first = &t;
    } else if (absl::ConsumeSuffix(&name, ".counts")) {
      sums_counts[std::string(name)].second = &t;
    }
  }
  auto floats = [&](const GgufTensorInfo& t) {
    std::vector<float> v(t.n_elements());
    std::memcpy(v.data(), data + gguf.data_offset() + t.offset, v.size() * sizeof(float));
    return v;
  };
  for (const auto& [name, sc] : sums_counts) {
    if (!sc.first || !sc.second)
      return Malformed(path, absl::StrFormat("entry '%s' has sums without counts or counts without sums", name));
    if (sc.first->type != GgmlType::kF32 || sc.second->type != GgmlType::kF32) {
      return Malformed(path, absl::StrFormat("entry '%s': sums and counts must be F32", name));
    }
    RawEntry e{floats(*sc.first), {}};
    for (float c : floats(*sc.second)) {
      if (!std::isfinite(c) || c < 0 || c > 1e15f) {
        return Malformed(path, absl::StrFormat("entry '%s' has a count of %f tokens", name, c));
      }
      e.counts.push_back(std::lround(c));
    }
    const int64_t ncounts = static_cast<int64_t>(e.counts.size());
    if (ncounts == 0 || e.sums.size() % ncounts != 0) {
      return Malformed(path, absl::StrFormat("entry '%s' has %d sums for %d counts", name, e.sums.size(), ncounts));
    }
    const int64_t ne0 = static_cast<int64_t>(e.sums.size()) / ncounts;
    std::vector<float>& w = out.weights[name];
    w.resize(e.sums.size());
    for (int64_t j = 0; j < ncounts; ++j) {
      const float count = static_cast<float>(e.counts[j]);
      for (int64_t i = 0; i < ne0; ++i) w[j * ne0 + i] = count > 0.0f ? e.sums[j * ne0 + i] / count : 1;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Imatrix> LoadImatrix(const std::string& path) {
  QF_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return ParseImatrix(file.data(), file.size(), path);
}

absl::StatusOr<Imatrix> ParseImatrix(const uint8_t* data, size_t size, const std::string& path) {
  absl::StatusOr<Imatrix> out =
      (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) ? ParseGguf(data, size, path) : ParseLegacy(data, size, path);
  if (!out.ok()) return out.status();
  for (const auto& [name, w] : out->weights) {
    for (size_t i = 0; i < w.size(); ++i) {
      if (!std::isfinite(w[i])) {
        return Malformed(path, absl::StrFormat("entry '%s' value %d is %f (not finite)", name, i, w[i]));
      }
    }
  }
  return out;
}

void FilterImatrix(Imatrix& imatrix, const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  for (const std::string& pattern : exclude) {
    std::erase_if(imatrix.weights, [&](const auto& e) { return absl::StrContains(e.first, pattern); });
  }
  if (!include.empty()) {
    std::erase_if(imatrix.weights, [&](const auto& e) {
      for (const std::string& pattern : include) {
        if (absl::StrContains(e.first, pattern)) return false;
      }
      return true;
    });
  }
}

}  // namespace quantfleet
