// GpuForward on CUDA: device weights, cuBLAS products (loaded with dlopen),
// and one kernel per remaining step of the forward pass.
#include <cublas_api.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cmath>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/gpu/gpu_forward.h"
#include "core/gpu/quantize_kernels.cuh"
#include "core/model/forward_pass.h"
#include "core/util/status_macros.h"

namespace quantfleet {
namespace {

// ------------------------------------------------------------ cuBLAS

// The four cuBLAS entry points used, resolved once from the toolkit's
// library of the version this was built with.
struct Cublas {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  std::string error;  // why it could not be loaded
};

const Cublas& LoadCublas() {
  static const Cublas* loaded = [] {
    auto* c = new Cublas;
    const std::string name = absl::StrFormat("libcublas.so.%d", CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      c->error = absl::StrFormat("cannot load %s (the CUDA toolkit's cuBLAS): %s", name, dlerror());
      return c;
    }
    c->create = reinterpret_cast<decltype(c->create)>(dlsym(lib, "cublasCreate_v2"));
    c->destroy = reinterpret_cast<decltype(c->destroy)>(dlsym(lib, "cublasDestroy_v2"));
    c->set_stream = reinterpret_cast<decltype(c->set_stream)>(dlsym(lib, "cublasSetStream_v2"));
    c->gemm_ex = reinterpret_cast<decltype(c->gemm_ex)>(dlsym(lib, "cublasGemmEx"));
    if (!c->create || !c->destroy || !c->set_stream || !c->gemm_ex) c->error = name + " lacks cublasGemmEx";
    return c;
  }();
  return *loaded;
}

absl::Status FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  const std::string msg = absl::StrFormat("GPU %s: %s", what, cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

absl::Status FromCublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  if (s == CUBLAS_STATUS_ALLOC_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat("cuBLAS %s: out of memory", what));
  }
  return absl::InternalError(absl::StrFormat("cuBLAS %s failed with status %d", what, static_cast<int>(s)));
}

#define QF_CUDA(expr, what)                                            \
  do {                                                                 \
    if (absl::Status _s = FromCuda((expr), what); !_s.ok()) return _s; \
  } while (0)

// ------------------------------------------------------------ kernels

constexpr int kThreads = 256;

// Block-wide sum of a double (all threads get it).
__device__ double BlockSum(double v, double* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

__device__ float BlockMax(float v, float* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + s]);
    __syncthreads();
  }
  const float m = scratch[0];
  __syncthreads();
  return m;
}

// RMSNorm of each of `rows` rows of `dim`, times `w`, in place (one block
// per row; the sum of squares in double, as on the CPU).
__global__ void RmsNormKernel(float* x, int dim, const float* w, float eps) {
  __shared__ double scratch[kThreads];
  float* row = x + static_cast<size_t>(blockIdx.x) * dim;
  double sum = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += static_cast<double>(row[i] * row[i]);
  sum = BlockSum(sum, scratch);
  const float mean = static_cast<float>(sum / dim);
  const float scale = 1.0f / sqrtf(mean + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) row[i] = (row[i] * scale) * w[i];
}

// Per column of x (n rows of n_in), the sum of squares over the rows in
// row order, added to `sums`: the importance statistics.
__global__ void SumSquaresKernel(const float* x, int64_t n, int n_in, float* sums) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n_in) return;
  float acc = sums[j];
  for (int64_t t = 0; t < n; ++t) {
    const float v = x[t * n_in + j];
    acc = __fadd_rn(acc, __fmul_rn(v, v));
  }
  sums[j] = acc;
}

__global__ void RoundHalfKernel(float* x, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = __half2float(__float2half_rn(x[i]));
}

__global__ void AddBiasKernel(float* y, const float* bias, size_t n, int n_out) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] += bias[i % n_out];
}

__global__ void AddKernel(float* x, const float* y, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

// gate = silu(gate) * up.
__global__ void SwigluKernel(float* gate, const float* up, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) gate[i] = (gate[i] / (1.0f + expf(-gate[i]))) * up[i];
}

