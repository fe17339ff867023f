// AWQ's scale search. See awq_search.h.
#include "core/calibration/awq_search.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "core/calibration/hessian_collector.h"
#include "core/quant/quantize_rows.h"
#include "core/quant/reference_kernels.h"

namespace quantfleet {

void ChannelAbsMeans::OnMatMulInput(const Linear& weight, const float* x, int64_t n_tokens) {
  const std::string key = HessianCollector::EntryOf(weight.name, nullptr);
  if (key.empty() || n_tokens <= 0 || key.rfind("blk.", 0) != 0) return;
  Sums& s = sums_[key];
  if (s.abs.empty()) s.abs.assign(static_cast<size_t>(weight.n_in), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * weight.n_in;
    for (int j = 0; j < weight.n_in; ++j) s.abs[static_cast<size_t>(j)] += std::fabs(row[j]);
  }
  s.tokens += n_tokens;
}

void ChannelAbsMeans::Merge(const ChannelAbsMeans& other) {
  for (const auto& [key, theirs] : other.sums_) {
    Sums& mine = sums_[key];
    if (mine.abs.empty()) mine.abs.assign(theirs.abs.size(), 0.0);
    for (size_t j = 0; j < theirs.abs.size() && j < mine.abs.size(); ++j) mine.abs[j] += theirs.abs[j];
    mine.tokens += theirs.tokens;
  }
}

std::vector<float> ChannelAbsMeans::Mean(const std::string& entry) const {
  auto it = sums_.find(entry);
  if (it == sums_.end() || it->second.tokens == 0) return {};
  std::vector<float> mean(it->second.abs.size());
  for (size_t j = 0; j < mean.size(); ++j) mean[j] = static_cast<float>(it->second.abs[j] / it->second.tokens);
  return mean;
}

double AwqLoss(const AwqGroup& group, const std::vector<float>& s) {
  const int64_t columns = group.columns;
  const int n = static_cast<int>(columns);
  std::vector<float> imatrix;
  if (group.imatrix != nullptr) {
    imatrix.resize(static_cast<size_t>(columns));
    for (int64_t j = 0; j < columns; ++j) imatrix[j] = group.imatrix[j] / (s[j] * s[j]);
  }
  double loss = 0;
  for (const AwqMember& m : group.members) {
    const size_t count = static_cast<size_t>(m.rows * columns);
    std::vector<float> scaled(count), back(count);
    for (size_t i = 0; i < count; ++i) scaled[i] = m.w[i] * s[i % columns];
    if (m.round) {
      m.round(scaled.data(), m.rows, columns, back.data());
    } else {
      std::vector<uint8_t> q(static_cast<size_t>(m.rows) * RowSize(m.type, columns));
      QuantizeRowsFast(m.type, scaled.data(), q.data(), m.rows, columns, imatrix.empty() ? nullptr : imatrix.data());
      DequantizeToFloat(m.type, q.data(), back.data(), static_cast<int64_t>(count));
    }
    std::vector<double> d(count), dh(count);
    for (size_t i = 0; i < count; ++i)
      d[i] = static_cast<double>(m.w[i]) - static_cast<double>(back[i]) / s[i % columns];
    // tr(D H D^T) = sum of D .* (D H).
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m.rows), n, n, 1.0, d.data(), n,
                group.hessian->data(), n, 0.0, dh.data(), n);
    for (size_t i = 0; i < count; ++i) loss += d[i] * dh[i];
  }
  return loss;
}

