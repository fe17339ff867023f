// The GPTQ solve: with no correlation between inputs it is rounding to
// nearest; dead columns are zeroed; and on the trained model in
// ../shared/models/pystdlib-tiny, with Hessians from its calibration text,
// it must lower the layer's output error tr((W-Q) H (W-Q)^T) below
// rounding to nearest on the same grid, which is what the solve minimizes
// (how much lower, and what it does to KL divergence, is for the benchmarks).
// Onto ggml's grids (gptq_ggml.h) it must beat the type's own quantizer.
#include "core/calibration/gptq_solver.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>

#include "absl/strings/str_format.h"
#include "core/calibration/calibration_chunks.h"
#include "core/calibration/gptq_ggml.h"
#include "core/calibration/hessian_collector.h"
#include "core/calibration/layerwise_method.h"
#include "core/gguf/gguf_model.h"
#include "core/io/mapped_file.h"
#include "core/model/runnable_model.h"
#include "core/quant/file_type.h"
#include "core/quant/model_quantizer.h"
#include "core/quant/reference_kernels.h"
#include "tests/tools/trained_llama.h"

namespace quantfleet {
namespace {

// Symmetric 4-bit levels per row and group: scale = max|w| / 7.
class Int4Grid : public GptqQuantizer {
 public:
  void BeginGroup(int64_t, int64_t count, const double* w, int64_t stride, int64_t rows) override {
    scales_.assign(static_cast<size_t>(rows), 0);
    for (int64_t r = 0; r < rows; ++r) {
      double amax = 0;
      for (int64_t j = 0; j < count; ++j) amax = std::max(amax, std::fabs(w[r * stride + j]));
      scales_[static_cast<size_t>(r)] = amax / 7;
    }
  }
  void QuantizeColumn(int64_t, const double* w, double* q, int64_t rows) override {
    for (int64_t r = 0; r < rows; ++r) {
      const double s = scales_[static_cast<size_t>(r)];
      q[r] = s == 0 ? 0 : std::clamp(std::nearbyint(w[r] / s), -8.0, 7.0) * s;
    }
  }

 private:
  std::vector<double> scales_;
};

// Rounding to nearest on the same grid, group by group.
std::vector<double> RoundToNearest(const std::vector<double>& w, int64_t rows, int64_t columns, int64_t group) {
  Int4Grid grid;
  std::vector<double> q(w.size()), column(static_cast<size_t>(rows)), out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < columns; ++i) {
    if (i % group == 0) grid.BeginGroup(i, std::min(group, columns - i), w.data() + i, columns, rows);
    for (int64_t r = 0; r < rows; ++r) column[static_cast<size_t>(r)] = w[static_cast<size_t>(r * columns + i)];
    grid.QuantizeColumn(i, column.data(), out.data(), rows);
    for (int64_t r = 0; r < rows; ++r) q[static_cast<size_t>(r * columns + i)] = out[static_cast<size_t>(r)];
  }
  return q;
}

// tr((W-Q) H (W-Q)^T): the output error over the calibration inputs.
double OutputError(const std::vector<double>& w, const std::vector<double>& q, const std::vector<double>& h,
                   int64_t rows, int64_t columns) {
  double total = 0;
  std::vector<double> d(static_cast<size_t>(columns));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < columns; ++j) d[j] = w[r * columns + j] - q[r * columns + j];
    for (int64_t i = 0; i < columns; ++i) {
      double hi = 0;
      for (int64_t j = 0; j < columns; ++j) hi += h[i * columns + j] * d[j];
      total += d[i] * hi;
    }
  }
  return total;
}

TEST(GptqSolver, UncorrelatedInputs_GiveRoundingToNearest) {
  const int64_t rows = 8, columns = 64;
  std::vector<double> w(rows * columns), h(columns * columns, 0);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37 * static_cast<double>(i)) * 0.1;
  for (int64_t j = 0; j < columns; ++j) h[j * columns + j] = 1.0 + static_cast<double>(j % 5);
  Int4Grid grid;
  GptqOptions options;
  options.group = 32;
  options.block = 16;
  absl::StatusOr<GptqResult> r = SolveGptq(w, rows, columns, h, grid, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->q, RoundToNearest(w, rows, columns, 32));
  EXPECT_EQ(r->damp, 0.01);
}

