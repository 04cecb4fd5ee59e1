// Fused CPU training step for plain ReLU MLPs (no BatchNorm, skip or dropout), single
// or a batched ensemble of E members, with SGD or momentum (report eq. 2.16) and
// coupled L2. One call does forward, cross-entropy, backward and the update with no
// autograd graph, no allocation after the first step, and two parallel phases:
//
//   A. per (member, chunk of 64 batch columns): forward through every layer, the
//      loss and its gradient, and the input-gradient chain down to layer 1;
//   B. per (layer, member, block of 128 weight rows): the weight gradient over the
//      whole batch, fused into the update (momentum: v = mu v + lr dW in the same
//      gemm, then one pass for mask, L2 and w -= v).
//
// Every task runs single-threaded BLAS on a fixed piece of the work, so the numbers
// depend neither on the thread count nor on how many members train together (a
// member of an ensemble computes exactly what it computes alone). Activations are
// feature-major ([member, features, batch]), the layout of the compact kernels.
// Dense layers call MKL's sgemm (exported by the libtorch we link); compact layers
// run the kernels of kernels.h. Masked dense weights stay exactly 0.0: their velocity
// is masked after the gemm (it was 0 there, so mu v + lr dW masked equals the masked
// gradient's update) and plain SGD re-masks the weight.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"

extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);
extern "C" int MKL_Set_Num_Threads_Local(int n);  // MKL's C interface (the lowercase name is the Fortran one)

namespace {
using namespace sparselab;

// Row-major C[M, N] = alpha op(A) op(B) + beta C (column-major BLAS on the transposes).
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const char a = ta ? 'T' : 'N', b = tb ? 'T' : 'N';
  const int m = int(M), n = int(N), k = int(K), la = int(lda), lb = int(ldb), lc = int(ldc);
  sgemm_(&b, &a, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
}

// BLAS on this thread only while a task runs (inside a parallel region MKL already
// uses one thread; this also covers a region that runs inline).
struct OneThread {
  int prev;
  OneThread() : prev(MKL_Set_Num_Threads_Local(1)) {}
  ~OneThread() { MKL_Set_Num_Threads_Local(prev); }
};

constexpr int64_t COLS = 64;  // batch columns per phase-A task
constexpr int64_t ROWS = 128;  // weight rows per phase-B task (64: ~5% slower, more packing of the batch operand)

struct Layer {
  int64_t in = 0, out = 0;  // per member
  bool compact = false;
  at::Tensor w;     // dense [E, out, in]; compact: values [nnz] (members one after another, CSR order)
  at::Tensor mask;  // dense masked layers: [E, out, in]
  at::Tensor bias;  // [E, out]
  at::Tensor vel, bvel;
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
  }
  Panels panels(const at::Tensor& ptr, const at::Tensor& src, int64_t rows) const {
    return Panels::of(ptr.data_ptr<int64_t>(), ptr.numel(), src.data_ptr<int32_t>(), rows, members);
  }
  Panels fwd() const { return panels(fptr, fsrc, out); }
  Panels bwd() const { return panels(bptr, bsrc, in); }
};

struct Task {
  int64_t layer, member, r0, r1;
};

// Runs f(i) for i in 0..n on the libtorch threads, each thread taking the next
// undone index (tasks differ in cost; which thread runs a task never changes its
// numbers), with BLAS single-threaded inside.
template <class F>
void dynamic_for(int64_t n, F f) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(n, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    OneThread one;
    for (int64_t i; (i = next.fetch_add(1)) < n;) f(i);
  });
}

