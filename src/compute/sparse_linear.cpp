// Sparse linear layer y = x W^T for a fixed random mask, with W stored as the
// compact values of its active entries (CSR order) and exact gradients:
//   forward  y^T[o, :] = sum_{j in row o} v[j] x^T[col[j], :]
//   dx       dx^T[k, :] = sum_{j in column k} v[j] g^T[row(j), :]   (CSC with a value permutation)
//   dv       dv[j]      = <g^T[row(j), :], x^T[col[j], :]>          (only active entries)
// Each active weight costs 3 x 2 x B flops, like its share of the dense product, and
// the inner loops run over the batch, contiguous in the transposed layout. Outputs
// are returned as transposed views, so a stack of these layers (with elementwise
// ops in between) never copies: x.t() of the previous output is already contiguous.
// Every sum has a fixed order, so results do not depend on the thread count.
// Built by build.rs (cc) against the libtorch headers; called from src/compute/mod.rs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SL_CLONES
#endif

constexpr int64_t W = 16;  // floats per vector
typedef float vf __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));

static inline __attribute__((always_inline)) vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline __attribute__((always_inline)) void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
static inline __attribute__((always_inline)) float hsum(vf a) {
  float s = 0.f;
  for (int c = 0; c < W; ++c) s += a[c];
  return s;
}

// One register block of NV vectors (NV * 16 batch columns) of output row r:
// out[r, b..] = sum_p v[perm ? perm[p] : p] * src[idx[p], b..].
template <int NV>
static inline __attribute__((always_inline)) void axpy_block(int64_t p0, int64_t p1, const int64_t* idx,
                                                             const int64_t* perm, const float* v, const float* src,
                                                             float* o, int64_t b, int64_t B) {
  vf a[NV] = {};
  for (int64_t p = p0; p < p1; ++p) {
    const float w = v[perm ? perm[p] : p];
    const float* s = src + idx[p] * B + b;
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) a[i] += w * load(s + i * W);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) store(o + b + i * W, a[i]);
}

// out[r, :] = sum_{p in ptr[r]..ptr[r+1]} v[perm ? perm[p] : p] * src[idx[p], :], rows r0..r1, B columns.
SL_CLONES
void gather_axpy(const int64_t* ptr, const int64_t* idx, const int64_t* perm, const float* v, const float* src,
                 float* out, int64_t r0, int64_t r1, int64_t B) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t p0 = ptr[r], p1 = ptr[r + 1];
    float* o = out + r * B;
    int64_t b = 0;
    for (; b + 8 * W <= B; b += 8 * W) axpy_block<8>(p0, p1, idx, perm, v, src, o, b, B);
    for (; b + 4 * W <= B; b += 4 * W) axpy_block<4>(p0, p1, idx, perm, v, src, o, b, B);
    for (; b + W <= B; b += W) axpy_block<1>(p0, p1, idx, perm, v, src, o, b, B);
    if (b < B) {
      const int64_t n = B - b;
      float a[W] = {};
      for (int64_t p = p0; p < p1; ++p) {
        const float w = v[perm ? perm[p] : p];
        const float* s = src + idx[p] * B + b;
        for (int64_t c = 0; c < n; ++c) a[c] += w * s[c];
      }
      std::memcpy(o + b, a, n * sizeof(float));
    }
  }
}

// dv[p] (+)= <g[r, b..], x[col[p], b..]> over one block of NV vectors held in registers.
template <int NV>
static inline __attribute__((always_inline)) void dots_block(int64_t p0, int64_t p1, const int64_t* col,
                                                             const float* gr, const float* x, float* dv, int64_t b,
                                                             int64_t B, bool first) {
  vf g[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) g[i] = load(gr + b + i * W);
  for (int64_t p = p0; p < p1; ++p) {
    const float* xr = x + col[p] * B + b;
    vf t0 = g[0] * load(xr), t1 = {};
#pragma GCC unroll 8
    for (int i = 1; i < NV; ++i) {
      if (i % 2) t1 += g[i] * load(xr + i * W);
      else t0 += g[i] * load(xr + i * W);
    }
    const float s = hsum(t0 + t1);
    dv[p] = first ? s : dv[p] + s;
  }
}

// dv[p] = <g[r, :], x[col[p], :]> for the entries p of rows r0..r1.
SL_CLONES
void sampled_dots(const int64_t* ptr, const int64_t* col, const float* g, const float* x, float* dv, int64_t r0,
                  int64_t r1, int64_t B) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t p0 = ptr[r], p1 = ptr[r + 1];
    const float* gr = g + r * B;
    int64_t b = 0;
    for (; b + 8 * W <= B; b += 8 * W) dots_block<8>(p0, p1, col, gr, x, dv, b, B, b == 0);
    for (; b + 4 * W <= B; b += 4 * W) dots_block<4>(p0, p1, col, gr, x, dv, b, B, b == 0);
    for (; b + W <= B; b += W) dots_block<1>(p0, p1, col, gr, x, dv, b, B, b == 0);
    if (b < B) {
      for (int64_t p = p0; p < p1; ++p) {
        const float* xr = x + col[p] * B;
        float s = 0.f;
        for (int64_t c = b; c < B; ++c) s += gr[c] * xr[c];
        dv[p] = b == 0 ? s : dv[p] + s;
      }
    }
  }
}

