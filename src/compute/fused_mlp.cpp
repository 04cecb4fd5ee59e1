// Fused CPU training step for ReLU MLPs (BatchNorm in train mode, residual blocks and,
// for one member, dropout allowed), single or a batched ensemble of E members, with SGD or momentum (report
// eq. 2.16), Adam, AdamW, Adagrad or RMSProp (eq. 2.17, A.6) and coupled L2 (AdamW:
// also decoupled decay). One call does forward, cross-entropy, backward and the update
// with no autograd graph, no allocation after the first step, and two parallel phases:
//
//   A. per (member, chunk of 64 batch columns): forward through every layer, the
//      loss and its gradient, and the input-gradient chain down to layer 1; with
//      BatchNorm or a dense layer of 256 rows or more, layer by layer, such a dense
//      layer's products as pieces of at most 400 rows over the whole batch;
//   B. per (layer, member, block of 128 weight rows): the weight gradient over the
//      whole batch, fused into the update (momentum: v = mu v + lr dW in the same
//      gemm, then one pass for mask, L2 and w -= v; the adaptive rules: the gradient
//      into a per-thread buffer, then one pass for mask, L2, moments and w).
//
// Every task runs single-threaded BLAS on a fixed piece of the work, so the numbers
// depend neither on the thread count nor on how many members train together (a
// member of an ensemble computes exactly what it computes alone). Activations are
// feature-major ([member, features, batch]), the layout of the compact kernels.
// Dense layers call MKL's sgemm where the libtorch we run on exports it (x86-64 PyPI
// builds), else a portable gemm with the same fixed summation order (aarch64 and other
// builds without MKL, or the `portable-kernels` feature); compact layers run the
// kernels of kernels.h. Masked dense weights stay exactly 0.0: their velocity
// is masked after the gemm (it was 0 there, so mu v + lr dW masked equals the masked
// gradient's update) and plain SGD re-masks the weight.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "kernels.h"

#ifndef SPARSELAB_PORTABLE
// Weak: resolved where the libtorch we run on exports MKL, null elsewhere.
extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc) __attribute__((weak));
extern "C" int MKL_Set_Num_Threads_Local(int n) __attribute__((weak));  // MKL's C interface
#endif

namespace {
using namespace sparselab;

// Whether the dense products run on MKL (both symbols found), else portable_gemm.
bool have_mkl() {
#ifdef SPARSELAB_PORTABLE
  return false;
#else
  static const bool ok = &sgemm_ != nullptr && &MKL_Set_Num_Threads_Local != nullptr;
  return ok;
#endif
}

// Row-major C[M, N] = alpha op(A) op(B) + beta C without BLAS: the three shapes the step
// uses, each with one fixed summation order (k ascending, or eight interleaved partial
// sums reduced in a fixed tree), so it keeps the step's independence of thread counts.
// op(B) = B: rows of C are sums of rows of B (axpy over contiguous columns);
// op(B) = B^T: entries of C are dot products of rows of A and B.
SL_CLONES
static void portable_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!tb) {
    for (int64_t i = 0; i < M; ++i) {
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) c[j] = beta == 0.f ? 0.f : beta * c[j];
      for (int64_t k = 0; k < K; ++k) {
        const float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
        const float* b = B + k * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    }
    return;
  }
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      const float* a = ta ? nullptr : A + i * lda;
      const float* b = B + j * ldb;
      float acc[V] = {};  // eight interleaved partial sums (plain floats: one loop the compiler vectorises)
      int64_t k = 0;
      if (a) {
        for (; k + V <= K; k += V)
          for (int c = 0; c < V; ++c) acc[c] += a[k + c] * b[k + c];
      }
      float sum = 0.f;
      for (int c = 0; c < V; ++c) sum += acc[c];
      for (; k < K; ++k) sum += (ta ? A[k * lda + i] : a[k]) * b[k];
      c[j] = alpha * sum + (beta == 0.f ? 0.f : beta * c[j]);
    }
  }
}

// Row-major C[M, N] = alpha op(A) op(B) + beta C (column-major BLAS on the transposes).
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#ifndef SPARSELAB_PORTABLE
  if (have_mkl()) {
    const char a = ta ? 'T' : 'N', b = tb ? 'T' : 'N';
    const int m = int(M), n = int(N), k = int(K), la = int(lda), lb = int(ldb), lc = int(ldc);
    sgemm_(&b, &a, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
    return;
  }
#endif
  portable_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// BLAS on this thread only while a task runs (inside a parallel region MKL already
// uses one thread; this also covers a region that runs inline).
struct OneThread {
  int prev = 0;
  OneThread() {
#ifndef SPARSELAB_PORTABLE
    if (have_mkl()) prev = MKL_Set_Num_Threads_Local(1);
#endif
  }
  ~OneThread() {
#ifndef SPARSELAB_PORTABLE
    if (have_mkl()) MKL_Set_Num_Threads_Local(prev);
#endif
  }
};

constexpr int64_t COLS = 64;  // batch columns per phase-A task
constexpr int64_t BN_ROWS = 32;  // rows per BatchNorm task (each over the whole batch)
constexpr int64_t ROWS = 128;  // weight rows per phase-B task (64: ~5% slower, more packing of the batch operand)
// A layer of fewer than ROWS rows but at least SPLIT_WEIGHTS weights (the 784-input
// layer of a narrow network) takes two phase-B tasks, not one: at width 79 that layer
// is three quarters of the step's weight-gradient work, and as one task it left the
// other thread idle (benches/NOTES.md item 18). A rule of the shape, like ROWS, so the
// bits do not depend on the thread count (a compact layer's bits do not depend on its
// tasks at all; a dense layer's do, through MKL's sums).
constexpr int64_t SPLIT_WEIGHTS = 32768;

// Phase B's row ranges of a layer with `rows` rows of `in` inputs.
inline std::vector<std::pair<int64_t, int64_t>> update_rows(int64_t rows, int64_t in) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (rows < ROWS && rows >= 2 && rows * in >= SPLIT_WEIGHTS) {
    const int64_t half = (rows + 1) / 2;
    out.push_back({0, half});
    out.push_back({half, rows});
    return out;
  }
  for (int64_t r = 0; r < rows; r += ROWS) out.push_back({r, std::min(r + ROWS, rows)});
  return out;
}

// A dense product with at least SPLIT_ROWS output rows runs in phase A as row pieces
// over the whole batch, not as 64-column pieces: an even number of pieces of at most
// SPLIT_PIECE rows (two up to 800 rows). Each piece packs only its rows of the weight,
// once per step, and MKL runs 128-column products; packing the weight for every
// 64-column piece cost 18% of a width-788 epoch. Measured (benches/NOTES.md item 14):
// epochs 10-19% faster at widths 394-788, no gain at 236 (so not split); pieces of at
// most 100 or 200 rows were slower than 400 at width 788.
constexpr int64_t SPLIT_ROWS = 256;
constexpr int64_t SPLIT_PIECE = 400;
// Input rows per task of a compact layer's one-pass backward (over the whole batch;
// each row's results do not depend on the split).
constexpr int64_t ONE_PASS_ROWS = 64;

// Whether a dense product with `rows` output rows runs as row pieces.
inline bool split_rows(bool compact, int64_t rows) { return !compact && rows >= SPLIT_ROWS; }

// The adaptive rules over k parameters (one clone per x86-64 level): g += l2 w, then
// Adam (bias corrections as factors ica = 1 / (1 - b1^t), icb; AdamW's decay factor dec
// applied to the old weight) ... Both loops vectorize only because the kernels build
// with -fno-math-errno (build.rs): with errno, GCC keeps std::sqrt scalar, and these
// rules took 18% of an Adam grid cell at 2.5-2.9 ns per weight, against 0.3-0.6 ns
// vectorized (benches/NOTES.md item 20). The multiply-adds are written out as std::fma
// where GCC's contraction put them in the scalar loops, so every clone, the vector body
// and its scalar tail, and clang's baseline build (where std::fma is a libm call) round
// alike, and alike with the records of earlier versions built with FMA.
SL_CLONES
static void adam_rule(float* w, const float* g, float* s1, float* s2, int64_t k, float lr, float l2, float b1, float ob1,
                      float b2, float ob2, float ica, float icb, float eps, float dec) {
  for (int64_t i = 0; i < k; ++i) {
    const float gi = std::fma(l2, w[i], g[i]);
    const float m = std::fma(b1, s1[i], gi * ob1), v = std::fma(b2, s2[i], gi * gi * ob2);
    s1[i] = m;
    s2[i] = v;
    w[i] = std::fma(-(m * ica / (std::sqrt(v * icb) + eps)), lr, w[i] * dec);
  }
}