struct FusedMlp {
  int64_t E = 1;
  float mu = 0, l2 = 0;
  std::vector<Layer> layers;
  int64_t B = -1;                     // batch size the buffers are laid out for
  int64_t ld = 0;                     // their row stride (B padded, see layout)
  at::Tensor x0;                      // the input [E, in, ld] (flat, at least that long)
  std::vector<at::Tensor> h, dz;      // per layer: output [E, out, ld] and its gradient (likewise)
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
    for (size_t l = 0; l < layers.size(); ++l) {
      fit(h[l], layers[l].out);
      fit(dz[l], layers[l].out);
    }
    const int64_t chunks = (B + COLS - 1) / COLS;
    loss.assign(E * chunks, 0.0);
    correct.assign(E * chunks, 0);
    if (tasks.empty())
      for (int64_t l = 0; l < int64_t(layers.size()); ++l)
        for (int64_t e = 0; e < E; ++e)
          for (int64_t r = 0; r < layers[l].out; r += ROWS) tasks.push_back({l, e, r, std::min(r + ROWS, layers[l].out)});
  }

  // Phase A for member e, batch columns c0 .. c0 + n.
  void forward_backward(const int64_t* y, int64_t e, int64_t c0, int64_t n, int64_t chunk) {
    const int64_t L = layers.size();
    const float* in = x0.data_ptr<float>() + c0;  // [E * in, ld] from column c0
    for (int64_t l = 0; l < L; ++l) {
      const Layer& ly = layers[l];
      float* out = h[l].data_ptr<float>() + e * ly.out * ld + c0;
      if (ly.compact) {
        spmm_block(ly.fwd().block(e), ly.vf.data_ptr<float>(), in, out, 0, ly.out, n, ld);
      } else {
        gemm(false, false, ly.out, n, ly.in, 1.f, ly.w.data_ptr<float>() + e * ly.out * ly.in, ly.in, in + e * ly.in * ld, ld,
             0.f, out, ld);
      }
      const float* b = ly.bias.defined() ? ly.bias.data_ptr<float>() + e * ly.out : nullptr;
      const bool relu = l + 1 < L;
      if (b || relu)
        for (int64_t r = 0; r < ly.out; ++r) {
          float* z = out + r * ld;
          const float br = b ? b[r] : 0.f;
          for (int64_t j = 0; j < n; ++j) {
            const float v = z[j] + br;
            z[j] = relu && v < 0.f ? 0.f : v;  // NaN passes, as torch.relu
          }
        }
      in = h[l].data_ptr<float>() + c0;
    }
    // Mean cross-entropy over the whole batch: d loss / d logit = (softmax - onehot) / B.
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
    // Input gradients down to layer 1, through ReLU (0 where the unit was off; NaN passes,
    // as in autograd, so a diverging run diverges here too).
    for (int64_t l = L - 1; l >= 1; --l) {
      const Layer& ly = layers[l];
      const float* gl = dz[l].data_ptr<float>() + c0;
      float* dst = dz[l - 1].data_ptr<float>() + e * ly.in * ld + c0;
      if (ly.compact) {
        spmm_block(ly.bwd().block(e), ly.vb.data_ptr<float>(), gl, dst, 0, ly.in, n, ld);
      } else {
        gemm(true, false, ly.in, n, ly.out, 1.f, ly.w.data_ptr<float>() + e * ly.out * ly.in, ly.in, gl + e * ly.out * ld, ld,
             0.f, dst, ld);
      }
      const float* act = h[l - 1].data_ptr<float>() + e * ly.in * ld + c0;
      for (int64_t r = 0; r < ly.in; ++r)
        for (int64_t j = 0; j < n; ++j) dst[r * ld + j] = act[r * ld + j] <= 0.f ? 0.f : dst[r * ld + j];
    }
  }

  // Phase B: weight rows r0..r1 of member e in layer l: gradient over the whole batch and update.
  void update(const Task& t, float lr) {
    Layer& ly = layers[t.layer];
    const int64_t m = t.r1 - t.r0, e = t.member;
    const float* src = (t.layer == 0 ? x0 : h[t.layer - 1]).data_ptr<float>();  // [E * in, ld]
    const float* gz = dz[t.layer].data_ptr<float>() + e * ly.out * ld;          // member e's [out, ld]
    if (ly.compact) {
      const int64_t* rp = ly.rowptr.data_ptr<int64_t>();
      sampled_dots_block(ly.fwd().block(e), gz, src, ly.grad.data_ptr<float>(), ly.fperm.data_ptr<int64_t>(), t.r0, t.r1, B,
                         ld);
      const int64_t q0 = rp[e * ly.out + t.r0], q1 = rp[e * ly.out + t.r1];
      float* w = ly.w.data_ptr<float>();
      step(w + q0, ly.grad.data_ptr<float>() + q0, mu > 0 ? ly.vel.data_ptr<float>() + q0 : nullptr, q1 - q0, lr);
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
      if (mu > 0) {
        // v = mu v + lr dW in the gemm; then mask, L2 and w -= v in one pass.
        float* v = ly.vel.data_ptr<float>() + off;
        gemm(false, true, m, ly.in, B, lr, gz + t.r0 * ld, ld, hin, ld, mu, v, ly.in);
        const float c = lr * l2;
        for (int64_t i = 0; i < k; ++i) {
          float vi = mk ? v[i] * mk[i] : v[i];
          if (c != 0.f) vi += c * w[i];
          v[i] = vi;
          w[i] -= vi;
        }
      } else {
        // w = (1 - lr l2) w - lr dW in the gemm; masked entries (0 before) re-masked.
        gemm(false, true, m, ly.in, B, -lr, gz + t.r0 * ld, ld, hin, ld, 1.f - lr * l2, w, ly.in);
        if (mk)
          for (int64_t i = 0; i < k; ++i) w[i] *= mk[i];
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
      step(ly.bias.data_ptr<float>() + off, db, mu > 0 ? ly.bvel.data_ptr<float>() + off : nullptr, m, lr);
    }
  }

  // One update of k parameters from their gradient g (eq. 2.16 with coupled L2).
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

  // x [E, in, B] float, y [E, B] int64 -> (mean loss [E] float, correct [E] int64).
  std::pair<at::Tensor, at::Tensor> run(const at::Tensor& xs, const at::Tensor& ys, float lr) {
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
    if (!gathered) gather_values();
    // Any strides: a batch-major minibatch is transposed here, on its way into x0.
    const float* x = xs.data_ptr<float>();
    const int64_t s0 = xs.stride(0), s1 = xs.stride(1), s2 = xs.stride(2);
    const int64_t chunks = (B + COLS - 1) / COLS;
    dynamic_for(E * chunks, [&](int64_t i) {
      const int64_t c = i / E, e = i % E, c0 = c * COLS, n = std::min(COLS, B - c0);
      float* dst = x0.data_ptr<float>() + e * in * ld + c0;
      const float* src = x + e * s0 + c0 * s2;
      if (s2 == 1) {
        for (int64_t r = 0; r < in; ++r) std::memcpy(dst + r * ld, src + r * s1, n * sizeof(float));
      } else {
        for (int64_t j = 0; j < n; ++j)
          for (int64_t r = 0; r < in; ++r) dst[r * ld + j] = src[j * s2 + r * s1];
      }
      forward_backward(y, e, c0, n, e * chunks + c);
    });
    dynamic_for(int64_t(tasks.size()), [&](int64_t i) { update(tasks[i], lr); });
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

// Per layer, `tensors` holds 10 handles (null where absent): weight, mask, bias, then
// the compact plan's forward ptr/src/perm, input-gradient ptr/src/perm and CSR row
// pointers. `shapes` holds (in, out) per layer. Returns null and sets *out, or an
// error message allocated with malloc.
extern "C" char* sparselab_fused_new(void** out, int64_t members, int64_t nlayers, const at::Tensor* const* tensors,
                                     const int64_t* shapes, double momentum, double l2) {
  try {
    TORCH_CHECK(members > 0 && nlayers > 0, "fused step: ", members, " members and ", nlayers, " layers, expected at least 1 of each");
    auto f = std::make_unique<FusedMlp>();
    f->E = members;
    f->mu = float(momentum);
    f->l2 = float(l2);
    for (int64_t l = 0; l < nlayers; ++l) {
      const at::Tensor* const* t = tensors + 10 * l;
      Layer ly;
      ly.in = shapes[2 * l];
      ly.out = shapes[2 * l + 1];
      ly.members = members;
      TORCH_CHECK(ly.in > 0 && ly.out > 0 && ly.in <= std::numeric_limits<int>::max() &&
                      ly.out <= std::numeric_limits<int>::max(),
                  "fused step: layer ", l, " is ", ly.out, " x ", ly.in, ", expected positive sizes that fit an int");
      TORCH_CHECK(l == 0 || ly.in == f->layers.back().out, "fused step: layer ", l, " takes ", ly.in, " features, layer ",
                  l - 1, " gives ", l == 0 ? 0 : f->layers.back().out);
      TORCH_CHECK(t[0] != nullptr, "fused step: layer ", l, " has no weight");
      ly.w = *t[0];
      ly.mask = opt(t[1]);
      ly.bias = opt(t[2]);
      ly.compact = t[3] != nullptr;
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
      if (momentum > 0) {
        ly.vel = at::zeros_like(ly.w);
        if (ly.bias.defined()) ly.bvel = at::zeros_like(ly.bias);
      }
      f->layers.push_back(std::move(ly));
    }
    *out = f.release();
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

extern "C" char* sparselab_fused_step(void* f, const at::Tensor* xs, const at::Tensor* ys, double lr, at::Tensor** loss,
                                      at::Tensor** correct) {
  try {
    auto [l, c] = static_cast<FusedMlp*>(f)->run(*xs, *ys, float(lr));
    *loss = new at::Tensor(l);
    *correct = new at::Tensor(c);
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

// Handles sharing layer `l`'s momentum state (velocity of the weight or values, and of
// the bias), or null where there is none (plain SGD, no bias).
extern "C" char* sparselab_fused_velocity(void* f, int64_t l, at::Tensor** vel, at::Tensor** bvel) {
  try {
    auto* m = static_cast<FusedMlp*>(f);
    TORCH_CHECK(l >= 0 && l < int64_t(m->layers.size()), "fused step: layer ", l, " of ", m->layers.size());
    const Layer& ly = m->layers[l];
    *vel = ly.vel.defined() ? new at::Tensor(ly.vel) : nullptr;
    *bvel = ly.bvel.defined() ? new at::Tensor(ly.bvel) : nullptr;
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}

extern "C" void sparselab_fused_free(void* f) { delete static_cast<FusedMlp*>(f); }