absl::StatusOr<AwqScales> SearchAwqScales(const AwqGroup& group, int grid) {
  const int64_t columns = group.columns;
  if (columns <= 0 || group.hessian == nullptr || static_cast<int64_t>(group.hessian->size()) != columns * columns ||
      static_cast<int64_t>(group.x_mean.size()) != columns || group.members.empty() ||
      (!group.shared.empty() && static_cast<int64_t>(group.shared.size()) != columns)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AWQ: a group of %d columns with mismatched statistics", columns));
  }
  for (const AwqMember& m : group.members) {
    if (m.rows <= 0 || (!m.round && (columns % BlockSize(m.type) != 0 || !CanDequantize(m.type)))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("AWQ: a member of %d x %d cannot be quantized to %s", m.rows, columns, TypeName(m.type)));
    }
  }
  // w_mean: |W| over its 32-column group's maximum, averaged over all rows.
  constexpr int64_t kGroup = 32;
  std::vector<double> w_mean(static_cast<size_t>(columns), 0.0);
  int64_t total_rows = 0;
  for (const AwqMember& m : group.members) {
    for (int64_t r = 0; r < m.rows; ++r) {
      const float* row = m.w + r * columns;
      for (int64_t g = 0; g < columns; g += kGroup) {
        const int64_t end = std::min(columns, g + kGroup);
        float amax = 0;
        for (int64_t j = g; j < end; ++j) amax = std::max(amax, std::fabs(row[j]));
        if (amax == 0) continue;
        for (int64_t j = g; j < end; ++j) w_mean[j] += std::fabs(row[j]) / amax;
      }
    }
    total_rows += m.rows;
  }
  for (double& v : w_mean) v /= static_cast<double>(total_rows);
  // Tied columns see their share's mean statistics.
  std::vector<double> x_mean(group.x_mean.begin(), group.x_mean.end());
  if (!group.shared.empty()) {
    std::vector<double> x_sum(static_cast<size_t>(columns), 0.0), w_sum(static_cast<size_t>(columns), 0.0);
    std::vector<int64_t> count(static_cast<size_t>(columns), 0);
    for (int64_t j = 0; j < columns; ++j) {
      const int64_t k = group.shared[j];
      x_sum[k] += x_mean[j];
      w_sum[k] += w_mean[j];
      ++count[k];
    }
    for (int64_t j = 0; j < columns; ++j) {
      const int64_t k = group.shared[j];
      x_mean[j] = x_sum[k] / count[k];
      w_mean[j] = w_sum[k] / count[k];
    }
  }

  AwqScales best;
  best.s.assign(static_cast<size_t>(columns), 1.0f);
  best.unscaled_loss = AwqLoss(group, best.s);
  best.loss = best.unscaled_loss;
  std::vector<float> s(static_cast<size_t>(columns));
  for (int i = 0; i < grid; ++i) {
    const double ratio = static_cast<double>(i) / grid;
    double smax = 0, smin = INFINITY;
    for (int64_t j = 0; j < columns; ++j) {
      const double v = std::max(1e-4, std::pow(x_mean[j], ratio) / (std::pow(w_mean[j], 1 - ratio) + 1e-4));
      s[j] = static_cast<float>(v);
      smax = std::max(smax, v);
      smin = std::min(smin, v);
    }
    const double norm = std::sqrt(smax * smin);
    for (float& v : s) v = static_cast<float>(v / norm);
    const double loss = AwqLoss(group, s);
    if (loss < best.loss) {
      best.loss = loss;
      best.ratio = ratio;
      best.s = s;
    }
  }
  return best;
}

namespace {

void ScaleColumns(std::vector<float>& w, const std::vector<float>& s) {
  const size_t columns = s.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] *= s[i % columns];
}

void DivideRows(std::vector<float>& w, const std::vector<float>& s) {
  const size_t columns = w.size() / s.size();
  for (size_t i = 0; i < w.size(); ++i) w[i] /= s[i / columns];
}

}  // namespace

void FoldAwqScales(const LayerScales& scales, LayerFloats& layer) {
  if (!scales.qkv.empty()) {
    for (size_t j = 0; j < scales.qkv.size(); ++j) layer.attn_norm[j] /= scales.qkv[j];
    for (std::vector<float>* w : {&layer.wq, &layer.wk, &layer.wv}) ScaleColumns(*w, scales.qkv);
  }
  if (!scales.o.empty()) {
    // v's row k (kv head k / head_dim) feeds o's columns of that kv head's
    // heads, which share its scale: that of the first of them.
    const int64_t hd = layer.head_dim, per_kv = layer.heads_per_kv;
    std::vector<float> v_rows = scales.o;  // one v row per o column without grouped-query attention
    if (per_kv > 1) v_rows.resize(scales.o.size() / static_cast<size_t>(per_kv));
    for (size_t k = 0; per_kv > 1 && k < v_rows.size(); ++k) {
      v_rows[k] =
          scales.o[static_cast<size_t>((static_cast<int64_t>(k) / hd) * per_kv * hd + static_cast<int64_t>(k) % hd)];
    }
    DivideRows(layer.wv, v_rows);
    ScaleColumns(layer.wo, scales.o);
  }
  if (!scales.gate_up.empty()) {
    for (size_t j = 0; j < scales.gate_up.size(); ++j) layer.ffn_norm[j] /= scales.gate_up[j];
    for (std::vector<float>* w : {&layer.gate, &layer.up}) ScaleColumns(*w, scales.gate_up);
  }
  if (!scales.down.empty()) {
    DivideRows(layer.up, scales.down);
    ScaleColumns(layer.down, scales.down);
  }
}

std::vector<int64_t> SharedByKvHead(int64_t columns, int64_t head_dim, int64_t heads_per_kv) {
  std::vector<int64_t> shared(static_cast<size_t>(columns));
  for (int64_t c = 0; c < columns; ++c) {
    const int64_t head = c / head_dim;
    shared[c] = (head / heads_per_kv) * heads_per_kv * head_dim + c % head_dim;
  }
  return shared;
}

}  // namespace quantfleet