// ... or Adagrad (decay 1, gain 1: v += g^2) and RMSProp (v = alpha v + (1 - alpha) g^2):
// w -= lr g / sqrt(v + eps).
SL_CLONES
static void rms_rule(float* w, const float* g, float* s1, int64_t k, float lr, float l2, float decay, float gain, float eps) {
  for (int64_t i = 0; i < k; ++i) {
    const float gi = std::fma(l2, w[i], g[i]), v = std::fma(decay, s1[i], gi * gi * gain);
    s1[i] = v;
    w[i] = std::fma(-(gi / std::sqrt(v + eps)), lr, w[i]);
  }
}

// Momentum's pass after the gemm left v = mu v + lr dW: v masked (mk, or none), plus
// coupled L2 (c = lr l2, or 0), then w -= v.
SL_CLONES
static void momentum_rule(float* w, float* v, const float* mk, int64_t k, float c) {
  // One pass, the branches outside the loops.
  if (mk && c != 0.f) {
    for (int64_t i = 0; i < k; ++i) {
      const float vi = v[i] * mk[i] + c * w[i];
      v[i] = vi;
      w[i] -= vi;
    }
  } else if (mk) {
    for (int64_t i = 0; i < k; ++i) {
      const float vi = v[i] * mk[i];
      v[i] = vi;
      w[i] -= vi;
    }
  } else if (c != 0.f) {
    for (int64_t i = 0; i < k; ++i) {
      const float vi = v[i] + c * w[i];
      v[i] = vi;
      w[i] -= vi;
    }
  } else {
    for (int64_t i = 0; i < k; ++i) w[i] -= v[i];
  }
}

// A forward piece's epilogue over `rows` rows of n columns (stride ld): + bias (b, or
// 0), + the residual (res, stride ld, or none), ReLU (NaN passes, as torch.relu), then
// times dropout's keep-mask (keep, stride kld, or none); one pass each, in that order,
// so every entry is rounded as in ((z + b) + res), relu, * keep.
SL_CLONES
static void epilogue(float* out, int64_t rows, int64_t n, int64_t ld, const float* b, const float* res, bool relu,
                     const float* keep, int64_t kld) {
  for (int64_t r = 0; r < rows; ++r) {
    float* z = out + r * ld;
    const float br = b ? b[r] : 0.f;
    for (int64_t j = 0; j < n; ++j) z[j] = z[j] + br;
    if (res) {
      const float* rr = res + r * ld;
      for (int64_t j = 0; j < n; ++j) z[j] += rr[j];
    }
    if (relu)
      for (int64_t j = 0; j < n; ++j) z[j] = z[j] < 0.f ? 0.f : z[j];
    if (keep) {
      const float* kr = keep + r * kld;
      for (int64_t j = 0; j < n; ++j) z[j] *= kr[j];
    }
  }
}

// The update rule (train::OptimizerKind; sgd and momentum are both SGD, mu says which).
enum Rule : int64_t { SGD = 0, ADAM = 1, ADAMW = 2, ADAGRAD = 3, RMSPROP = 4 };

struct Layer {
  int64_t in = 0, out = 0;  // per member
  bool compact = false;
  bool residual = false;  // a residual block ends here: layer l - 2's output joins the pre-activation
  at::Tensor w;     // dense [E, out, in]; compact: values [nnz] (members one after another, CSR order)
  at::Tensor mask;  // dense masked layers: [E, out, in]
  at::Tensor bias;  // [E, out]
  at::Tensor vel, bvel;  // first state: velocity (SGD), first moment (Adam), accumulator (Adagrad, RMSProp)
  at::Tensor s2, bs2;    // second state: Adam's second moment
  bool bn = false;       // BatchNorm after the product (hidden layers), then residual and ReLU
  at::Tensor gamma, beta, rmean, rvar;  // [E * out], updated in place
  at::Tensor gs1, gs2, bes1, bes2;      // optimizer state of gamma and beta (as vel, s2)
  at::Tensor rstd, dgamma, dbeta;       // per step: 1 / sqrt(var + eps), the gradients of gamma and beta
  at::Tensor fptr, fsrc, fperm, bptr, bsrc, bperm, rowptr;  // compact plan (see CsrPlan)
  at::Tensor vf, vb, grad;  // values in forward / input-gradient panel order; weight gradient
  at::Tensor finv, binv;    // CSR index -> forward / input-gradient panel position
  int64_t members = 1;
  int64_t wn = 0;  // weight entries: members * out * in, or the compact values
  // What the step reads without looking, checked at construction and on every step
  // (O(1); a tensor resized in place since construction is caught here).
  void check(int64_t l) const {
    auto ok = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.is_contiguous() && t.device().is_cpu(); };
    TORCH_CHECK(ok(w), "fused step: layer ", l, " weight must be a contiguous float32 CPU tensor");
    if (compact) {
      TORCH_CHECK(w.numel() == wn, "fused step: layer ", l, " values have ", w.numel(), " entries, its plan ", wn);
    } else {
      TORCH_CHECK(w.numel() == wn, "fused step: layer ", l, " weight has ", w.numel(), " entries, expected ", members, " x ",
                  out, " x ", in);
    }
    if (mask.defined()) {
      TORCH_CHECK(ok(mask), "fused step: layer ", l, " mask must be a contiguous float32 CPU tensor");
      TORCH_CHECK(mask.numel() == wn, "fused step: layer ", l, " mask has ", mask.numel(), " entries, expected ", wn);
    }
    if (bias.defined()) {
      TORCH_CHECK(ok(bias), "fused step: layer ", l, " bias must be a contiguous float32 CPU tensor");
      TORCH_CHECK(bias.numel() == members * out, "fused step: layer ", l, " bias has ", bias.numel(), " entries, expected ",
                  members, " x ", out);
    }
    if (bn)
      for (const at::Tensor* t : {&gamma, &beta, &rmean, &rvar})
        TORCH_CHECK(ok(*t) && t->numel() == members * out, "fused step: layer ", l,
                    " BatchNorm tensors must be contiguous float32 CPU tensors of ", members, " x ", out, " entries");
  }
  Panels panels(const at::Tensor& ptr, const at::Tensor& src, int64_t rows) const {
    return Panels::of(ptr.data_ptr<int64_t>(), ptr.numel(), src.data_ptr<int32_t>(), rows, members);
  }
  Panels fwd() const { return panels(fptr, fsrc, out); }
  Panels bwd() const { return panels(bptr, bsrc, in); }
};

// The row loops of BatchNorm and of the input gradient are free functions with one
// clone per x86-64 level: as members of the step they compiled for baseline SSE2
// (benches/NOTES.md item 22). SL_EXACT builds a function without contracting a
// multiply and an add into one fused multiply-add, so every clone rounds as the
// baseline code, which has no FMA.
#if defined(__GNUC__) && !defined(__clang__)
#define SL_EXACT __attribute__((optimize("fp-contract=off")))
#else
#define SL_EXACT  // clang contracts only within an expression, and its baseline build has no FMA
#endif