// Rotary embedding: one thread per (token, head, pair); angles as the CPU
// computes them (theta multiplied by theta_scale pair after pair).
__global__ void RopeKernel(float* x, int64_t n, int n_heads, int head_dim, int n_rot, float theta_scale,
                           float freq_scale, const float* freqs, bool neox) {
  const int64_t id = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int half = n_rot / 2;
  if (id >= n * n_heads * half) return;
  const int i = static_cast<int>(id % half);
  const int64_t p = id / half / n_heads;
  const int64_t h = (id / half) % n_heads;
  float theta = static_cast<float>(p);
  for (int k = 0; k < i; ++k) theta *= theta_scale;
  const float ff = freqs != nullptr ? freqs[i] : 1.0f;
  const float angle = freq_scale * (theta / ff);
  const float c = cosf(angle), s = sinf(angle);
  float* v = x + (p * n_heads + h) * head_dim;
  const int a = neox ? i : 2 * i;
  const int b = neox ? i + half : 2 * i + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

// Causal attention for one (query token, head) per block: scaled scores
// against keys 0..i, softmax (sum in double), probabilities through F16,
// then their weighted sum of values. Scores live in shared memory.
__global__ void AttentionKernel(const float* q, const float* k, const float* v, float* out, int n_head, int n_kv, int d,
                                float scale) {
  extern __shared__ float scores[];
  __shared__ double dscratch[kThreads];
  __shared__ float fscratch[kThreads];
  const int i = blockIdx.x, h = blockIdx.y;
  const int kv = h / (n_head / n_kv);
  const float* qi = q + (static_cast<size_t>(i) * n_head + h) * d;
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) {
    const float* kj = k + (static_cast<size_t>(j) * n_kv + kv) * d;
    float dot = 0;
    for (int c = 0; c < d; ++c) dot += qi[c] * kj[c];
    scores[j] = dot * scale;
    local_max = fmaxf(local_max, scores[j]);
  }
  const float max = BlockMax(local_max, fscratch);
  double local_sum = 0;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) {
    scores[j] = expf(scores[j] - max);
    local_sum += scores[j];
  }
  const float inv = static_cast<float>(1.0 / BlockSum(local_sum, dscratch));
  for (int j = threadIdx.x; j <= i; j += blockDim.x) scores[j] = __half2float(__float2half_rn(scores[j] * inv));
  __syncthreads();
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float acc = 0;
    for (int j = 0; j <= i; ++j) acc += scores[j] * v[(static_cast<size_t>(j) * n_kv + kv) * d + c];
    out[(static_cast<size_t>(i) * n_head + h) * d + c] = acc;
  }
}

// -log p(next token) for positions [first, n - 1): one block each, as the
// CPU computes it (float maximum, double sum of exponentials).
__global__ void NllKernel(const float* logits, int n_vocab, const int32_t* tokens, int64_t first, double* nll) {
  __shared__ double dscratch[kThreads];
  __shared__ float fscratch[kThreads];
  const int64_t i = first + blockIdx.x;
  const float* row = logits + i * n_vocab;
  float local_max = -INFINITY;
  for (int c = threadIdx.x; c < n_vocab; c += blockDim.x) local_max = fmaxf(local_max, row[c]);
  const float max = BlockMax(local_max, fscratch);
  double local_sum = 0;
  for (int c = threadIdx.x; c < n_vocab; c += blockDim.x) local_sum += exp(static_cast<double>(row[c] - max));
  const double sum = BlockSum(local_sum, dscratch);
  if (threadIdx.x == 0) nll[blockIdx.x] = -(static_cast<double>(row[tokens[i + 1]] - max) - log(sum));
}

