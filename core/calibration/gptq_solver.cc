#include "core/calibration/gptq_solver.h"

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <numeric>

#include "absl/strings/str_format.h"

// LAPACK (OpenBLAS carries it): Cholesky factorization and the inverse from it.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace quantfleet {

namespace {

// On a row-major symmetric matrix, LAPACK's column-major 'L' is our upper
// triangle: after this, a's upper triangle is U with A = U^T U.
bool UpperCholesky(std::vector<double>& a, int n) {
  int info = 0;
  dpotrf_("L", &n, a.data(), &n, &info);
  return info == 0;
}

// The inverse of A from its factor (upper triangle), made full.
bool InverseFromCholesky(std::vector<double>& a, int n) {
  int info = 0;
  dpotri_("L", &n, a.data(), &n, &info);
  if (info != 0) return false;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) a[static_cast<size_t>(i) * n + j] = a[static_cast<size_t>(j) * n + i];
  }
  return true;
}

void ZeroLower(std::vector<double>& a, int n) {
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) a[static_cast<size_t>(i) * n + j] = 0;
  }
}

}  // namespace

absl::StatusOr<GptqResult> SolveGptq(const std::vector<double>& w_in, int64_t rows, int64_t columns,
                                     std::vector<double> h, GptqQuantizer& quantizer, const GptqOptions& options) {
  if (rows <= 0 || columns <= 0 || static_cast<int64_t>(w_in.size()) != rows * columns ||
      static_cast<int64_t>(h.size()) != columns * columns || columns > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("GPTQ: weights of %d values for %d x %d, a Hessian of %d values for %d columns", w_in.size(),
                        rows, columns, h.size(), columns));
  }
  const int n = static_cast<int>(columns);
  auto at = [n](int64_t i, int64_t j) { return static_cast<size_t>(i) * static_cast<size_t>(n) + j; };
  GptqResult result;
  std::vector<double> w = w_in;
  // Dead columns: no token ever reached them; they carry nothing.
  double mean_diag = 0;
  for (int64_t j = 0; j < columns; ++j) {
    if (h[at(j, j)] == 0) {
      h[at(j, j)] = 1;
      for (int64_t r = 0; r < rows; ++r) w[static_cast<size_t>(r * columns + j)] = 0;
      ++result.dead_columns;
    }
    mean_diag += h[at(j, j)];
  }
  mean_diag /= static_cast<double>(columns);
  const int64_t group = options.group > 0 ? std::min(options.group, columns) : columns;
  // The order the columns are rounded in: position i holds column order[i].
  std::vector<int64_t> order(static_cast<size_t>(columns));
  std::iota(order.begin(), order.end(), 0);
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return h[at(a, a)] > h[at(b, b)]; });
    // Static groups: every group's scales from the weights as given.
    for (int64_t g = 0; g < columns; g += group) {
      quantizer.BeginGroup(g, std::min(group, columns - g), w.data() + g, columns, rows);
    }
    // The weights' columns and the Hessian's rows and columns in that order.
    std::vector<double> permuted(w.size()), hp(h.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < columns; ++i)
        permuted[static_cast<size_t>(r * columns + i)] = w[static_cast<size_t>(r * columns + order[i])];
    }
    for (int64_t i = 0; i < columns; ++i) {
      for (int64_t j = 0; j < columns; ++j) hp[at(i, j)] = h[at(order[i], order[j])];
    }
    w.swap(permuted);
    h.swap(hp);
  }
  // Damp, factor, invert, factor the inverse; more damping until it works.
  std::vector<double> u;
  for (double damp = options.damp;; damp += options.damp_step) {
    if (damp > options.max_damp + 1e-12) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "GPTQ: the Hessian is not positive definite even damped by %.2f of its mean diagonal", options.max_damp));
    }
    u = h;
    for (int64_t j = 0; j < columns; ++j) u[at(j, j)] += damp * mean_diag;
    if (UpperCholesky(u, n) && InverseFromCholesky(u, n) && UpperCholesky(u, n)) {
      result.damp = damp;
      break;
    }
  }
  ZeroLower(u, n);

  result.q.assign(w.size(), 0);
  std::vector<double> column(static_cast<size_t>(rows)), q(static_cast<size_t>(rows));
  // Whole groups per block: a group's scales are then fixed from weights
  // that carry every earlier column's error (within a block updates are
  // immediate, across blocks they land at the block's end). With act_order
  // the groups are fixed already.
  const int64_t block = options.act_order ? std::max<int64_t>(1, options.block)
                                          : (std::max<int64_t>(1, options.block) + group - 1) / group * group;
  std::vector<double> err;  // rows x block: the scaled errors of this block's columns
  for (int64_t i1 = 0; i1 < columns; i1 += block) {
    const int64_t i2 = std::min(columns, i1 + block);
    const int64_t count = i2 - i1;
    err.assign(static_cast<size_t>(rows * count), 0);
    for (int64_t i = i1; i < i2; ++i) {
      if (!options.act_order && i % group == 0) {
        quantizer.BeginGroup(i, std::min(group, columns - i), w.data() + i, columns, rows);
      }
      for (int64_t r = 0; r < rows; ++r) column[static_cast<size_t>(r)] = w[static_cast<size_t>(r * columns + i)];
      quantizer.QuantizeColumn(order[i], column.data(), q.data(), rows);
      const double d = u[at(i, i)];
      for (int64_t r = 0; r < rows; ++r) {
        result.q[static_cast<size_t>(r * columns + order[i])] = q[static_cast<size_t>(r)];
        const double e = options.feedback ? (column[static_cast<size_t>(r)] - q[static_cast<size_t>(r)]) / d : 0.0;
        err[static_cast<size_t>(r * count + (i - i1))] = e;
        // Within the block, at once: the columns after i.
        double* row = w.data() + r * columns;
        const double* ui = u.data() + at(i, 0);
        for (int64_t j = i + 1; j < i2; ++j) row[j] -= e * ui[j];
      }
    }
    // The later blocks, once: W[:, i2:] -= Err * U[i1:i2, i2:], one
    // matrix product (most of the solve's arithmetic).
    if (i2 < columns) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(columns - i2),
                  static_cast<int>(count), -1.0, err.data(), static_cast<int>(count), u.data() + at(i1, i2), n, 1.0,
                  w.data() + i2, n);
    }
  }
  return result;
}

}  // namespace quantfleet
