#include "core/calibration/hessian_collector.h"

#include <cblas.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quantfleet {

namespace {

struct Group {
  const char* member;  // the weight's kind, e.g. "attn_k"
  const char* entry;   // the shared entry's kind
  bool counts;         // whether this member adds the input (the first one does)
};

constexpr Group kGroups[] = {
    {"attn_q", "attn_qkv", true},
    {"attn_k", "attn_qkv", false},
    {"attn_v", "attn_qkv", false},
    {"ffn_gate", "ffn_gate_up", true},
    {"ffn_up", "ffn_gate_up", false},
    {"ffn_gate_exps", "ffn_gate_up_exps", true},
    {"ffn_up_exps", "ffn_gate_up_exps", false},
};

// Adds rows^T rows (n x columns floats) into `sum` (columns x columns, full).
void AddOuterProducts(const float* rows, int64_t n, int64_t columns, double* sum) {
  std::vector<double> block(static_cast<size_t>(n * columns));
  for (size_t i = 0; i < block.size(); ++i) block[i] = rows[i];
  // Upper triangle by BLAS, then mirrored: the sum stays symmetric bit for bit.
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(columns), static_cast<int>(n), 1.0, block.data(),
              static_cast<int>(columns), 1.0, sum, static_cast<int>(columns));
  for (int64_t i = 0; i < columns; ++i) {
    for (int64_t j = 0; j < i; ++j) sum[i * columns + j] = sum[j * columns + i];
  }
}

}  // namespace

std::string HessianCollector::EntryOf(const std::string& weight_name, std::string* counted_by) {
  // "blk.N.KIND.weight"
  const size_t kind_at = weight_name.find('.', 4);
  const size_t kind_end = weight_name.rfind('.');
  if (absl::StartsWith(weight_name, "blk.") && kind_at != std::string::npos && kind_end > kind_at) {
    const std::string block = weight_name.substr(0, kind_at);
    const std::string kind = weight_name.substr(kind_at + 1, kind_end - kind_at - 1);
    for (const Group& g : kGroups) {
      if (kind == g.member) {
        if (counted_by != nullptr) *counted_by = g.counts ? "" : absl::StrCat(block, ".", g.entry);
        return g.counts ? absl::StrCat(block, ".", g.entry) : "";
      }
    }
  }
  if (counted_by != nullptr) counted_by->clear();
  return weight_name;
}

HessianCollector::Entry& HessianCollector::EntryFor(const std::string& key, int64_t columns, int matrices) {
  Entry& e = entries_[key];
  if (e.sums.empty()) {
    e.columns = columns;
    e.sums.assign(static_cast<size_t>(columns * columns * matrices), 0.0);
    e.counts.assign(static_cast<size_t>(matrices), 0);
  }
  return e;
}

void HessianCollector::OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) {
  if (!absl::StartsWith(weight.name, "blk.") && !(process_output_ && weight.name == "output.weight")) return;
  const std::string key = EntryOf(weight.name, nullptr);
  if (key.empty() || n_tokens <= 0) return;
  Entry& e = EntryFor(key, weight.n_in, 1);
  AddOuterProducts(x, n_tokens, weight.n_in, e.sums.data());
  e.counts[0] += n_tokens;
}

void HessianCollector::OnExpertInput(const Linear& weight, int /*slot*/, const int32_t* experts, const float* x,
                                     int64_t n_tokens) {
  const std::string key = EntryOf(weight.name, nullptr);
  if (key.empty() || n_tokens <= 0) return;
  Entry& e = EntryFor(key, weight.n_in, weight.n_mat);
  const int64_t columns = weight.n_in;
  // The tokens routed to each expert, in token order.
  std::vector<float> rows;
  for (int ex = 0; ex < weight.n_mat; ++ex) {
    rows.clear();
    int64_t n = 0;
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (experts[t] != ex) continue;
      rows.insert(rows.end(), x + t * columns, x + (t + 1) * columns);
      ++n;
    }
    if (n == 0) continue;
    AddOuterProducts(rows.data(), n, columns, e.sums.data() + static_cast<size_t>(ex * columns * columns));
    e.counts[static_cast<size_t>(ex)] += n;
  }
}

void HessianCollector::Merge(const HessianCollector& other) {
  for (const auto& [name, theirs] : other.entries_) {
    Entry& mine = EntryFor(name, theirs.columns, static_cast<int>(theirs.counts.size()));
    for (size_t i = 0; i < theirs.sums.size(); ++i) mine.sums[i] += theirs.sums[i];
    for (size_t m = 0; m < theirs.counts.size(); ++m) mine.counts[m] += theirs.counts[m];
  }
}

std::vector<double> HessianCollector::Hessian(const std::string& entry, int matrix) const {
  auto it = entries_.find(entry);
  if (it == entries_.end() || matrix < 0 || static_cast<size_t>(matrix) >= it->second.counts.size()) return {};
  const Entry& e = it->second;
  const int64_t n = e.counts[static_cast<size_t>(matrix)];
  if (n == 0) return {};
  const size_t size = static_cast<size_t>(e.columns * e.columns);
  std::vector<double> h(e.sums.begin() + static_cast<std::ptrdiff_t>(size * static_cast<size_t>(matrix)),
                        e.sums.begin() + static_cast<std::ptrdiff_t>(size * static_cast<size_t>(matrix + 1)));
  for (double& v : h) v *= 2.0 / static_cast<double>(n);
  return h;
}

}  // namespace quantfleet
