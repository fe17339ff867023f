#include "core/calibration/imatrix_collector.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/gguf/gguf_writer.h"
#include "core/io/atomic_file.h"

namespace quantfleet {
namespace {

absl::Status WriteAtomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  absl::StatusOr<std::unique_ptr<AtomicFile>> out = AtomicFile::Create(path, /*overwrite=*/true);
  if (!out.ok()) return out.status();
  if (absl::Status s = (*out)->PWrite(bytes.data(), bytes.size(), 0); !s.ok()) return s;
  return (*out)->Commit();
}

void Append(std::vector<uint8_t>* out, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + n);
}

}  // namespace

void ImatrixCollector::OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) {
  // llama-imatrix skips batches under 16 tokens and keeps only the blocks'
  // weights (and output.weight when asked).
  if (n_tokens < 16) return;
  if (!absl::StartsWith(weight.name, "blk.") && !(process_output_ && weight.name == "output.weight")) return;
  Entry& e = entries_[weight.name];
  if (e.sums.empty()) {
    e.sums.assign(static_cast<size_t>(weight.n_in), 0.0f);
    e.counts.assign(1, 0);
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * weight.n_in;
    for (int j = 0; j < weight.n_in; ++j) e.sums[static_cast<size_t>(j)] += row[j] * row[j];
  }
  e.counts[0] += n_tokens;
}

void ImatrixCollector::OnExpertInput(const Linear& weight, int /*slot*/, const int32_t* experts, const float* x,
                                     int64_t n_tokens) {
  // Expert products are always kept (llama-imatrix has no small-batch rule
  // for them), per expert.
  Entry& e = entries_[weight.name];
  if (e.sums.empty()) {
    e.sums.assign(static_cast<size_t>(weight.n_in) * static_cast<size_t>(weight.n_mat), 0.0f);
    e.counts.assign(static_cast<size_t>(weight.n_mat), 0);
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int32_t ex = experts[t];
    const float* row = x + t * weight.n_in;
    float* acc = e.sums.data() + static_cast<size_t>(ex) * static_cast<size_t>(weight.n_in);
    ++e.counts[static_cast<size_t>(ex)];
    for (int j = 0; j < weight.n_in; ++j) acc[j] += row[j] * row[j];
  }
}

void ImatrixCollector::Merge(const ImatrixCollector& other) {
  for (const auto& [name, theirs] : other.entries_) {
    Entry& mine = entries_[name];
    if (mine.sums.empty()) {
      mine.sums.assign(theirs.sums.size(), 0.0f);
      mine.counts.assign(theirs.counts.size(), 0);
    }
    for (size_t j = 0; j < theirs.sums.size(); ++j) mine.sums[j] += theirs.sums[j];
    for (size_t j = 0; j < theirs.counts.size(); ++j) mine.counts[j] += theirs.counts[j];
  }
}

absl::Status ImatrixCollector::WriteGguf(const std::string& path, const std::vector<std::string>& datasets,
                                         int chunk_count, int chunk_size) const {
  return WriteAtomically(path, SerializeGguf(datasets, chunk_count, chunk_size));
}

std::vector<uint8_t> ImatrixCollector::SerializeGguf(const std::vector<std::string>& datasets, int chunk_count,
                                                     int chunk_size) const {
  std::vector<GgufKv> kv = {GgufKv::Str("general.type", "imatrix"), GgufKv::StrArray("imatrix.datasets", datasets),
                            GgufKv::U32("imatrix.chunk_count", static_cast<uint32_t>(chunk_count)),
                            GgufKv::U32("imatrix.chunk_size", static_cast<uint32_t>(chunk_size))};
  std::vector<GgufTensorInfo> tensors;
  for (const auto& [name, e] : entries_) {  // std::map: sorted by name
    const int64_t n_mat = static_cast<int64_t>(e.counts.size());
    GgufTensorInfo sums;
    sums.name = name + ".in_sum2";
    sums.ne[0] = static_cast<int64_t>(e.sums.size()) / n_mat;
    sums.ne[1] = n_mat;
    sums.nbytes = e.sums.size() * sizeof(float);
    GgufTensorInfo counts;
    counts.name = name + ".counts";
    counts.ne[1] = n_mat;
    counts.nbytes = static_cast<size_t>(n_mat) * sizeof(float);
    tensors.push_back(sums);
    tensors.push_back(counts);
  }
  const uint64_t data_size = LayOutTensors(tensors, kGgufDefaultAlignment);
  std::vector<uint8_t> bytes = SerializeGgufMeta(kv, tensors, kGgufDefaultAlignment);
  const size_t data_start = bytes.size();
  bytes.resize(data_start + data_size, 0);
  size_t i = 0;
  for (const auto& [name, e] : entries_) {
    std::memcpy(bytes.data() + data_start + tensors[i++].offset, e.sums.data(), e.sums.size() * sizeof(float));
    std::vector<float> counts(e.counts.begin(), e.counts.end());
    std::memcpy(bytes.data() + data_start + tensors[i++].offset, counts.data(), counts.size() * sizeof(float));
  }
  return bytes;
}

absl::Status ImatrixCollector::WriteLegacy(const std::string& path, const std::string& dataset, int chunk_count,
                                           int chunk_size) const {
  std::vector<uint8_t> bytes;
  auto i32 = [&bytes](int32_t v) { Append(&bytes, &v, 4); };
  // Entries no token reached are left out, as llama-imatrix does.
  int32_t stored = 0;
  for (const auto& [name, e] : entries_) stored += *std::max_element(e.counts.begin(), e.counts.end()) > 0 ? 1 : 0;
  i32(stored);
  for (const auto& [name, e] : entries_) {
    const int64_t most = *std::max_element(e.counts.begin(), e.counts.end());
    if (most == 0) continue;
    i32(static_cast<int32_t>(name.size()));
    Append(&bytes, name.data(), name.size());
    const int32_t calls = static_cast<int32_t>((most + chunk_size - 1) / chunk_size);
    i32(calls);
    i32(static_cast<int32_t>(e.sums.size()));
    const size_t per_matrix = e.sums.size() / e.counts.size();
    for (size_t j = 0; j < e.sums.size(); ++j) {
      float count = static_cast<float>(e.counts[j / per_matrix]);
      float value = e.sums[j];
      if (count == 0.0f) {  // an expert no token reached: 1, as llama-imatrix stores it
        value = 1.0f;
        count = 1.0f;
      }
      const float v = (value / count) * static_cast<float>(calls);
      Append(&bytes, &v, 4);
    }
  }
  i32(chunk_count);
  i32(static_cast<int32_t>(dataset.size()));
  Append(&bytes, dataset.data(), dataset.size());
  return WriteAtomically(path, bytes);
}

}  // namespace quantfleet
