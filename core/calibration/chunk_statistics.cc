#include "core/calibration/chunk_statistics.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <regex>

#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T Get(std::string_view bytes, size_t* at) {
  T v;
  std::memcpy(&v, bytes.data() + *at, sizeof(T));
  *at += sizeof(T);
  return v;
}

}  // namespace

ImatrixLayout ImatrixLayoutOf(const GgufModel& model, bool process_output) {
  static const std::regex kMatrix(
      R"(blk\.[0-9]+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down|ffn_gate_inp|ffn_gate_exps|ffn_up_exps|ffn_down_exps)\.weight)");
  std::map<std::string, ImatrixEntryShape> entries;
  for (const ModelTensor& t : model.tensors()) {
    if (std::regex_match(t.info.name, kMatrix) || (process_output && t.info.name == "output.weight")) {
      entries[t.info.name] = {t.info.name, t.info.ne[0], t.info.ne[2]};
    }
  }
  ImatrixLayout layout;
  for (auto& [name, shape] : entries) layout.push_back(shape);
  return layout;
}

size_t EncodedChunkBytes(const ImatrixLayout& layout) {
  size_t n = kChunkPerplexityBytes;
  for (const ImatrixEntryShape& e : layout) {
    n +=
        static_cast<size_t>(e.columns * e.matrices) * sizeof(float) + static_cast<size_t>(e.matrices) * sizeof(int64_t);
  }
  return n;
}

void ChunkStatistics::Add(const ChunkStatistics& chunk) {
  imatrix.Merge(chunk.imatrix);
  nll += chunk.nll;
  nll2 += chunk.nll2;
  predictions += chunk.predictions;
}

int EntryLayer(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

ImatrixLayout StageLayout(const ImatrixLayout& layout, int first_layer, int end_layer, int n_layer) {
  ImatrixLayout out;
  for (const ImatrixEntryShape& e : layout) {
    const int layer = EntryLayer(e.name);
    if (layer >= 0 ? (layer >= first_layer && layer < end_layer) : end_layer == n_layer) out.push_back(e);
  }
  return out;
}

absl::StatusOr<std::string> EncodeChunk(const ChunkStatistics& chunk, const ImatrixLayout& layout) {
  const auto& entries = chunk.imatrix.entries();
  if (entries.size() != layout.size()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the model gave %d importance entries where %d were expected", entries.size(), layout.size()));
  }
  std::string out;
  out.reserve(EncodedChunkBytes(layout));
  for (const ImatrixEntryShape& shape : layout) {
    auto it = entries.find(shape.name);
    if (it == entries.end() || static_cast<int64_t>(it->second.sums.size()) != shape.columns * shape.matrices ||
        static_cast<int64_t>(it->second.counts.size()) != shape.matrices) {
      return absl::FailedPreconditionError(
          absl::StrFormat("no importance entry %s of %d x %d", shape.name, shape.columns, shape.matrices));
    }
    out.append(reinterpret_cast<const char*>(it->second.sums.data()), it->second.sums.size() * sizeof(float));
    for (int64_t c : it->second.counts) Put<int64_t>(&out, c);
  }
  Put<double>(&out, chunk.nll);
  Put<double>(&out, chunk.nll2);
  Put<int64_t>(&out, chunk.predictions);
  return out;
}

absl::StatusOr<ChunkStatistics> DecodeChunk(std::string_view bytes, const ImatrixLayout& layout, bool process_output) {
  if (bytes.size() != EncodedChunkBytes(layout)) {
    return absl::DataLossError(
        absl::StrFormat("chunk statistics of %d bytes, expected %d", bytes.size(), EncodedChunkBytes(layout)));
  }
  ChunkStatistics out(process_output);
  std::map<std::string, ImatrixCollector::Entry> entries;
  size_t at = 0;
  for (const ImatrixEntryShape& shape : layout) {
    ImatrixCollector::Entry e;
    e.sums.resize(static_cast<size_t>(shape.columns * shape.matrices));
    std::memcpy(e.sums.data(), bytes.data() + at, e.sums.size() * sizeof(float));
    at += e.sums.size() * sizeof(float);
    for (int64_t m = 0; m < shape.matrices; ++m) e.counts.push_back(Get<int64_t>(bytes, &at));
    entries[shape.name] = std::move(e);
  }
  out.imatrix.Restore(std::move(entries));
  QF_ASSIGN_OR_RETURN(ChunkPerplexity sums, DecodeChunkPerplexity(bytes.substr(at)));
  out.nll = sums.nll;
  out.nll2 = sums.nll2;
  out.predictions = sums.predictions;
  return out;
}

absl::StatusOr<ChunkPerplexity> DecodeChunkPerplexity(std::string_view tail) {
  if (tail.size() != kChunkPerplexityBytes) {
    return absl::DataLossError(
        absl::StrFormat("chunk perplexity sums of %d bytes, expected %d", tail.size(), kChunkPerplexityBytes));
  }
  size_t at = 0;
  ChunkPerplexity out;
  out.nll = Get<double>(tail, &at);
  out.nll2 = Get<double>(tail, &at);
  out.predictions = Get<int64_t>(tail, &at);
  return out;
}

}  // namespace quantfleet