// Rows per task: about 512k multiply-adds (waking a pool thread costs more than
// smaller tasks save), so small layers stay on one thread.
int64_t grain(int64_t rows, int64_t nnz, int64_t B) {
  const int64_t per_row = std::max<int64_t>(1, nnz / std::max<int64_t>(rows, 1) * B);
  return std::max<int64_t>(1, 524288 / per_row);
}

at::Tensor spmm(const at::Tensor& ptr, const at::Tensor& idx, const at::Tensor* perm, const at::Tensor& v,
                const at::Tensor& src, int64_t rows) {
  const int64_t B = src.size(1);
  auto out = at::empty({rows, B}, src.options());
  const int64_t* pp = ptr.data_ptr<int64_t>();
  const int64_t* ip = idx.data_ptr<int64_t>();
  const int64_t* qp = perm ? perm->data_ptr<int64_t>() : nullptr;
  const float* vp = v.data_ptr<float>();
  const float* sp = src.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, grain(rows, idx.numel(), B),
                   [&](int64_t r0, int64_t r1) { gather_axpy(pp, ip, qp, vp, sp, op, r0, r1, B); });
  return out;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SparseLinearFn : public torch::autograd::Function<SparseLinearFn> {
  // x [B, in], values [nnz]; rowptr [out+1], col [nnz] (CSR); cscptr [in+1], cscrow [nnz], cscperm [nnz].
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& values, const at::Tensor& rowptr,
                            const at::Tensor& col, const at::Tensor& cscptr, const at::Tensor& cscrow,
                            const at::Tensor& cscperm) {
    TORCH_CHECK(x.dim() == 2, "sparse linear: input must be [batch, in], got ", x.sizes());
    TORCH_CHECK(x.scalar_type() == at::kFloat && values.scalar_type() == at::kFloat,
                "sparse linear: float32 only, got ", x.scalar_type());
    TORCH_CHECK(x.device().is_cpu(), "sparse linear: the compact kernel runs on the CPU");
    TORCH_CHECK(x.size(1) == cscptr.numel() - 1, "sparse linear: input has ", x.size(1), " features, layer expects ",
                cscptr.numel() - 1);
    auto xt = x.t().contiguous();
    auto v = values.contiguous();
    auto yt = spmm(rowptr, col, nullptr, v, xt, rowptr.numel() - 1);
    ctx->save_for_backward({xt, v, rowptr, col, cscptr, cscrow, cscperm});
    return yt.t();
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &xt = s[0], &v = s[1], &rowptr = s[2], &col = s[3], &cscptr = s[4], &cscrow = s[5], &cscperm = s[6];
    auto gt = grads[0].t().contiguous();  // [out, B]
    at::Tensor dx, dv;
    if (ctx->needs_input_grad(0)) dx = spmm(cscptr, cscrow, &cscperm, v, gt, cscptr.numel() - 1).t();
    if (ctx->needs_input_grad(1)) {
      dv = at::empty_like(v);
      const int64_t rows = rowptr.numel() - 1, B = gt.size(1);
      const int64_t* pp = rowptr.data_ptr<int64_t>();
      const int64_t* cp = col.data_ptr<int64_t>();
      const float* gp = gt.data_ptr<float>();
      const float* xp = xt.data_ptr<float>();
      float* dp = dv.data_ptr<float>();
      at::parallel_for(0, rows, grain(rows, col.numel(), B),
                       [&](int64_t r0, int64_t r1) { sampled_dots(pp, cp, gp, xp, dp, r0, r1, B); });
    }
    return {dx, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

char* error_string(const char* what) {
  std::string s(what);
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

}  // namespace

// Returns null and sets *out (a new tensor handle, owned by the caller), or returns
// an error message allocated with malloc (the caller frees it).
extern "C" char* sparselab_sparse_linear(at::Tensor** out, const at::Tensor* x, const at::Tensor* values,
                                        const at::Tensor* rowptr, const at::Tensor* col, const at::Tensor* cscptr,
                                        const at::Tensor* cscrow, const at::Tensor* cscperm) {
  try {
    *out = new at::Tensor(SparseLinearFn::apply(*x, *values, *rowptr, *col, *cscptr, *cscrow, *cscperm));
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}