// BatchNorm's per-row sums (batch mean and variance; the backward's sum dy and
// sum dy x-hat) are in double, over the batch columns as 8 partial sums (lane c adds
// columns c, c + 8, ... in order), reduced in a fixed tree, then the columns past the
// last multiple of 8 in order; BN_GROUP rows at a time, independent chains. Fixed by
// the batch size alone, so the bits depend neither on the thread count nor on the
// clone. Until 2026-12-04 each row was one chain in order of j, 8 rows at a time
// (benches/NOTES.md items 21-22).
constexpr int BN_GROUP = 8;
typedef double vd __attribute__((vector_size(64)));
SL_INLINE vd to_double(vf a) { return __builtin_convertvector(a, vd); }
SL_INLINE double lane_tree(vd a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

// The batch mean and biased variance of the N rows z[0..N) over n columns.
template <int N>
SL_EXACT SL_INLINE void bn_moments(float* const* z, int64_t n, float* mean, float* var) {
  const int64_t n8 = n / V * V;
  vd s[N] = {}, q[N] = {};
  for (int64_t j = 0; j < n8; j += V)
    for (int k = 0; k < N; ++k) s[k] += to_double(load(z[k] + j));
  for (int k = 0; k < N; ++k) {
    double t = lane_tree(s[k]);
    for (int64_t j = n8; j < n; ++j) t += z[k][j];
    mean[k] = float(t / double(n));
  }
  vf m[N];
  for (int k = 0; k < N; ++k)
    for (int c = 0; c < V; ++c) m[k][c] = mean[k];
  for (int64_t j = 0; j < n8; j += V)
    for (int k = 0; k < N; ++k) {
      const vd d = to_double(load(z[k] + j) - m[k]);
      q[k] += d * d;
    }
  for (int k = 0; k < N; ++k) {
    double t = lane_tree(q[k]);
    for (int64_t j = n8; j < n; ++j) t += double(z[k][j] - mean[k]) * double(z[k][j] - mean[k]);
    var[k] = float(t / double(n));
  }
}

// The backward's sums over n columns for the N rows dy[0..N), xh[0..N): sb = sum dy,
// sg = sum dy x-hat.
template <int N>
SL_EXACT SL_INLINE void bn_grad_sums(const float* const* dy, const float* const* xh, int64_t n, double* sb, double* sg) {
  const int64_t n8 = n / V * V;
  vd b[N] = {}, c[N] = {};
  for (int64_t j = 0; j < n8; j += V)
    for (int k = 0; k < N; ++k) {
      const vd d = to_double(load(dy[k] + j));
      b[k] += d;
      c[k] += d * to_double(load(xh[k] + j));
    }
  for (int k = 0; k < N; ++k) {
    double tb = lane_tree(b[k]), tc = lane_tree(c[k]);
    for (int64_t j = n8; j < n; ++j) {
      tb += dy[k][j];
      tc += double(dy[k][j]) * double(xh[k][j]);
    }
    sb[k] = tb, sg[k] = tc;
  }
}

// BatchNorm forward (train mode) of rows r0..r1 of one member over the B batch columns
// (stride ld): zb's rows (the product and bias) become x-hat, ob's the ReLU of
// gamma x-hat + beta (+ the residual resb, or none; times dropout's keep-mask, stride
// B, or none); rs gets 1 / sqrt(var + 1e-5), and the running mean and variance rm, rv
// move by 0.1 towards the batch's (the variance unbiased), as libtorch.
SL_CLONES SL_EXACT static void bn_forward_rows(float* zb, float* ob, int64_t ld, int64_t B, int64_t r0, int64_t r1, const float* g,
                                               const float* bt, float* rm, float* rv, float* rs, const float* resb,
                                               const float* keep) {
  for (int64_t r = r0; r < r1;) {
    const int nr = r1 - r >= BN_GROUP ? BN_GROUP : 1;
    float* zr[BN_GROUP];
    float mean[BN_GROUP], var[BN_GROUP];
    for (int k = 0; k < nr; ++k) zr[k] = zb + (r + k) * ld;
    if (nr == BN_GROUP)
      bn_moments<BN_GROUP>(zr, B, mean, var);
    else
      bn_moments<1>(zr, B, mean, var);
    for (int k = 0; k < nr; ++k, ++r) {
      float *z = zr[k], *o = ob + r * ld;
      const float inv = 1.f / std::sqrt(var[k] + 1e-5f), m = mean[k], gr = g[r], br = bt[r];
      rs[r] = inv;
      const float* res = resb ? resb + r * ld : nullptr;
      const float* kr = keep ? keep + r * B : nullptr;
      // The branches outside the loops, so each one vectorizes.
      if (res && kr) {
        for (int64_t j = 0; j < B; ++j) {
          const float xh = (z[j] - m) * inv, v = xh * gr + br + res[j];
          z[j] = xh;
          o[j] = (v < 0.f ? 0.f : v) * kr[j];  // hidden layers only: ReLU (NaN passes)
        }
      } else if (res) {
        for (int64_t j = 0; j < B; ++j) {
          const float xh = (z[j] - m) * inv, v = xh * gr + br + res[j];
          z[j] = xh;
          o[j] = v < 0.f ? 0.f : v;
        }
      } else if (kr) {
        for (int64_t j = 0; j < B; ++j) {
          const float xh = (z[j] - m) * inv, v = xh * gr + br;
          z[j] = xh;
          o[j] = (v < 0.f ? 0.f : v) * kr[j];
        }
      } else {
        for (int64_t j = 0; j < B; ++j) {
          const float xh = (z[j] - m) * inv, v = xh * gr + br;
          z[j] = xh;
          o[j] = v < 0.f ? 0.f : v;
        }
      }
      const float unbiased = B > 1 ? float(double(B) / double(B - 1)) : 1.f;
      rm[r] = rm[r] * 0.9f + mean[k] * 0.1f;
      rv[r] = rv[r] * 0.9f + var[k] * unbiased * 0.1f;
    }
  }
}

// BatchNorm backward of rows r0..r1 of one member: from dy (the gradient of the
// normalised, shifted output) and x-hat, the gradients of gamma (dg) and beta (db) and
// of the norm's input (dx): gamma rstd / B (B dy - sum dy - x-hat sum dy x-hat).
SL_CLONES SL_EXACT static void bn_backward_rows(const float* dyb, const float* xhb, float* dxb, int64_t ld, int64_t B, int64_t r0,
                                                int64_t r1, const float* g, const float* rs, float* dg, float* db) {
  for (int64_t r = r0; r < r1;) {
    const int nr = r1 - r >= BN_GROUP ? BN_GROUP : 1;
    const float *dy[BN_GROUP], *xh[BN_GROUP];
    double sb[BN_GROUP], sg[BN_GROUP];
    for (int k = 0; k < nr; ++k) dy[k] = dyb + (r + k) * ld, xh[k] = xhb + (r + k) * ld;
    if (nr == BN_GROUP)
      bn_grad_sums<BN_GROUP>(dy, xh, B, sb, sg);
    else
      bn_grad_sums<1>(dy, xh, B, sb, sg);
    for (int k = 0; k < nr; ++k, ++r) {
      float* dx = dxb + r * ld;
      dg[r] = float(sg[k]);
      db[r] = float(sb[k]);
      const float c = g[r] * rs[r] / float(B), fb = float(sb[k]), fg = float(sg[k]), fB = float(B);
      for (int64_t j = 0; j < B; ++j) dx[j] = c * (fB * dy[k][j] - fb - xh[k][j] * fg);
    }
  }
}

// The tail of an input-gradient piece over `rows` rows of n columns (stride ld): + the
// gradient of a residual block's sum (gr, or none), then through the ReLU of the
// layer below (0 where its output act is not positive; NaN passes, as in autograd)
// and dropout's keep-mask (keep, stride kld, or none: the gradient times the mask).
SL_CLONES static void grad_tail(float* dst, int64_t rows, int64_t n, int64_t ld, const float* gr, const float* act,
                                const float* keep, int64_t kld) {
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dst + r * ld;
    const float* a = act + r * ld;
    if (gr) {
      const float* q = gr + r * ld;
      for (int64_t j = 0; j < n; ++j) d[j] += q[j];
    }
    if (keep) {
      const float* kr = keep + r * kld;
      for (int64_t j = 0; j < n; ++j) d[j] = a[j] <= 0.f ? 0.f : d[j] * kr[j];
    } else {
      for (int64_t j = 0; j < n; ++j) d[j] = a[j] <= 0.f ? 0.f : d[j];
    }
  }
}