// Optimal Brain Quantization done naively: after each column, the columns
// left move by -(w_i - q_i) / [H_F^-1]_ii * [H_F^-1]_{:,i}, with H_F^-1
// the inverse of the remaining columns' Hessian, inverted afresh by
// Gauss-Jordan. GPTQ's Cholesky form must give the same grid values.
std::vector<double> NaiveObq(std::vector<double> w, int64_t rows, int64_t n, const std::vector<double>& h,
                             int64_t group) {
  Int4Grid grid;
  std::vector<double> q(w.size()), column(static_cast<size_t>(rows)), out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < n; ++i) {
    if (i % group == 0) grid.BeginGroup(i, std::min(group, n - i), w.data() + i, n, rows);
    for (int64_t r = 0; r < rows; ++r) column[r] = w[r * n + i];
    grid.QuantizeColumn(i, column.data(), out.data(), rows);
    for (int64_t r = 0; r < rows; ++r) q[r * n + i] = out[r];
    const int64_t m = n - i;  // H_F with F = {i, ..., n-1}, inverted
    std::vector<double> a(static_cast<size_t>(m * 2 * m), 0);
    for (int64_t x = 0; x < m; ++x) {
      for (int64_t y = 0; y < m; ++y) a[x * 2 * m + y] = h[(i + x) * n + (i + y)];
      a[x * 2 * m + m + x] = 1;
    }
    for (int64_t p = 0; p < m; ++p) {
      const double pivot = a[p * 2 * m + p];
      for (int64_t y = 0; y < 2 * m; ++y) a[p * 2 * m + y] /= pivot;
      for (int64_t x = 0; x < m; ++x) {
        if (x == p) continue;
        const double f = a[x * 2 * m + p];
        for (int64_t y = 0; y < 2 * m; ++y) a[x * 2 * m + y] -= f * a[p * 2 * m + y];
      }
    }
    auto inv = [&](int64_t x, int64_t y) { return a[x * 2 * m + m + y]; };
    for (int64_t r = 0; r < rows; ++r) {
      const double e = (w[r * n + i] - out[r]) / inv(0, 0);
      for (int64_t x = 1; x < m; ++x) w[r * n + i + x] -= e * inv(x, 0);
    }
  }
  return q;
}

// Int4Grid with every group's scales kept, for act order (static groups).
class StaticInt4Grid : public GptqQuantizer {
 public:
  explicit StaticInt4Grid(int64_t group) : group_(group) {}
  void BeginGroup(int64_t first, int64_t count, const double* w, int64_t stride, int64_t rows) override {
    Int4Grid& g = groups_[first / group_];
    g.BeginGroup(first, count, w, stride, rows);
  }
  void QuantizeColumn(int64_t column, const double* w, double* q, int64_t rows) override {
    groups_.at(column / group_).QuantizeColumn(column, w, q, rows);
  }

 private:
  const int64_t group_;
  std::map<int64_t, Int4Grid> groups_;
};

// Act order with uncorrelated inputs: a real reordering (distinct energies)
// but no error to move, so rounding to nearest on the groups' up-front grid.
TEST(GptqSolver, ActOrder_UncorrelatedInputs_GiveRoundingToNearestOnStaticGroups) {
  const int64_t rows = 5, columns = 96, group = 32;
  std::mt19937 gen(11);
  std::normal_distribution<double> normal;
  std::vector<double> w(static_cast<size_t>(rows * columns)), h(static_cast<size_t>(columns * columns), 0);
  for (double& x : w) x = normal(gen);
  for (int64_t j = 0; j < columns; ++j) h[j * columns + j] = 1 + static_cast<double>((j * 37) % columns);
  StaticInt4Grid grid(group);
  GptqOptions options;
  options.group = group;
  options.act_order = true;
  absl::StatusOr<GptqResult> r = SolveGptq(w, rows, columns, h, grid, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->q, RoundToNearest(w, rows, columns, group));
}

TEST(GptqSolver, CholeskyFormEqualsNaiveOptimalBrainQuantization) {
  const int64_t rows = 5, n = 12;
  std::vector<double> w(rows * n), x(40 * n), h(n * n, 0);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(1.3 * static_cast<double>(i) + 0.2);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.71 * static_cast<double>(i * i % 97)) + (i % n == 2 ? 3 : 0);
  for (int64_t t = 0; t < 40; ++t) {  // H = 2/N X^T X, correlated columns
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) h[i * n + j] += 2.0 / 40 * x[t * n + i] * x[t * n + j];
    }
  }
  GptqOptions options;
  options.group = 4;
  options.block = 5;  // rounded up to two groups
  Int4Grid grid;
  absl::StatusOr<GptqResult> r = SolveGptq(w, rows, n, h, grid, options);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<double> damped = h;
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += h[i * n + i] / n;
  for (int64_t i = 0; i < n; ++i) damped[i * n + i] += r->damp * mean;
  const std::vector<double> want = NaiveObq(w, rows, n, damped, 4);
  ASSERT_EQ(r->q.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r->q[i], want[i], 1e-9) << "value " << i;
  EXPECT_NE(r->q, RoundToNearest(w, rows, n, 4)) << "correlated inputs must move some roundings";
}