unsigned Blocks(size_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

// ------------------------------------------------------------ the model

struct GpuForward::Impl {
  struct Matrix {
    std::string name;
    int n_in = 0, n_out = 0;
    GgmlType type = GgmlType::kF32;
    void* w = nullptr;
    float* bias = nullptr;
  };
  struct Layer {
    float *attn_norm = nullptr, *ffn_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
    Matrix wq, wk, wv, wo, gate, up, down;
  };

  const LlamaModel* model = nullptr;
  int device = -1;
  int first = 0, end = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::vector<void*> owned;  // every device allocation
  uint64_t weight_bytes = 0;
  std::vector<Layer> layers;  // [first, end)
  float* output_norm = nullptr;
  Matrix output;
  float* rope_freqs = nullptr;
  // Scratch for one chunk, grown as needed.
  int64_t capacity = 0;
  float *x = nullptr, *cur = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *attn = nullptr, *gate = nullptr,
        *up = nullptr, *logits = nullptr;
  void* narrow = nullptr;  // activations as F16/BF16 for a product
  int32_t* tokens = nullptr;
  double* nll = nullptr;
  // Importance sums per entry, on the device; `used` marks the entries the
  // current chunk collected.
  struct Sums {
    float* p = nullptr;
    int n_in = 0;
    bool used = false;
  };
  std::map<std::string, Sums> sums;
  bool collect_output = false;

  ~Impl() {
    if (device >= 0) cudaSetDevice(device);
    for (void* p : owned) cudaFree(p);
    if (blas != nullptr) LoadCublas().destroy(blas);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }

  template <typename T>
  absl::Status Alloc(T** p, size_t count) {
    void* raw = nullptr;
    QF_CUDA(cudaMalloc(&raw, std::max<size_t>(count * sizeof(T), 1)), "allocate");
    owned.push_back(raw);
    *p = static_cast<T*>(raw);
    return absl::OkStatus();
  }

  absl::Status Upload(const std::vector<float>& host, float** p) {
    if (host.empty()) {
      *p = nullptr;
      return absl::OkStatus();
    }
    if (absl::Status s = Alloc(p, host.size()); !s.ok()) return s;
    QF_CUDA(cudaMemcpy(*p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "copy weights");
    return absl::OkStatus();
  }

  absl::Status UploadMatrix(const Linear& l, Matrix* m) {
    if (l.n_mat != 1) {
      return absl::UnimplementedError(absl::StrFormat("%s: mixtures of experts run on the CPU", l.name));
    }
    if (l.source_type != GgmlType::kF32 && l.source_type != GgmlType::kF16 && l.source_type != GgmlType::kBF16) {
      return absl::UnimplementedError(
          absl::StrFormat("%s is %s; the GPU path takes F32, F16 or BF16 weights", l.name, TypeName(l.source_type)));
    }
    m->name = l.name;
    m->n_in = l.n_in;
    m->n_out = l.n_out;
    m->type = l.source_type;
    const size_t bytes = RowSize(l.source_type, l.n_in) * static_cast<size_t>(l.n_out);
    uint8_t* w = nullptr;
    if (absl::Status s = Alloc(&w, bytes); !s.ok()) return s;
    QF_CUDA(cudaMemcpy(w, l.data, bytes, cudaMemcpyHostToDevice), "copy weights");
    m->w = w;
    weight_bytes += bytes;
    return Upload(l.bias, &m->bias);
  }

  absl::Status Reserve(int64_t n) {
    if (n <= capacity) return absl::OkStatus();
    const LlamaHparams& hp = model->hparams();
    const int64_t widest = std::max<int64_t>({hp.n_embd, hp.n_ff, int64_t{hp.n_head} * hp.head_dim});
    // Earlier, smaller buffers stay allocated until the model goes; chunks
    // of one run have one size.
    const int64_t row = std::max<int64_t>(hp.n_embd, int64_t{hp.n_head} * hp.head_dim);
    for (float** p : {&x, &cur, &attn}) QF_RETURN_IF_ERROR(Alloc(p, n * row));
    QF_RETURN_IF_ERROR(Alloc(&q, n * hp.n_head * hp.head_dim));
    QF_RETURN_IF_ERROR(Alloc(&k, n * hp.n_head_kv * hp.head_dim));
    QF_RETURN_IF_ERROR(Alloc(&v, n * hp.n_head_kv * hp.head_dim));
    QF_RETURN_IF_ERROR(Alloc(&gate, n * hp.n_ff));
    QF_RETURN_IF_ERROR(Alloc(&up, n * hp.n_ff));
    uint16_t* narrow16 = nullptr;
    QF_RETURN_IF_ERROR(Alloc(&narrow16, n * widest));
    narrow = narrow16;
    QF_RETURN_IF_ERROR(Alloc(&tokens, n));
    QF_RETURN_IF_ERROR(Alloc(&nll, n));
    if (end == hp.n_layer) QF_RETURN_IF_ERROR(Alloc(&logits, n * hp.n_vocab));
    capacity = n;
    return absl::OkStatus();
  }

  // The importance sums of `m` (zeroed at its first use in a chunk), or
  // null when its inputs are not collected.
  absl::StatusOr<float*> SumsFor(const Matrix& m) {
    if (!absl::StartsWith(m.name, "blk.") && !(collect_output && m.name == "output.weight")) return nullptr;
    Sums& s = sums[m.name];
    if (s.p == nullptr) {
      QF_RETURN_IF_ERROR(Alloc(&s.p, m.n_in));
      s.n_in = m.n_in;
    }
    if (!s.used) QF_CUDA(cudaMemsetAsync(s.p, 0, static_cast<size_t>(s.n_in) * sizeof(float), stream), "clear");
    s.used = true;
    return s.p;
  }

  // y (n x n_out) = x (n x n_in) W^T (+ b), collecting x's statistics first.
  absl::Status Product(const Matrix& m, const float* in, int64_t n, float* y, bool collect) {
    if (collect && n >= 16) {  // llama-imatrix skips batches under 16 tokens
      QF_ASSIGN_OR_RETURN(float* s, SumsFor(m));
      if (s != nullptr) SumSquaresKernel<<<Blocks(m.n_in), kThreads, 0, stream>>>(in, n, m.n_in, s);
    }
    // F16/BF16 weights take their inputs rounded to the same type (the
    // quantizer's conversion kernels), as llama.cpp's products do.
    const void* b = in;
    cudaDataType type = CUDA_R_32F;
    if (m.type == GgmlType::kF16 || m.type == GgmlType::kBF16) {
      const int64_t count = n * m.n_in;
      QF_CUDA(LaunchQuantize(static_cast<uint32_t>(m.type), in, narrow, count, m.n_in, nullptr, stream), "round");
      b = narrow;
      type = m.type == GgmlType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
    }
    const float one = 1.0f, zero = 0.0f;
    if (absl::Status s = FromCublas(LoadCublas().gemm_ex(blas, CUBLAS_OP_T, CUBLAS_OP_N, m.n_out, static_cast<int>(n),
                                                         m.n_in, &one, m.w, type, m.n_in, b, type, m.n_in, &zero, y,
                                                         CUDA_R_32F, m.n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                                    "product");
        !s.ok()) {
      return s;
    }
    if (m.bias != nullptr) {
      AddBiasKernel<<<Blocks(static_cast<size_t>(n) * m.n_out), kThreads, 0, stream>>>(
          y, m.bias, static_cast<size_t>(n) * m.n_out, m.n_out);
    }
    return FromCuda(cudaGetLastError(), "launch");
  }

  absl::Status RunLayer(const Layer& l, int64_t n) {
    const LlamaHparams& hp = model->hparams();
    const size_t xs = static_cast<size_t>(n) * hp.n_embd;
    const size_t qs = static_cast<size_t>(n) * hp.n_head * hp.head_dim;
    const size_t kvs = static_cast<size_t>(n) * hp.n_head_kv * hp.head_dim;
    const bool neox = hp.arch != "llama";
    const float theta_scale = powf(hp.rope_base, -2.0f / static_cast<float>(hp.n_rot));
    QF_CUDA(cudaMemcpyAsync(cur, x, xs * sizeof(float), cudaMemcpyDeviceToDevice, stream), "copy");
    RmsNormKernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(cur, hp.n_embd, l.attn_norm, hp.rms_eps);
    QF_RETURN_IF_ERROR(Product(l.wq, cur, n, q, true));
    QF_RETURN_IF_ERROR(Product(l.wk, cur, n, k, true));
    QF_RETURN_IF_ERROR(Product(l.wv, cur, n, v, true));
    if (l.q_norm != nullptr) {
      RmsNormKernel<<<static_cast<unsigned>(n * hp.n_head), kThreads, 0, stream>>>(q, hp.head_dim, l.q_norm,
                                                                                   hp.rms_eps);
      RmsNormKernel<<<static_cast<unsigned>(n * hp.n_head_kv), kThreads, 0, stream>>>(k, hp.head_dim, l.k_norm,
                                                                                      hp.rms_eps);
    }
    RopeKernel<<<Blocks(static_cast<size_t>(n) * hp.n_head * (hp.n_rot / 2)), kThreads, 0, stream>>>(
        q, n, hp.n_head, hp.head_dim, hp.n_rot, theta_scale, hp.rope_freq_scale, rope_freqs, neox);
    RopeKernel<<<Blocks(static_cast<size_t>(n) * hp.n_head_kv * (hp.n_rot / 2)), kThreads, 0, stream>>>(
        k, n, hp.n_head_kv, hp.head_dim, hp.n_rot, theta_scale, hp.rope_freq_scale, rope_freqs, neox);
    RoundHalfKernel<<<Blocks(qs), kThreads, 0, stream>>>(q, qs);  // the KV cache and K·Q are F16
    RoundHalfKernel<<<Blocks(kvs), kThreads, 0, stream>>>(k, kvs);
    RoundHalfKernel<<<Blocks(kvs), kThreads, 0, stream>>>(v, kvs);
    const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(hp.n_head));
    AttentionKernel<<<grid, 128, static_cast<size_t>(n) * sizeof(float), stream>>>(
        q, k, v, attn, hp.n_head, hp.n_head_kv, hp.head_dim, 1.0f / sqrtf(static_cast<float>(hp.head_dim)));
    QF_CUDA(cudaGetLastError(), "attention");
    QF_RETURN_IF_ERROR(Product(l.wo, attn, n, cur, true));
    AddKernel<<<Blocks(xs), kThreads, 0, stream>>>(x, cur, xs);
    QF_CUDA(cudaMemcpyAsync(cur, x, xs * sizeof(float), cudaMemcpyDeviceToDevice, stream), "copy");
    RmsNormKernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(cur, hp.n_embd, l.ffn_norm, hp.rms_eps);
    QF_RETURN_IF_ERROR(Product(l.gate, cur, n, gate, true));
    QF_RETURN_IF_ERROR(Product(l.up, cur, n, up, true));
    const size_t fs = static_cast<size_t>(n) * hp.n_ff;
    SwigluKernel<<<Blocks(fs), kThreads, 0, stream>>>(gate, up, fs);
    QF_RETURN_IF_ERROR(Product(l.down, gate, n, cur, true));
    AddKernel<<<Blocks(xs), kThreads, 0, stream>>>(x, cur, xs);
    return FromCuda(cudaGetLastError(), "layer");
  }
};

GpuForward::GpuForward(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuForward::~GpuForward() = default;

uint64_t GpuForward::weight_bytes() const { return impl_->weight_bytes; }

absl::StatusOr<std::unique_ptr<GpuForward>> GpuForward::Create(const LlamaModel& model, int device, int first_layer,
                                                               int end_layer) {
  const LlamaHparams& hp = model.hparams();
  if (hp.n_expert > 0) return absl::UnimplementedError("mixtures of experts calibrate on the CPU");
  if (first_layer < 0 || end_layer > hp.n_layer || first_layer >= end_layer) {
    return absl::InvalidArgumentError(
        absl::StrFormat("layers [%d, %d) are not a range of the model's %d", first_layer, end_layer, hp.n_layer));
  }
  const Cublas& cublas = LoadCublas();
  if (!cublas.error.empty()) return absl::FailedPreconditionError(cublas.error);
  auto impl = std::make_unique<Impl>();
  impl->model = &model;
  impl->device = device;
  impl->first = first_layer;
  impl->end = end_layer;
  QF_CUDA(cudaSetDevice(device), "select device");
  QF_CUDA(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), "create stream");
  if (absl::Status s = FromCublas(cublas.create(&impl->blas), "create"); !s.ok()) return s;
  if (absl::Status s = FromCublas(cublas.set_stream(impl->blas, impl->stream), "set stream"); !s.ok()) return s;
  for (int i = first_layer; i < end_layer; ++i) {
    const LlamaLayer& src = model.layers()[static_cast<size_t>(i)];
    Impl::Layer l;
    QF_RETURN_IF_ERROR(impl->Upload(src.attn_norm, &l.attn_norm));
    QF_RETURN_IF_ERROR(impl->Upload(src.ffn_norm, &l.ffn_norm));
    QF_RETURN_IF_ERROR(impl->Upload(src.q_norm, &l.q_norm));
    QF_RETURN_IF_ERROR(impl->Upload(src.k_norm, &l.k_norm));
    for (auto [from, to] :
         {std::pair{&src.wq, &l.wq}, std::pair{&src.wk, &l.wk}, std::pair{&src.wv, &l.wv}, std::pair{&src.wo, &l.wo},
          std::pair{&src.gate, &l.gate}, std::pair{&src.up, &l.up}, std::pair{&src.down, &l.down}}) {
      QF_RETURN_IF_ERROR(impl->UploadMatrix(*from, to));
    }
    impl->layers.push_back(l);
  }
  QF_RETURN_IF_ERROR(impl->Upload(model.rope_freqs(), &impl->rope_freqs));
  if (end_layer == hp.n_layer) {
    QF_RETURN_IF_ERROR(impl->Upload(model.output_norm(), &impl->output_norm));
    QF_RETURN_IF_ERROR(impl->UploadMatrix(model.output(), &impl->output));
  }
  return std::unique_ptr<GpuForward>(new GpuForward(std::move(impl)));
}

absl::StatusOr<ChunkStatistics> GpuForward::RunChunk(absl::Span<const TokenId> tokens, std::vector<float>* hidden,
                                                     bool process_output, bool perplexity) {
  Impl& m = *impl_;
  const LlamaHparams& hp = m.model->hparams();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const size_t xs = static_cast<size_t>(n) * hp.n_embd;
  QF_CUDA(cudaSetDevice(m.device), "select device");
  QF_RETURN_IF_ERROR(m.Reserve(n));
  m.collect_output = process_output;
  for (auto& [name, sums] : m.sums) sums.used = false;
  QF_RETURN_IF_ERROR(PrepareStageInput(*m.model, tokens, m.first, m.end, hidden));  // the embeddings, on the host
  std::vector<float>& x = *hidden;
  QF_CUDA(cudaMemcpyAsync(m.x, x.data(), xs * sizeof(float), cudaMemcpyHostToDevice, m.stream), "copy in");
  for (const Impl::Layer& l : m.layers) QF_RETURN_IF_ERROR(m.RunLayer(l, n));

  ChunkStatistics out(process_output);
  const bool last = m.end == hp.n_layer;
  const bool head = last && (perplexity || process_output);
  std::vector<double> nll;
  if (head) {
    RmsNormKernel<<<static_cast<unsigned>(n), kThreads, 0, m.stream>>>(m.x, hp.n_embd, m.output_norm, hp.rms_eps);
    QF_RETURN_IF_ERROR(m.Product(m.output, m.x, n, m.logits, true));
    if (perplexity && n >= 2) {
      QF_CUDA(cudaMemcpyAsync(m.tokens, tokens.data(), static_cast<size_t>(n) * sizeof(int32_t), cudaMemcpyHostToDevice,
                              m.stream),
              "copy tokens");
      const int64_t first = n / 2, count = n - 1 - first;
      if (count > 0) {
        NllKernel<<<static_cast<unsigned>(count), kThreads, 0, m.stream>>>(m.logits, hp.n_vocab, m.tokens, first,
                                                                           m.nll);
        nll.resize(static_cast<size_t>(count));
        QF_CUDA(cudaMemcpyAsync(nll.data(), m.nll, nll.size() * sizeof(double), cudaMemcpyDeviceToHost, m.stream),
                "copy out");
      }
    }
  } else if (!last) {
    QF_CUDA(cudaMemcpyAsync(x.data(), m.x, xs * sizeof(float), cudaMemcpyDeviceToHost, m.stream), "copy out");
  }
  // The statistics, as the CPU collector keeps them.
  std::map<std::string, ImatrixCollector::Entry> entries;
  for (const auto& [name, sums] : m.sums) {
    if (!sums.used) continue;
    ImatrixCollector::Entry e;
    e.sums.resize(static_cast<size_t>(sums.n_in));
    e.counts.assign(1, n);
    QF_CUDA(cudaMemcpyAsync(e.sums.data(), sums.p, e.sums.size() * sizeof(float), cudaMemcpyDeviceToHost, m.stream),
            "copy statistics");
    entries[name] = std::move(e);
  }
  QF_CUDA(cudaStreamSynchronize(m.stream), "run");
  out.imatrix.Restore(std::move(entries));
  for (double v : nll) {
    out.nll += v;
    out.nll2 += v * v;
    ++out.predictions;
  }
  return out;
}

}  // namespace quantfleet