// g *= mask over k entries (a dense masked layer's gradient before an adaptive rule, or
// plain SGD's weight after its update).
SL_CLONES static void mask_mul(float* g, const float* mk, int64_t k) {
  for (int64_t i = 0; i < k; ++i) g[i] *= mk[i];
}

struct Task {
  int64_t layer, member, r0, r1;
};

// dst[r * ld + j] = src[j * s2 + r] for features r < in and batch columns j < n: a
// batch-major minibatch into the feature-major input, in 8 x 8 blocks transposed in
// registers (the edges one by one). A copy, so exact. The loop of one float at a time
// took 4x as long for a 784 x 128 batch in cache (65 against 16 us), 2-3x from a cold
// source, and was 8% of a width-79 step (benches/NOTES.md item 19).
SL_CLONES
static void transpose_in(float* dst, const float* src, int64_t in, int64_t n, int64_t ld, int64_t s2) {
  int64_t j = 0;
  for (; j + V <= n; j += V) {
    int64_t r = 0;
    for (; r + V <= in; r += V) {
      vf a[V];
      for (int k = 0; k < V; ++k) a[k] = load(src + (j + k) * s2 + r);
      // Rows k, columns r .. r + 8 -> rows r .. r + 8, columns k: pairs, quads, halves.
      vf t[V], u[V];
      for (int k = 0; k < V; k += 2) {
        t[k] = SL_SHUFFLE(a[k], a[k + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[k + 1] = SL_SHUFFLE(a[k], a[k + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (int k = 0; k < V; k += 4)
        for (int h = 0; h < 2; ++h) {
          u[k + 2 * h] = SL_SHUFFLE(t[k + h], t[k + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
          u[k + 2 * h + 1] = SL_SHUFFLE(t[k + h], t[k + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
      for (int k = 0; k < 4; ++k) {
        store(dst + (r + k) * ld + j, SL_SHUFFLE(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11));
        store(dst + (r + k + 4) * ld + j, SL_SHUFFLE(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15));
      }
    }
    for (; r < in; ++r)
      for (int64_t k = 0; k < V; ++k) dst[r * ld + j + k] = src[(j + k) * s2 + r];
  }
  for (; j < n; ++j)
    for (int64_t r = 0; r < in; ++r) dst[r * ld + j] = src[j * s2 + r];
}

// Runs f(i) for i in 0..n on the libtorch threads, each thread taking the next
// undone index (tasks differ in cost; which thread runs a task never changes its
// numbers), with BLAS single-threaded inside.
template <class F>
void dynamic_for(int64_t n, F f) {
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    OneThread one;
    for (int64_t i; (i = next.fetch_add(1)) < n;) f(i);
  };
#ifdef _OPENMP
  at::parallel_for(0, std::min<int64_t>(n, at::get_num_threads()), 1, [&](int64_t, int64_t) { work(); });
#else
  // Built without OpenMP (clang: libtorch's OpenMP is GNU's, which clang cannot target),
  // where at::parallel_for runs inline: plain threads instead.
  const int64_t helpers = std::min<int64_t>(n, at::get_num_threads()) - 1;
  std::vector<std::thread> pool;
  for (int64_t i = 0; i < helpers; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
#endif
}

struct FusedMlp {
  int64_t E = 1;
  float mu = 0, l2 = 0;
  Rule rule = SGD;
  float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, alpha = 0.99f, wd = 0;
  float ob1 = 0.1f, ob2 = 0.001f, oalpha = 0.01f;  // 1 - b1, 1 - b2, 1 - alpha (from the doubles, as the optimizer)
  int64_t t = 0;  // steps taken (Adam's bias corrections)
  double c1 = 1, c2 = 1;  // this step's 1 - beta^t
  std::vector<Layer> layers;
  int64_t B = -1;                     // batch size the buffers are laid out for
  int64_t ld = 0;                     // their row stride (B padded, see layout)
  at::Tensor x0;                      // the input [E, in, ld] (flat, at least that long)
  std::vector<at::Tensor> h, dz;      // per layer: output [E, out, ld] and its gradient (likewise)
  std::vector<at::Tensor> zh, dzn;    // BatchNorm layers: x-hat and the gradient of the norm's input
  bool layerwise = false;             // phase A layer by layer (BatchNorm, or a dense layer split by rows)
  bool compact_hidden = false;        // a hidden or output layer (l >= 1) is compact
  bool one_pass = false;              // this step: compact layers l >= 1 run backward_rows (phase A computes their
                                      // weight gradients too)
  std::vector<const float*> drop;     // per layer, this step: dropout's scaled keep-mask [out, B] after its ReLU, or null
  std::vector<Task> tasks;            // phase B
  std::vector<double> loss;           // per phase-A task
  std::vector<int64_t> correct;

  // Buffers for batch size b; they only grow, so an epoch's short last batch and the
  // next epoch's full ones reuse them.
  void layout(int64_t b) {
    if (b == B) return;
    B = b;
    // Rows 32-byte aligned, and never a multiple of 256 bytes apart: a 64-row panel of a
    // power-of-two stride maps onto a few L1 sets and evicts itself.
    ld = (B + 7) / 8 * 8;
    if (ld % 64 == 0) ld += 8;
    auto fit = [&](at::Tensor& t, int64_t rows) {
      if (!t.defined() || t.numel() < E * rows * ld) t = at::empty({E * rows * ld}, at::kFloat);
    };
    fit(x0, layers[0].in);
    h.resize(layers.size());
    dz.resize(layers.size());
    zh.resize(layers.size());
    dzn.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      fit(h[l], layers[l].out);
      fit(dz[l], layers[l].out);
      if (layers[l].bn) {
        fit(zh[l], layers[l].out);
        fit(dzn[l], layers[l].out);
      }
    }
    const int64_t chunks = (B + COLS - 1) / COLS;
    loss.assign(E * chunks, 0.0);
    correct.assign(E * chunks, 0);
    if (tasks.empty())
      for (int64_t l = 0; l < int64_t(layers.size()); ++l)
        for (int64_t e = 0; e < E; ++e)
          for (auto [r0, r1] : update_rows(layers[l].out, layers[l].in)) tasks.push_back({l, e, r0, r1});
  }

  // The gradient of layer l's product output (what its weight gradient and input
  // gradient read): dz, or for a BatchNorm layer the gradient through the norm.
  const at::Tensor& gz(int64_t l) const { return layers[l].bn ? dzn[l] : dz[l]; }

  // Layer l's forward for member e, output rows r0..r1, batch columns c0 .. c0 + n: the
  // product, then the bias, residual and ReLU (a BatchNorm layer: the product and bias
  // into zh, the norm follows over the whole batch in bn_forward).
  void forward_piece(int64_t l, int64_t e, int64_t r0, int64_t r1, int64_t c0, int64_t n) {
    const int64_t L = layers.size();
    const Layer& ly = layers[l];
    const float* in = (l == 0 ? x0 : h[l - 1]).data_ptr<float>() + c0;  // [E * in, ld] from column c0
    float* base = (ly.bn ? zh[l] : h[l]).data_ptr<float>() + e * ly.out * ld + c0;
    if (ly.compact) {
      spmm_block(ly.fwd().block(e), ly.vf.data_ptr<float>(), in, base, r0, r1, n, ld);
    } else {
      gemm(false, false, r1 - r0, n, ly.in, 1.f, ly.w.data_ptr<float>() + (e * ly.out + r0) * ly.in, ly.in, in + e * ly.in * ld,
           ld, 0.f, base + r0 * ld, ld);
    }
    const float* b = ly.bias.defined() ? ly.bias.data_ptr<float>() + e * ly.out + r0 : nullptr;
    const float* res = ly.residual && !ly.bn ? h[l - 2].data_ptr<float>() + (e * ly.out + r0) * ld + c0 : nullptr;
    const bool relu = l + 1 < L && !ly.bn;
    // Dropout after the activation, as autograd: relu(v) * mask.
    const float* keep = !ly.bn && drop[l] ? drop[l] + r0 * B + c0 : nullptr;
    if (b || relu || res) epilogue(base + r0 * ld, r1 - r0, n, ld, b, res, relu, keep, B);
  }

  // BatchNorm of layer l, member e, rows r0..r1, over the whole batch (train mode:
  // batch mean and biased variance, eps 1e-5; running statistics with momentum 0.1 and
  // the unbiased variance, as libtorch): zh becomes x-hat, h the ReLU of
  // gamma x-hat + beta (+ the residual).
  void bn_forward(int64_t l, int64_t e, int64_t r0, int64_t r1) {
    const Layer& ly = layers[l];
    const int64_t o = e * ly.out;
    bn_forward_rows(zh[l].data_ptr<float>() + o * ld, h[l].data_ptr<float>() + o * ld, ld, B, r0, r1, ly.gamma.data_ptr<float>() + o,
                    ly.beta.data_ptr<float>() + o, ly.rmean.data_ptr<float>() + o, ly.rvar.data_ptr<float>() + o,
                    ly.rstd.data_ptr<float>() + o, ly.residual ? h[l - 2].data_ptr<float>() + o * ld : nullptr, drop[l]);
  }

  // The backward of layer l's BatchNorm, member e, rows r0..r1: from dy (dz, the
  // gradient of its normalised, shifted output) the gradients of gamma, beta and of
  // the norm's input (into dzn): gamma rstd / B (B dy - sum dy - x-hat sum dy x-hat).
  void bn_backward(int64_t l, int64_t e, int64_t r0, int64_t r1) {
    const Layer& ly = layers[l];
    const int64_t o = e * ly.out;
    bn_backward_rows(dz[l].data_ptr<float>() + o * ld, zh[l].data_ptr<float>() + o * ld, dzn[l].data_ptr<float>() + o * ld, ld, B,
                     r0, r1, ly.gamma.data_ptr<float>() + o, ly.rstd.data_ptr<float>() + o, ly.dgamma.data_ptr<float>() + o,
                     ly.dbeta.data_ptr<float>() + o);
  }

  // Mean cross-entropy over the whole batch for member e, columns c0 .. c0 + n:
  // d loss / d logit = (softmax - onehot) / B.
  void loss_piece(const int64_t* y, int64_t e, int64_t c0, int64_t n, int64_t chunk) {
    const int64_t L = layers.size();
    const int64_t C = layers[L - 1].out;
    const float* z = h[L - 1].data_ptr<float>() + e * C * ld + c0;
    float* g = dz[L - 1].data_ptr<float>() + e * C * ld + c0;
    double ls = 0;
    int64_t ok = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = y[e * B + c0 + j];
      float m = z[j];
      int64_t arg = 0;
      for (int64_t c = 1; c < C && !std::isnan(m); ++c)
        if (z[c * ld + j] > m || std::isnan(z[c * ld + j])) {
          m = z[c * ld + j];
          arg = c;
        }
      float s = 0.f;
      for (int64_t c = 0; c < C; ++c) s += std::exp(z[c * ld + j] - m);
      ls += double(std::log(s) + m - z[t * ld + j]);
      ok += arg == t;
      const float inv = 1.f / (s * float(B));
      for (int64_t c = 0; c < C; ++c) g[c * ld + j] = std::exp(z[c * ld + j] - m) * inv - (c == t ? 1.f / float(B) : 0.f);
    }
    loss[chunk] = ls;
    correct[chunk] = ok;
  }

  // The input gradient of layer l >= 1 for member e, input rows r0..r1, columns c0 ..
  // c0 + n: dz[l - 1], the gradient of layer l - 1's pre-activation (through its ReLU:
  // 0 where the unit was off; NaN passes, as in autograd, so a diverging run diverges
  // here too).
  void backward_piece(int64_t l, int64_t e, int64_t r0, int64_t r1, int64_t c0, int64_t n) {
    const int64_t L = layers.size();
    const Layer& ly = layers[l];
    const float* gl = gz(l).data_ptr<float>() + c0;
    float* base = dz[l - 1].data_ptr<float>() + e * ly.in * ld + c0;
    if (ly.compact) {
      spmm_block(ly.bwd().block(e), ly.vb.data_ptr<float>(), gl, base, r0, r1, n, ld);
    } else {
      gemm(true, false, r1 - r0, n, ly.out, 1.f, ly.w.data_ptr<float>() + e * ly.out * ly.in + r0, ly.in, gl + e * ly.out * ld,
           ld, 0.f, base + r0 * ld, ld);
    }
    // Layer l - 1's output also feeds a residual block that ends at layer l + 1 (whose
    // dz is the gradient of the sum, before any norm's backward). With dropout, act is
    // the ReLU times the keep-mask: off where either is, and the gradient through the
    // mask is the gradient times the mask (autograd's order).
    const float* gr = l + 1 < L && layers[l + 1].residual ? dz[l + 1].data_ptr<float>() + (e * ly.in + r0) * ld + c0 : nullptr;
    const float* keep = drop[l - 1] ? drop[l - 1] + r0 * B + c0 : nullptr;
    grad_tail(base + r0 * ld, r1 - r0, n, ld, gr, h[l - 1].data_ptr<float>() + (e * ly.in + r0) * ld + c0, keep, B);
  }

  // Both gradients of compact layer l >= 1 for member e, input rows r0..r1, over the whole
  // batch in one pass over its nonzeros (kernels.h, backward_one_pass; the caller checked
  // one_pass_fits(B)): dz[l - 1] as backward_piece computes it, and the weight gradient
  // that phase B would compute, the same bits either way.
  void backward_rows(int64_t l, int64_t e, int64_t r0, int64_t r1) {
    const int64_t L = layers.size();
    Layer& ly = layers[l];
    float* base = dz[l - 1].data_ptr<float>() + e * ly.in * ld;
    const float* hin = h[l - 1].data_ptr<float>() + e * ly.in * ld;
    backward_one_pass(ly.bwd().block(e), ly.vb.data_ptr<float>(), gz(l).data_ptr<float>(), hin, base, ly.grad.data_ptr<float>(),
                      ly.bperm.data_ptr<int64_t>(), r0, r1, B, ld);
    const float* gr = l + 1 < L && layers[l + 1].residual ? dz[l + 1].data_ptr<float>() + (e * ly.in + r0) * ld : nullptr;
    const float* keep = drop[l - 1] ? drop[l - 1] + r0 * B : nullptr;
    grad_tail(base + r0 * ld, r1 - r0, B, ld, gr, hin + r0 * ld, keep, B);
  }

  // Phase A for member e, batch columns c0 .. c0 + n, all layers in one pass (no BatchNorm).
  void forward_backward(const int64_t* y, int64_t e, int64_t c0, int64_t n, int64_t chunk) {
    const int64_t L = layers.size();
    for (int64_t l = 0; l < L; ++l) forward_piece(l, e, 0, layers[l].out, c0, n);
    loss_piece(y, e, c0, n, chunk);
    for (int64_t l = L - 1; l >= 1; --l) backward_piece(l, e, 0, layers[l].in, c0, n);
  }

  // Phase B: weight rows r0..r1 of member e in layer l: gradient over the whole batch and update.
  void update(const Task& t, float lr) {
    Layer& ly = layers[t.layer];
    const int64_t m = t.r1 - t.r0, e = t.member;
    const float* src = (t.layer == 0 ? x0 : h[t.layer - 1]).data_ptr<float>();  // [E * in, ld]
    const float* gz = this->gz(t.layer).data_ptr<float>() + e * ly.out * ld;   // member e's [out, ld]
    if (ly.compact) {
      const int64_t* rp = ly.rowptr.data_ptr<int64_t>();
      if (!(one_pass && t.layer > 0))
        sampled_dots_block(ly.fwd().block(e), gz, src, ly.grad.data_ptr<float>(), ly.fperm.data_ptr<int64_t>(), t.r0, t.r1, B,
                           ld);
      const int64_t q0 = rp[e * ly.out + t.r0], q1 = rp[e * ly.out + t.r1];
      float* w = ly.w.data_ptr<float>();
      apply(w + q0, ly.grad.data_ptr<float>() + q0, ly.vel.defined() ? ly.vel.data_ptr<float>() + q0 : nullptr,
            ly.s2.defined() ? ly.s2.data_ptr<float>() + q0 : nullptr, q1 - q0, lr);
      // The new values into both panel orders while they are in cache (no gather pass).
      const int64_t *fi = ly.finv.data_ptr<int64_t>(), *bi = ly.binv.data_ptr<int64_t>();
      float *vf = ly.vf.data_ptr<float>(), *vb = ly.vb.data_ptr<float>();
      for (int64_t q = q0; q < q1; ++q) {
        vf[fi[q]] = w[q];
        vb[bi[q]] = w[q];
      }
    } else {
      const int64_t off = (e * ly.out + t.r0) * ly.in;
      float* w = ly.w.data_ptr<float>() + off;
      const float* mk = ly.mask.defined() ? ly.mask.data_ptr<float>() + off : nullptr;
      const float* hin = src + e * ly.in * ld;
      const int64_t k = m * ly.in;
      if (rule != SGD) {
        // The gradient into this thread's buffer, masked; then one pass of the rule.
        thread_local std::vector<float> g;
        if (int64_t(g.size()) < k) g.resize(k);
        gemm(false, true, m, ly.in, B, 1.f, gz + t.r0 * ld, ld, hin, ld, 0.f, g.data(), ly.in);
        if (mk) mask_mul(g.data(), mk, k);
        apply(w, g.data(), ly.vel.data_ptr<float>() + off, ly.s2.defined() ? ly.s2.data_ptr<float>() + off : nullptr, k, lr);
      } else if (mu > 0) {
        // v = mu v + lr dW in the gemm; then mask, L2 and w -= v in one pass.
        float* v = ly.vel.data_ptr<float>() + off;
        gemm(false, true, m, ly.in, B, lr, gz + t.r0 * ld, ld, hin, ld, mu, v, ly.in);
        momentum_rule(w, v, mk, k, lr * l2);
      } else {
        // w = (1 - lr l2) w - lr dW in the gemm; masked entries (0 before) re-masked.
        gemm(false, true, m, ly.in, B, -lr, gz + t.r0 * ld, ld, hin, ld, 1.f - lr * l2, w, ly.in);
        if (mk) mask_mul(w, mk, k);
      }
    }
    if (ly.bias.defined()) {
      float db[ROWS];
      for (int64_t r = 0; r < m; ++r) {
        const float* gr = gz + (t.r0 + r) * ld;
        float s = 0.f;
        for (int64_t j = 0; j < B; ++j) s += gr[j];
        db[r] = s;
      }
      const int64_t off = e * ly.out + t.r0;
      apply(ly.bias.data_ptr<float>() + off, db, ly.bvel.defined() ? ly.bvel.data_ptr<float>() + off : nullptr,
            ly.bs2.defined() ? ly.bs2.data_ptr<float>() + off : nullptr, m, lr);
    }
  }

  // One update of k parameters from their (masked) gradient g with the rule, coupled L2
  // and AdamW's decoupled decay, in the order train::Optimizer applies them: g += l2 w;
  // AdamW w *= 1 - lr wd; then the rule (s1, s2 its state, see Layer).
  void apply(float* w, const float* g, float* s1, float* s2, int64_t k, float lr) const {
    switch (rule) {
      case SGD:
        step(w, g, s1, k, lr);
        return;
      case ADAM:
      case ADAMW:
        adam_rule(w, g, s1, s2, k, lr, l2, b1, ob1, b2, ob2, float(1.0 / c1), float(1.0 / c2), eps,
                  rule == ADAMW && wd > 0.f ? 1.f - lr * wd : 1.f);
        return;
      case ADAGRAD:
        rms_rule(w, g, s1, k, lr, l2, 1.f, 1.f, eps);
        return;
      case RMSPROP:
        rms_rule(w, g, s1, k, lr, l2, alpha, oalpha, eps);
        return;
    }
  }

  // One SGD update of k parameters from their gradient g (eq. 2.16 with coupled L2).
  void step(float* w, const float* g, float* v, int64_t k, float lr) const {
    if (v) {
      for (int64_t i = 0; i < k; ++i) {
        v[i] = mu * v[i] + lr * (g[i] + l2 * w[i]);
        w[i] -= v[i];
      }
    } else {
      for (int64_t i = 0; i < k; ++i) w[i] -= lr * (g[i] + l2 * w[i]);
    }
  }

  // The compact values in both panel orders (the update keeps them current after that).
  void gather_values() {
    for (auto& ly : layers) {
      if (!ly.compact) continue;
      const float* w = ly.w.data_ptr<float>();
      const int64_t *fp = ly.fperm.data_ptr<int64_t>(), *bp = ly.bperm.data_ptr<int64_t>();
      float *vf = ly.vf.data_ptr<float>(), *vb = ly.vb.data_ptr<float>();
      at::parallel_for(0, ly.w.numel(), 1 << 14, [&](int64_t a, int64_t b) {
        for (int64_t q = a; q < b; ++q) {
          vf[q] = w[fp[q]];
          vb[q] = w[bp[q]];
        }
      });
    }
    gathered = true;
  }
  bool gathered = false;

  // x [E, in, B] float, y [E, B] int64, noise null or per layer null or dropout's
  // scaled keep-mask [out, B] (one member) -> (mean loss [E] float, correct [E] int64).
  std::pair<at::Tensor, at::Tensor> run(const at::Tensor& xs, const at::Tensor& ys, const at::Tensor* const* noise, float lr) {
    const int64_t in = layers[0].in;
    for (size_t l = 0; l < layers.size(); ++l) layers[l].check(int64_t(l));
    TORCH_CHECK(xs.dim() == 3 && xs.size(0) == E && xs.size(1) == in, "fused step: input must be [", E, ", ", in,
                ", batch], got ", xs.sizes());
    TORCH_CHECK(xs.scalar_type() == at::kFloat && xs.device().is_cpu(), "fused step: input must be float32 on the CPU, got ",
                xs.scalar_type(), " on ", xs.device());
    TORCH_CHECK(ys.dim() == 2 && ys.size(0) == E && ys.size(1) == xs.size(2), "fused step: targets must be [", E, ", ",
                xs.size(2), "], got ", ys.sizes());
    TORCH_CHECK(ys.scalar_type() == at::kLong && ys.device().is_cpu(), "fused step: targets must be int64 on the CPU, got ",
                ys.scalar_type(), " on ", ys.device());
    TORCH_CHECK(xs.size(2) > 0, "fused step: empty batch");
    // The gemms take int sizes and strides (the batch, padded).
    TORCH_CHECK(xs.size(2) <= std::numeric_limits<int>::max() - 16, "fused step: batch ", xs.size(2), " is too large");
    const int64_t classes = layers.back().out;
    const auto yc = ys.contiguous();
    const int64_t* y = yc.data_ptr<int64_t>();
    for (int64_t i = 0; i < yc.numel(); ++i)
      TORCH_CHECK(y[i] >= 0 && y[i] < classes, "fused step: target ", y[i], " is not a class in 0..", classes - 1);
    layout(xs.size(2));
    drop.assign(layers.size(), nullptr);
    for (size_t l = 0; noise && l < layers.size(); ++l) {
      const at::Tensor* k = noise[l];
      if (!k) continue;
      TORCH_CHECK(E == 1 && l + 1 < layers.size(), "fused step: dropout after layer ", l, " needs a hidden layer of one member");
      TORCH_CHECK(k->scalar_type() == at::kFloat && k->is_contiguous() && k->device().is_cpu() && k->dim() == 2 &&
                      k->size(0) == layers[l].out && k->size(1) == B,
                  "fused step: layer ", l, " dropout mask must be a contiguous float32 CPU tensor [", layers[l].out, ", ", B,
                  "], got ", k->sizes());
      drop[l] = k->data_ptr<float>();
    }
    if (!gathered) gather_values();
    ++t;
    c1 = 1.0 - std::pow(double(b1), double(t));
    c2 = 1.0 - std::pow(double(b2), double(t));
    // Any strides: a batch-major minibatch is transposed here, on its way into x0.
    const float* x = xs.data_ptr<float>();
    const int64_t s0 = xs.stride(0), s1 = xs.stride(1), s2 = xs.stride(2);
    const int64_t chunks = (B + COLS - 1) / COLS;
    // A compact layer's two gradients (l >= 1) in one pass over the whole batch where this
    // CPU and batch allow (backward_rows), so then phase A runs layer by layer.
    one_pass = compact_hidden && one_pass_fits(B);
    const bool by_layer = layerwise || one_pass;
    dynamic_for(E * chunks, [&](int64_t i) {
      const int64_t c = i / E, e = i % E, c0 = c * COLS, n = std::min(COLS, B - c0);
      float* dst = x0.data_ptr<float>() + e * in * ld + c0;
      const float* src = x + e * s0 + c0 * s2;
      if (s2 == 1) {
        for (int64_t r = 0; r < in; ++r) std::memcpy(dst + r * ld, src + r * s1, n * sizeof(float));
      } else if (s1 == 1) {
        transpose_in(dst, src, in, n, ld, s2);
      } else {
        for (int64_t j = 0; j < n; ++j)
          for (int64_t r = 0; r < in; ++r) dst[r * ld + j] = src[j * s2 + r * s1];
      }
      if (!by_layer) forward_backward(y, e, c0, n, e * chunks + c);
    });
    if (by_layer) {
      // BatchNorm needs whole-batch statistics, a wide dense product runs as row pieces,
      // and a one-pass backward over the whole batch: phase A layer by layer, the norms
      // (and their backward) per block of rows in between.
      const int64_t L = layers.size();
      auto pieces = [&](auto f) {
        dynamic_for(E * chunks, [&](int64_t i) {
          const int64_t c = i / E, e = i % E, c0 = c * COLS;
          f(e, c0, std::min(COLS, B - c0), e * chunks + c);
        });
      };
      auto rows = [&](int64_t l, auto f) {
        const int64_t blocks = (layers[l].out + BN_ROWS - 1) / BN_ROWS;
        dynamic_for(E * blocks, [&](int64_t i) {
          const int64_t e = i / blocks, r0 = (i % blocks) * BN_ROWS;
          f(e, r0, std::min(layers[l].out, r0 + BN_ROWS));
        });
      };
      auto split = [&](int64_t l, int64_t rows) { return split_rows(layers[l].compact, rows); };
      // Input rows of a compact layer's one-pass backward, ONE_PASS_ROWS per task.
      auto one_pass_rows = [&](int64_t rows, auto f) {
        const int64_t blocks = (rows + ONE_PASS_ROWS - 1) / ONE_PASS_ROWS;
        dynamic_for(E * blocks, [&](int64_t i) {
          const int64_t e = i / blocks, r0 = (i % blocks) * ONE_PASS_ROWS;
          f(e, r0, std::min(rows, r0 + ONE_PASS_ROWS));
        });
      };
      // Row pieces of a dense product: an even number k of about equal blocks of at most
      // SPLIT_PIECE rows, whole multiples of 16 (fixed by the shape alone, like every piece).
      auto row_pieces = [&](int64_t rows, auto f) {
        const int64_t k = 2 * ((rows + 2 * SPLIT_PIECE - 1) / (2 * SPLIT_PIECE)), step = ((rows + k - 1) / k + 15) / 16 * 16;
        const int64_t blocks = (rows + step - 1) / step;
        dynamic_for(E * blocks, [&](int64_t i) {
          const int64_t e = i / blocks, r0 = (i % blocks) * step;
          f(e, r0, std::min(rows, r0 + step));
        });
      };
      for (int64_t l = 0; l < L; ++l) {
        if (split(l, layers[l].out))
          row_pieces(layers[l].out, [&](int64_t e, int64_t r0, int64_t r1) { forward_piece(l, e, r0, r1, 0, B); });
        else
          pieces([&](int64_t e, int64_t c0, int64_t n, int64_t) { forward_piece(l, e, 0, layers[l].out, c0, n); });
        if (layers[l].bn) rows(l, [&](int64_t e, int64_t r0, int64_t r1) { bn_forward(l, e, r0, r1); });
      }
      pieces([&](int64_t e, int64_t c0, int64_t n, int64_t chunk) { loss_piece(y, e, c0, n, chunk); });
      for (int64_t l = L - 1; l >= 1; --l) {
        if (one_pass && layers[l].compact)
          one_pass_rows(layers[l].in, [&](int64_t e, int64_t r0, int64_t r1) { backward_rows(l, e, r0, r1); });
        else if (split(l, layers[l].in))
          row_pieces(layers[l].in, [&](int64_t e, int64_t r0, int64_t r1) { backward_piece(l, e, r0, r1, 0, B); });
        else
          pieces([&](int64_t e, int64_t c0, int64_t n, int64_t) { backward_piece(l, e, 0, layers[l].in, c0, n); });
        if (layers[l - 1].bn) rows(l - 1, [&](int64_t e, int64_t r0, int64_t r1) { bn_backward(l - 1, e, r0, r1); });
      }
    }
    dynamic_for(int64_t(tasks.size()), [&](int64_t i) { update(tasks[i], lr); });
    // BatchNorm's scale and shift: a few numbers per unit, on this thread.
    for (auto& ly : layers)
      if (ly.bn)
        for (int64_t e = 0; e < E; ++e) {
          const int64_t o = e * ly.out;
          auto st = [&](at::Tensor& t) { return t.defined() ? t.data_ptr<float>() + o : nullptr; };
          apply(ly.gamma.data_ptr<float>() + o, ly.dgamma.data_ptr<float>() + o, st(ly.gs1), st(ly.gs2), ly.out, lr);
          apply(ly.beta.data_ptr<float>() + o, ly.dbeta.data_ptr<float>() + o, st(ly.bes1), st(ly.bes2), ly.out, lr);
        }
    auto losses = at::empty({E}, at::kFloat);
    auto right = at::empty({E}, at::kLong);
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      int64_t k = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        s += loss[e * chunks + c];
        k += correct[e * chunks + c];
      }
      losses.data_ptr<float>()[e] = float(s / double(B));
      right.data_ptr<int64_t>()[e] = k;
    }
    return {losses, right};
  }
};

at::Tensor opt(const at::Tensor* t) { return t ? *t : at::Tensor(); }

}  // namespace

// Per layer, `tensors` holds 14 handles (null where absent): weight, mask, bias, then
// the compact plan's forward ptr/src/perm, input-gradient ptr/src/perm and CSR row
// pointers, then BatchNorm's weight, bias, running mean and running variance. `shapes` holds (in, out, residual) per layer. `hyper` is (rule, momentum,
// l2, beta1, beta2, eps, alpha, weight_decay). Returns null and sets *out, or an error
// message allocated with malloc.
extern "C" char* sparselab_fused_new(void** out, int64_t members, int64_t nlayers, const at::Tensor* const* tensors,
                                     const int64_t* shapes, const double* hyper) {
  try {
    TORCH_CHECK(members > 0 && nlayers > 0, "fused step: ", members, " members and ", nlayers, " layers, expected at least 1 of each");
    const int64_t rule = int64_t(hyper[0]);
    TORCH_CHECK(rule >= SGD && rule <= RMSPROP, "fused step: update rule ", rule, " is not 0 (sgd) to 4 (rmsprop)");
    const double momentum = hyper[1];
    auto f = std::make_unique<FusedMlp>();
    f->E = members;
    f->rule = Rule(rule);
    f->mu = float(momentum);
    f->l2 = float(hyper[2]);
    f->b1 = float(hyper[3]), f->ob1 = float(1.0 - hyper[3]);
    f->b2 = float(hyper[4]), f->ob2 = float(1.0 - hyper[4]);
    f->eps = float(hyper[5]);
    f->alpha = float(hyper[6]), f->oalpha = float(1.0 - hyper[6]);
    f->wd = float(hyper[7]);
    for (int64_t l = 0; l < nlayers; ++l) {
      const at::Tensor* const* t = tensors + 14 * l;
      Layer ly;
      ly.in = shapes[3 * l];
      ly.out = shapes[3 * l + 1];
      ly.residual = shapes[3 * l + 2] != 0;
      ly.members = members;
      TORCH_CHECK(ly.in > 0 && ly.out > 0 && ly.in <= std::numeric_limits<int>::max() &&
                      ly.out <= std::numeric_limits<int>::max(),
                  "fused step: layer ", l, " is ", ly.out, " x ", ly.in, ", expected positive sizes that fit an int");
      TORCH_CHECK(l == 0 || ly.in == f->layers.back().out, "fused step: layer ", l, " takes ", ly.in, " features, layer ",
                  l - 1, " gives ", l == 0 ? 0 : f->layers.back().out);
      TORCH_CHECK(!ly.residual || (l >= 2 && l + 1 < nlayers && ly.in == ly.out && f->layers[l - 2].out == ly.out), "fused step: layer ",
                  l, " ends a residual block, which needs a hidden layer l >= 2 with as many inputs and outputs as layer l - 2 gives");
      TORCH_CHECK(t[0] != nullptr, "fused step: layer ", l, " has no weight");
      ly.w = *t[0];
      ly.mask = opt(t[1]);
      ly.bias = opt(t[2]);
      ly.compact = t[3] != nullptr;
      ly.bn = t[10] != nullptr;
      if (ly.bn) {
        for (int i = 11; i < 14; ++i) TORCH_CHECK(t[i] != nullptr, "fused step: layer ", l, " has an incomplete BatchNorm");
        TORCH_CHECK(l + 1 < nlayers, "fused step: layer ", l, " is the output layer, which has no BatchNorm");
        ly.gamma = *t[10], ly.beta = *t[11], ly.rmean = *t[12], ly.rvar = *t[13];
        ly.rstd = at::empty({members * ly.out}, at::kFloat);
        ly.dgamma = at::empty({members * ly.out}, at::kFloat);
        ly.dbeta = at::empty({members * ly.out}, at::kFloat);
        f->layerwise = true;
      }
      if (split_rows(ly.compact, ly.out) || (l > 0 && split_rows(ly.compact, ly.in))) f->layerwise = true;
      if (l > 0 && ly.compact) f->compact_hidden = true;
      ly.wn = ly.compact ? ly.w.numel() : members * ly.in * ly.out;
      ly.check(l);
      if (ly.compact) {
        for (int i = 4; i < 10; ++i) TORCH_CHECK(t[i] != nullptr, "fused step: layer ", l, " has an incomplete plan");
        TORCH_CHECK(!ly.mask.defined(), "fused step: layer ", l, " is compact and masked");
        ly.fptr = *t[3], ly.fsrc = *t[4], ly.fperm = *t[5], ly.bptr = *t[6], ly.bsrc = *t[7], ly.bperm = *t[8];
        ly.rowptr = *t[9];
        const int64_t nnz = ly.w.numel();
        TORCH_CHECK(ly.fperm.numel() == nnz && ly.bperm.numel() == nnz, "fused step: layer ", l, " plan has ", ly.fperm.numel(),
                    " entries for ", nnz, " values");
        check_panels("fused step: forward", ly.fptr, ly.fsrc, ly.fperm, members * ly.out, nnz);
        check_panels("fused step: input-gradient", ly.bptr, ly.bsrc, ly.bperm, members * ly.in, nnz);
        const at::Tensor& rp = ly.rowptr;
        TORCH_CHECK(rp.dim() == 1 && rp.numel() == members * ly.out + 1 && rp.scalar_type() == at::kLong && rp.is_contiguous() &&
                        rp.device().is_cpu(),
                    "fused step: layer ", l, " row pointers must be contiguous int64 [", members * ly.out + 1,
                    "] on the CPU, got ", rp.sizes());
        const int64_t* rpp = rp.data_ptr<int64_t>();
        TORCH_CHECK(rpp[0] == 0 && rpp[rp.numel() - 1] == nnz, "fused step: layer ", l, " row pointers run ", rpp[0], "..",
                    rpp[rp.numel() - 1], ", expected 0..", nnz);
        auto ids = at::arange(nnz, at::kLong);
        ly.finv = at::empty({nnz}, at::kLong).index_copy_(0, ly.fperm, ids);
        ly.binv = at::empty({nnz}, at::kLong).index_copy_(0, ly.bperm, ids);
        ly.vf = at::empty_like(ly.w);
        ly.vb = at::empty_like(ly.w);
        ly.grad = at::empty_like(ly.w);
      }
      if (rule != SGD || momentum > 0) {
        ly.vel = at::zeros_like(ly.w);
        if (ly.bias.defined()) ly.bvel = at::zeros_like(ly.bias);
      }
      if (rule == ADAM || rule == ADAMW) {
        ly.s2 = at::zeros_like(ly.w);
        if (ly.bias.defined()) ly.bs2 = at::zeros_like(ly.bias);
      }
      if (ly.bn && (rule != SGD || momentum > 0)) {
        ly.gs1 = at::zeros_like(ly.gamma);
        ly.bes1 = at::zeros_like(ly.beta);
        if (rule == ADAM || rule == ADAMW) {
          ly.gs2 = at::zeros_like(ly.gamma);
          ly.bes2 = at::zeros_like(ly.beta);
        }
      }
      f->layers.push_back(std::move(ly));
    }
    *out = f.release();
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

// `noise`: one handle per layer, null where no dropout follows it (or a null array).
extern "C" char* sparselab_fused_step(void* f, const at::Tensor* xs, const at::Tensor* ys, const at::Tensor* const* noise,
                                      double lr, at::Tensor** loss, at::Tensor** correct) {
  try {
    auto [l, c] = static_cast<FusedMlp*>(f)->run(*xs, *ys, noise, float(lr));
    *loss = new at::Tensor(l);
    *correct = new at::Tensor(c);
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

// Handles sharing layer `l`'s optimizer state `slot` (0: velocity, first moment or
// accumulator; 1: Adam's second moment) of the weight or values and of the bias, or
// (slots 2 and 3, the same states) of BatchNorm's gamma and beta; null where there is
// none (plain SGD, no bias or norm, a rule without that slot).
extern "C" char* sparselab_fused_velocity(void* f, int64_t l, int64_t slot, at::Tensor** vel, at::Tensor** bvel) {
  try {
    auto* m = static_cast<FusedMlp*>(f);
    TORCH_CHECK(l >= 0 && l < int64_t(m->layers.size()), "fused step: layer ", l, " of ", m->layers.size());
    const Layer& ly = m->layers[l];
    // Slots 2, 3: BatchNorm's gamma and beta, first and second state.
    TORCH_CHECK(slot >= 0 && slot < 4, "fused step: state slot ", slot, " is not 0 to 3");
    const at::Tensor& w = slot == 0 ? ly.vel : slot == 1 ? ly.s2 : slot == 2 ? ly.gs1 : ly.gs2;
    const at::Tensor& b = slot == 0 ? ly.bvel : slot == 1 ? ly.bs2 : slot == 2 ? ly.bes1 : ly.bes2;
    *vel = w.defined() ? new at::Tensor(w) : nullptr;
    *bvel = b.defined() ? new at::Tensor(b) : nullptr;
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

extern "C" void sparselab_fused_free(void* f) { delete static_cast<FusedMlp*>(f); }

// The steps taken (Adam's bias corrections count them): read, and set when `set` >= 0.
extern "C" int64_t sparselab_fused_steps(void* f, int64_t set) {
  auto* m = static_cast<FusedMlp*>(f);
  if (set >= 0) m->t = set;
  return m->t;
}

// Which gemm the dense layers use: "mkl" or "portable" (sparselab info).
extern "C" const char* sparselab_fused_gemm() { return have_mkl() ? "mkl" : "portable"; }

// Whether the compact products run in 16-float (AVX-512) registers here (kernels.h).
extern "C" int sparselab_kernels_wide() { return wide_vectors() ? 1 : 0; }

// Whether the kernels were built with per-CPU clones (GCC on x86-64), else baseline code.
extern "C" int sparselab_kernels_cloned() { return SL_HAVE_CLONES; }