TEST(GptqSolver, DeadColumnsAreZeroedAndBadShapesRefused) {
  const int64_t rows = 4, columns = 8;
  std::vector<double> w(rows * columns, 0.5), h(columns * columns, 0);
  for (int64_t j = 0; j < columns; ++j) h[j * columns + j] = j == 3 ? 0 : 2;
  Int4Grid grid;
  absl::StatusOr<GptqResult> r = SolveGptq(w, rows, columns, h, grid);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dead_columns, 1);
  for (int64_t row = 0; row < rows; ++row) EXPECT_EQ(r->q[row * columns + 3], 0);
  EXPECT_EQ(SolveGptq(w, rows, columns + 1, h, grid).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GptqSolver, OnTheTrainedModel_LowersTheOutputErrorBelowRoundingToNearest) {
  TrainedLlama* t = TrainedLlama::Get();
  ASSERT_TRUE(t->model != nullptr) << "the trained model in ../shared/models/pystdlib-tiny did not load";
  for (auto [weight, entry] : t->Weights()) {
    const int64_t rows = weight->n_out, columns = weight->n_in;
    const std::vector<float> f = LinearFloats(*weight);
    const std::vector<double> w(f.begin(), f.end());
    const std::vector<double> h = t->hessians.Hessian(entry);
    ASSERT_EQ(static_cast<int64_t>(h.size()), columns * columns) << entry;
    Int4Grid grid;
    GptqOptions options;
    options.group = 32;
    absl::StatusOr<GptqResult> r = SolveGptq(w, rows, columns, h, grid, options);
    ASSERT_TRUE(r.ok()) << r.status();
    const double gptq = OutputError(w, r->q, h, rows, columns);
    const double rtn = OutputError(w, RoundToNearest(w, rows, columns, 32), h, rows, columns);
    ::testing::Test::RecordProperty(weight->name + "_gptq_over_rtn", std::to_string(gptq / rtn));
    std::printf("%s: output error GPTQ / RTN = %.3f\n", weight->name.c_str(), gptq / rtn);
    EXPECT_LT(gptq, 0.9 * rtn) << weight->name;
  }
}

// Onto ggml's own grids: the result is blocks of the type, and their values
// (as any loader dequantizes them) have a lower output error than the
// type's own quantizer with the same importance weights (diag(H) / 2, the
// imatrix of the same text), with act order too.
TEST(GptqGgml, OnTheTrainedModel_BeatsTheTypesOwnQuantizerWithTheSameImatrix) {
  TrainedLlama* t = TrainedLlama::Get();
  ASSERT_TRUE(t->model != nullptr) << "the trained model in ../shared/models/pystdlib-tiny did not load";
  for (GgmlType type :
       {GgmlType::kQ4_0, GgmlType::kQ5_1, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS}) {
    for (auto [weight, entry] : t->Weights()) {
      const int64_t rows = weight->n_out, columns = weight->n_in;
      const std::vector<float> f = LinearFloats(*weight);
      const std::vector<double> w(f.begin(), f.end());
      const std::vector<double> h = t->hessians.Hessian(entry);
      std::vector<float> imatrix(static_cast<size_t>(columns));
      for (int64_t j = 0; j < columns; ++j) imatrix[j] = static_cast<float>(h[j * columns + j] / 2);
      auto values = [&](const std::vector<uint8_t>& bytes) {
        std::vector<float> back(f.size());
        DequantizeToFloat(type, bytes.data(), back.data(), static_cast<int64_t>(back.size()));
        return std::vector<double>(back.begin(), back.end());
      };
      std::vector<uint8_t> rtn_bytes(static_cast<size_t>(rows) * RowSize(type, columns));
      QuantizeRows(type, f.data(), rtn_bytes.data(), rows, columns, imatrix.data());
      GptqOptions act_order;
      act_order.act_order = true;
      absl::StatusOr<std::vector<uint8_t>> gptq_bytes =
          GptqQuantizeRows(type, f.data(), rows, columns, h, imatrix.data());
      absl::StatusOr<std::vector<uint8_t>> act_bytes =
          GptqQuantizeRows(type, f.data(), rows, columns, h, imatrix.data(), act_order);
      ASSERT_TRUE(gptq_bytes.ok() && act_bytes.ok()) << gptq_bytes.status() << act_bytes.status();
      ASSERT_EQ(gptq_bytes->size(), rtn_bytes.size());
      ASSERT_EQ(act_bytes->size(), rtn_bytes.size());
      const double gptq = OutputError(w, values(*gptq_bytes), h, rows, columns);
      const double act = OutputError(w, values(*act_bytes), h, rows, columns);
      const double rtn = OutputError(w, values(rtn_bytes), h, rows, columns);
      ::testing::Test::RecordProperty(absl::StrFormat("%s_%s_gptq_over_rtn", TypeName(type), weight->name),
                                      std::to_string(gptq / rtn));
      std::printf("%s %s: output error GPTQ / quantizer = %.3f, with act order %.3f\n",
                  std::string(TypeName(type)).c_str(), weight->name.c_str(), gptq / rtn, act / rtn);
      EXPECT_LT(gptq, rtn) << TypeName(type) << " " << weight->name;
      // Act order: the columns in another order, every block's header fixed up front.
      EXPECT_LT(act, rtn) << TypeName(type) << " " << weight->name << ", act order";
    }
  }
}

