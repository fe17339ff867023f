// Benchmark: the GPTQ solve of one weight matrix onto Q4_K (Hessian
// inverse and Cholesky, the column sweep, the blocks' headers), against
// the type's own importance-weighted quantizer on the same matrix and
// cores, for the shapes of a 7B/8B model's attn_q (4096 x 4096) and
// ffn_down (4096 x 14336; --full, it takes minutes on two cores). The
// Hessian is that of correlated synthetic inputs (a shared low-rank part
// plus noise); the weights are Gaussian with outlier columns.
//
//   build/bin/gptq_solve_bench [--full] [--threads N]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/calibration/gptq_ggml.h"
#include "core/model/forward_pass.h"
#include "core/quant/quantize_rows.h"

namespace quantfleet {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// H = (2/N) X^T X for N tokens of `columns` inputs: 32 shared directions
// carry most of the energy, as in a transformer's activations.
std::vector<double> SyntheticHessian(int64_t columns, std::mt19937& gen) {
  const int64_t rank = 32;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> basis(static_cast<size_t>(rank * columns));
  for (double& b : basis) b = normal(gen);
  std::vector<double> h(static_cast<size_t>(columns * columns), 0.0);
  for (int64_t k = 0; k < rank; ++k) {
    const double weight = 4.0 / (1 + k);
    const double* v = basis.data() + k * columns;
    for (int64_t i = 0; i < columns; ++i) {
      const double vi = weight * v[i];
      double* row = h.data() + i * columns;
      for (int64_t j = 0; j < columns; ++j) row[j] += vi * v[j];
    }
  }
  for (int64_t i = 0; i < columns; ++i) h[static_cast<size_t>(i * columns + i)] += 0.5 + (i % 97 == 0 ? 20.0 : 0.0);
  return h;
}

void Run(int64_t rows, int64_t columns) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(rows * columns));
  for (int64_t i = 0; i < rows * columns; ++i) w[i] = normal(gen) * ((i % columns) % 97 == 0 ? 6.0f : 1.0f);
  const std::vector<double> h = SyntheticHessian(columns, gen);
  std::vector<float> imatrix(static_cast<size_t>(columns));
  for (int64_t j = 0; j < columns; ++j) imatrix[j] = static_cast<float>(h[j * columns + j] / 2);

  auto start = std::chrono::steady_clock::now();
  std::vector<uint8_t> rtn(static_cast<size_t>(rows) * RowSize(GgmlType::kQ4_K, columns));
  QuantizeRowsFast(GgmlType::kQ4_K, w.data(), rtn.data(), rows, columns, imatrix.data());
  const double rtn_secs = Seconds(start);
  start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<uint8_t>> gptq =
      GptqQuantizeRows(GgmlType::kQ4_K, w.data(), rows, columns, h, imatrix.data());
  const double gptq_secs = Seconds(start);
  if (!gptq.ok()) {
    std::fprintf(stderr, "gptq_solve_bench: %s\n", std::string(gptq.status().message()).c_str());
    std::exit(1);
  }
  std::printf("%5lld x %-5lld Q4_K: quantizer + imatrix %8.3f s, GPTQ solve %8.2f s (%.0fx)\n",
              static_cast<long long>(rows), static_cast<long long>(columns), rtn_secs, gptq_secs, gptq_secs / rtn_secs);
}

}  // namespace
}  // namespace quantfleet

int main(int argc, char** argv) {
  bool full = false;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--full") == 0) {
      full = true;
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: gptq_solve_bench [--full] [--threads N]\n");
      return 1;
    }
  }
  quantfleet::SetBlasLibraryThreads(threads);
  quantfleet::Run(4096, 4096);
  if (full) quantfleet::Run(4096, 14336);
  return 0;
}