// Without error feedback GPTQ is rounding to nearest on the grid the type's
// quantizer chose, and the whole pipeline (the executor's method hook, the
// grids, the level writing) must then give the quantizer's file byte for
// byte, for every file type whose types all have block levels.
TEST(GptqGgml, WithoutFeedback_TheFileIsTheQuantizersByteForByte) {
  TrainedLlama* t = TrainedLlama::Get();
  ASSERT_TRUE(t->model != nullptr) << "the trained model in ../shared/models/pystdlib-tiny did not load";
  Imatrix imatrix;  // diag(H) / 2: the imatrix of the same text
  for (const auto& [entry, e] : t->hessians.entries()) {
    const std::vector<double> h = t->hessians.Hessian(entry);
    std::vector<float> diag(static_cast<size_t>(e.columns));
    for (int64_t j = 0; j < e.columns; ++j) diag[j] = static_cast<float>(h[j * e.columns + j] / 2);
    imatrix.weights[entry] = diag;
  }
  // Every matrix under its own name.
  for (const ModelTensor& tensor : t->file->tensors()) {
    const std::string& name = tensor.info.name;
    const std::string entry = HessianEntryFor(name);
    if (entry != name && imatrix.weights.contains(entry)) imatrix.weights[name] = imatrix.weights[entry];
  }
  const std::string dir = ::testing::TempDir();
  // Two chunks are enough: without feedback the Hessians pick nothing.
  const std::vector<std::vector<TokenId>> chunks(t->chunks.begin(), t->chunks.begin() + 2);
  for (const char* file_type : {"Q4_0", "Q5_1", "Q4_K_M", "Q3_K_M", "IQ4_XS"}) {
    QuantizeOptions options;
    options.file_type = *ParseFileType(file_type);
    absl::StatusOr<QuantizePlan> plan = BuildQuantizePlan(*t->file, options, &imatrix, false);
    ASSERT_TRUE(plan.ok()) << plan.status();
    RunOptions plain;
    plain.threads = 2;
    ASSERT_TRUE(RunQuantizePlan(*t->file, *plan, dir + "/plain.gguf", plain).ok());
    GptqOptions no_feedback;
    no_feedback.feedback = false;
    LayerwiseOptions options_no_feedback;
    options_no_feedback.gptq_options = no_feedback;
    absl::StatusOr<std::unique_ptr<LayerwiseMethod>> method =
        LayerwiseMethod::Create(*t->file, "model-f16.gguf", *plan, chunks, options_no_feedback, 2, nullptr);
    ASSERT_TRUE(method.ok()) << method.status();
    RunOptions by_method = plain;
    by_method.method = method->get();
    int handled = 0;
    for (const PlannedTensor& p : plan->tensors) handled += (*method)->Handles(p) ? 1 : 0;
    EXPECT_GT(handled, 20) << file_type;
    ASSERT_TRUE(RunQuantizePlan(*t->file, *plan, dir + "/gptq.gguf", by_method).ok());
    absl::StatusOr<std::string> a = ReadRegularFile(dir + "/plain.gguf");
    absl::StatusOr<std::string> b = ReadRegularFile(dir + "/gptq.gguf");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(*a == *b) << file_type << ": the files differ";
  }
}

}  // namespace
}  // namespace quantfleet
