// Compact sparse kernels shared by the autograd function (sparse_linear.cpp) and the
// fused MLP step (fused_mlp.cpp). Activations are feature-major: a matrix of `rows`
// features by `n` batch columns with row stride `ld`, so every inner loop runs over
// the batch, contiguous.
//
// Blocking (benches/NOTES.md item 7). Random masks leave nothing to reuse across
// output rows, so every active weight streams one source row; what decides the speed
// is where that row comes from. The entries are therefore ordered by *panels* of
// source rows (plans built in src/compute/mod.rs): a panel of `panel` rows times a
// 64-float batch chunk is ~16 KB and stays in L1 while every output row takes its
// entries from it, with the output chunk held in 8 eight-float registers. The weight
// gradient walks the same panels, eight entries at a time over the whole batch (one
// gradient row load feeds eight dot products), and reduces the eight sums with one
// transpose. Vectors are 8 floats, so x86-64-v3 (AVX2, 16 registers) and v4 run the
// same register blocking (16-float vectors spilled on AVX2 and ran 4-12x slower).
//
// On AVX-512, with at most 128 batch columns, a layer's input gradient and weight
// gradient run as one pass over the nonzeros (backward_one_pass, after SparseProp),
// which computes exactly what the two passes compute.
//
// Every sum has a fixed order (panels ascending, entries ascending within a panel,
// columns independent; each dot product as tree8 says), so results depend neither on
// the thread count nor on how rows or batch columns are split between tasks, nor on
// which of the kernels computed them.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sparselab {

// One clone per x86-64 level, chosen at load time (GCC). Not with clang: clang 14 gives
// the clones' resolver of a static function external linkage, so the two files that
// include this header clash at link time; clang builds run the baseline code.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SL_HAVE_CLONES 1
#else
#define SL_HAVE_CLONES 0
#define SL_CLONES
#endif
#define SL_INLINE static inline __attribute__((always_inline))

constexpr int64_t V = 8;  // floats per vector
typedef float vf __attribute__((vector_size(32)));
typedef float vfu __attribute__((vector_size(32), aligned(4)));
typedef int vi __attribute__((vector_size(32)));

SL_INLINE vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
SL_INLINE void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
// Lane j = the sum of t[j]'s lanes.
// Two-vector shuffles: GCC's __builtin_shuffle takes a mask vector, clang's
// __builtin_shufflevector the indices (same meaning: 0-7 from a, 8-15 from b).
#if defined(__clang__)
#define SL_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SL_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, vi{__VA_ARGS__})
#endif
SL_INLINE vf hsum8x8(const vf* t) {
  auto hadd = [](vf a, vf b) {
    return SL_SHUFFLE(a, b, 0, 2, 8, 10, 4, 6, 12, 14) + SL_SHUFFLE(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  };
  const vf u0 = hadd(hadd(t[0], t[1]), hadd(t[2], t[3])), u1 = hadd(hadd(t[4], t[5]), hadd(t[6], t[7]));
  return SL_SHUFFLE(u0, u1, 0, 1, 2, 3, 8, 9, 10, 11) + SL_SHUFFLE(u0, u1, 4, 5, 6, 7, 12, 13, 14, 15);
}

// Entries ordered by (block, panel, row, source row). A plan holds `blocks` diagonal
// blocks of `rows` rows each (one for a single layer; one per member of an ensemble);
// ptr[(e * panels + pan) * rows + r] .. ptr[... + r + 1] are block e's row r's entries
// whose source row lies in the block's panel pan, and src[q] is that (global) source row.
struct Panels {
  const int64_t* ptr;
  const int32_t* src;
  int64_t rows, panels;
  // Block e alone (its rows numbered from 0).
  Panels block(int64_t e) const { return Panels{ptr + e * panels * rows, src, rows, panels}; }
  // A plan's panels (CsrPlan): `nptr` pointers for `blocks` blocks of `rows` rows each.
  static Panels of(const int64_t* ptr, int64_t nptr, const int32_t* src, int64_t rows, int64_t blocks) {
    return Panels{ptr, src, rows, (nptr - 1) / std::max<int64_t>(blocks * rows, 1)};
  }
};

// out[r, b .. b + 8 NV] (+)= sum_q v[q] x[src[q], b ..] over panel pan, rows r0..r1.
template <int NV>
SL_INLINE void axpy_panel(const Panels& P, const float* v, const float* x, float* out, int64_t r0, int64_t r1, int64_t b,
                          int64_t ld, int64_t pan) {
  const int64_t* ptr = P.ptr + pan * P.rows;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t q0 = ptr[r], q1 = ptr[r + 1];
    if (pan > 0 && q0 == q1) continue;
    float* o = out + r * ld + b;
    vf a[NV];
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) a[i] = pan == 0 ? vf{} : load(o + i * V);
    for (int64_t q = q0; q < q1; ++q) {
      const float w = v[q];
      const float* s = x + int64_t(P.src[q]) * ld + b;
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) a[i] += w * load(s + i * V);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) store(o + i * V, a[i]);
  }
}

SL_INLINE void axpy_panel_tail(const Panels& P, const float* v, const float* x, float* out, int64_t r0, int64_t r1,
                               int64_t b, int64_t n, int64_t ld, int64_t pan) {
  const int64_t* ptr = P.ptr + pan * P.rows;
  const int64_t m = n - b;
  for (int64_t r = r0; r < r1; ++r) {
    float a[V] = {};
    float* o = out + r * ld + b;
    if (pan > 0) std::memcpy(a, o, m * sizeof(float));
    for (int64_t q = ptr[r]; q < ptr[r + 1]; ++q) {
      const float w = v[q];
      const float* s = x + int64_t(P.src[q]) * ld + b;
      for (int64_t c = 0; c < m; ++c) a[c] += w * s[c];
    }
    std::memcpy(o, a, m * sizeof(float));
  }
}

#if SL_HAVE_CLONES
// The AVX-512 form of axpy_panel<8> and <4>: 64 (or 32) batch columns in four (two)
// 16-float registers, so each entry costs half the loads and multiply-adds of the
// 8-float form. Every column's sum is the same fused multiply-adds in the same order
// as the 8-float form of the AVX2 and AVX-512 clones, so the numbers are the same bits;
// only the width of the registers differs. Chosen at run time where the CPU has
// AVX-512 (F, VL, BW, DQ), as the clones are.
typedef float vw __attribute__((vector_size(64)));
typedef float vwu __attribute__((vector_size(64), aligned(4)));

// One row's entries q0..q1 into its NW accumulators.
template <int NW>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,f16c"), always_inline)) static inline void
axpy_row_wide(vw* a, const float* v, const int32_t* src, const float* x, int64_t q0, int64_t q1, int64_t b, int64_t ld) {
  for (int64_t q = q0; q < q1; ++q) {
    const float w = v[q];
    const float* s = x + int64_t(src[q]) * ld + b;
#pragma GCC unroll 4
    for (int i = 0; i < NW; ++i) a[i] += w * *reinterpret_cast<const vwu*>(s + 16 * i);
  }
}

// Two rows at a time, their entries interleaved while both have some: 2 NW independent
// multiply-add chains instead of NW, so the chains' latency no longer bounds a core that
// issues two 16-float multiply-adds per cycle. Each row still adds its own entries in
// its own order, so the sums are the same bits as one row at a time.
template <int NW>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,f16c"))) static void axpy_panels_wide(
    const Panels& P, const float* v, const float* x, float* out, int64_t r0, int64_t r1, int64_t b, int64_t ld) {
  for (int64_t pan = 0; pan < P.panels; ++pan) {
    const int64_t* ptr = P.ptr + pan * P.rows;
    int64_t r = r0;
    for (; r + 2 <= r1; r += 2) {
      const int64_t qa = ptr[r], qb = ptr[r + 1], qe = ptr[r + 2];
      if (pan > 0 && qa == qe) continue;
      float *oa = out + r * ld + b, *ob = oa + ld;
      vw a[NW], c[NW];
#pragma GCC unroll 4
      for (int i = 0; i < NW; ++i) {
        a[i] = pan == 0 ? vw{} : *reinterpret_cast<const vwu*>(oa + 16 * i);
        c[i] = pan == 0 ? vw{} : *reinterpret_cast<const vwu*>(ob + 16 * i);
      }
      const int64_t m = std::min(qb - qa, qe - qb);
      for (int64_t k = 0; k < m; ++k) {
        const float wa = v[qa + k], wc = v[qb + k];
        const float* sa = x + int64_t(P.src[qa + k]) * ld + b;
        const float* sc = x + int64_t(P.src[qb + k]) * ld + b;
#pragma GCC unroll 4
        for (int i = 0; i < NW; ++i) {
          a[i] += wa * *reinterpret_cast<const vwu*>(sa + 16 * i);
          c[i] += wc * *reinterpret_cast<const vwu*>(sc + 16 * i);
        }
      }
      axpy_row_wide<NW>(a, v, P.src, x, qa + m, qb, b, ld);
      axpy_row_wide<NW>(c, v, P.src, x, qb + m, qe, b, ld);
#pragma GCC unroll 4
      for (int i = 0; i < NW; ++i) {
        *reinterpret_cast<vwu*>(oa + 16 * i) = a[i];
        *reinterpret_cast<vwu*>(ob + 16 * i) = c[i];
      }
    }
    if (r < r1) {
      const int64_t q0 = ptr[r], q1 = ptr[r + 1];
      if (pan > 0 && q0 == q1) continue;
      float* o = out + r * ld + b;
      vw a[NW];
#pragma GCC unroll 4
      for (int i = 0; i < NW; ++i) a[i] = pan == 0 ? vw{} : *reinterpret_cast<const vwu*>(o + 16 * i);
      axpy_row_wide<NW>(a, v, P.src, x, q0, q1, b, ld);
#pragma GCC unroll 4
      for (int i = 0; i < NW; ++i) *reinterpret_cast<vwu*>(o + 16 * i) = a[i];
    }
  }
}

// Whether this CPU runs the AVX-512 clones (and so the wide forms), unless
// SPARSELAB_KERNEL_VECTORS=8 asks for the 8-float form (the test that both give the
// same bits sets it).
static inline bool wide_vectors() {
  static const bool yes = [] {
    const char* force = std::getenv("SPARSELAB_KERNEL_VECTORS");
    if (force && std::strcmp(force, "8") == 0) return false;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  }();
  return yes;
}
#else
static inline bool wide_vectors() { return false; }
#endif

// Whether backward_one_pass runs for a batch of n columns: AVX-512, and at most 128
// columns (x's row and dx's accumulators then fit in the 32 registers).
static inline bool one_pass_fits(int64_t n) { return wide_vectors() && n <= 128; }

// out[r, :n] = sum_q v[q] x[src[q], :n] for the block's rows r0..r1 (v in panel order,
// x and out with row stride ld). Chunks of 64 batch columns, then 32, 8 and the tail;
// panels inside each chunk so the panel's slice of x stays in L1 across the rows.
SL_CLONES
static void spmm_block(Panels P, const float* v, const float* x, float* out, int64_t r0, int64_t r1, int64_t n,
                       int64_t ld) {
  int64_t b = 0;
#if SL_HAVE_CLONES
  if (wide_vectors()) {
    for (; b + 8 * V <= n; b += 8 * V) axpy_panels_wide<4>(P, v, x, out, r0, r1, b, ld);
    for (; b + 4 * V <= n; b += 4 * V) axpy_panels_wide<2>(P, v, x, out, r0, r1, b, ld);
  }
#endif
  for (; b + 8 * V <= n; b += 8 * V)
    for (int64_t pan = 0; pan < P.panels; ++pan) axpy_panel<8>(P, v, x, out, r0, r1, b, ld, pan);
  for (; b + 4 * V <= n; b += 4 * V)
    for (int64_t pan = 0; pan < P.panels; ++pan) axpy_panel<4>(P, v, x, out, r0, r1, b, ld, pan);
  for (; b + V <= n; b += V)
    for (int64_t pan = 0; pan < P.panels; ++pan) axpy_panel<1>(P, v, x, out, r0, r1, b, ld, pan);
  if (b < n)
    for (int64_t pan = 0; pan < P.panels; ++pan) axpy_panel_tail(P, v, x, out, r0, r1, b, n, ld, pan);
}

// Every weight gradient <g[:n], x[:n]> the compact kernels compute is this sum, whichever
// kernel computes it (`dots` here, `backward_wide` on AVX-512): eight lanes, lane c
// adding g[c + 8k] x[c + 8k] for k = 0, 1, ... in order with fused multiply-adds, then
// the pairwise tree of tree8 (what hsum8x8 does for each of its eight vectors), then
// the columns past the last multiple of 8 in order, again as fused multiply-adds. So
// the two kernels, and the AVX2 and AVX-512 clones, give the same bits.
SL_INLINE float tree8(vf a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

// dv[perm[j]] = <g[:n], x[src[j], :n]> for G consecutive entries j: one load of g feeds
// G dot products.
template <int G>
SL_INLINE void dots(const float* g, const float* x, const int32_t* src, int64_t n, int64_t ld, float* dv,
                    const int64_t* perm) {
  vf t[G];
  const float* xs[G];
#pragma GCC unroll 8
  for (int j = 0; j < G; ++j) {
    t[j] = vf{};
    xs[j] = x + int64_t(src[j]) * ld;
  }
  int64_t b = 0;
  for (; b + V <= n; b += V) {
    const vf gv = load(g + b);
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) t[j] += gv * load(xs[j] + b);
  }
  float s[G];
  if constexpr (G == 8) {
    const vf h = hsum8x8(t);
    for (int j = 0; j < 8; ++j) s[j] = h[j];
  } else {
    for (int j = 0; j < G; ++j) s[j] = tree8(t[j]);
  }
  for (int j = 0; j < G; ++j) {
    for (int64_t c = b; c < n; ++c) s[j] = std::fma(g[c], xs[j][c], s[j]);
    dv[perm[j]] = s[j];
  }
}

// dv[perm[q]] = <g[r, :n], x[src[q], :n]> for the entries q of the block's rows r0..r1
// (g: the block's rows, stride ld; dv in CSR order).
SL_CLONES
static void sampled_dots_block(Panels P, const float* g, const float* x, float* dv, const int64_t* perm, int64_t r0,
                               int64_t r1, int64_t n, int64_t ld) {
  for (int64_t pan = 0; pan < P.panels; ++pan) {
    const int64_t* ptr = P.ptr + pan * P.rows;
    for (int64_t r = r0; r < r1; ++r) {
      const float* gr = g + r * ld;
      int64_t q = ptr[r];
      const int64_t q1 = ptr[r + 1];
      for (; q + 8 <= q1; q += 8) dots<8>(gr, x, P.src + q, n, ld, dv, perm + q);
      if (q + 4 <= q1) {
        dots<4>(gr, x, P.src + q, n, ld, dv, perm + q);
        q += 4;
      }
      if (q + 2 <= q1) {
        dots<2>(gr, x, P.src + q, n, ld, dv, perm + q);
        q += 2;
      }
      if (q < q1) dots<1>(gr, x, P.src + q, n, ld, dv, perm + q);
    }
  }
}

// The input gradient and the weight gradient of a compact layer in one pass over its
// nonzeros (SparseProp, Nikdan et al. 2023), on AVX-512, for a batch of at most 128
// columns. T is the input-gradient plan (rows: the block's input features j, sources:
// output rows i, as spmm_block walks it); for rows r0..r1 it computes
//   dx[j, :n] = sum_i v[q] g[i, :n]   (the entries in T's order: the same fused
//                                       multiply-adds in the same order as spmm_block)
//   dv[perm[q]] = <g[i, :n], x[j, :n]> (the sum `dots` computes, see tree8)
// For each row j, x[j, :n] stays in registers as 8-float halves and dx[j, :n] as 16-float
// accumulators; each active weight loads g[i, :n] once and feeds both. The two-pass form
// loads a source row per active weight for each gradient. One core, 788 x 788, batch
// 128: 0.67-0.79 of the two passes' time at densities 0.01-0.5 (benches/NOTES.md item
// 23, benches/one_pass_backward.cpp). NW 16-float blocks, H an 8-float block after them,
// then n - (16 NW + 8 H) < 8 columns one at a time.
#if SL_HAVE_CLONES
template <int NW, bool H>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,f16c"))) static void backward_wide(
    const Panels& T, const float* v, const float* g, const float* x, float* dx, float* dv, const int64_t* perm, int64_t r0,
    int64_t r1, int64_t n, int64_t ld) {
  constexpr int64_t W = 16 * NW + (H ? 8 : 0);  // columns in registers
  constexpr int NA = NW > 0 ? NW : 1;
  const int64_t m = n - W;  // 0..7 columns past them
  for (int64_t pan = 0; pan < T.panels; ++pan) {
    const int64_t* ptr = T.ptr + pan * T.rows;
    for (int64_t j = r0; j < r1; ++j) {
      const int64_t q0 = ptr[j], q1 = ptr[j + 1];
      if (pan > 0 && q0 == q1) continue;
      float* o = dx + j * ld;
      const float* xj = x + j * ld;
      vw a[NA];
      vf ah{}, xh[2 * NA + 1];
      float at[V] = {};
#pragma GCC unroll 8
      for (int i = 0; i < NW; ++i) {
        a[i] = pan == 0 ? vw{} : *reinterpret_cast<const vwu*>(o + 16 * i);
        xh[2 * i] = load(xj + 16 * i);
        xh[2 * i + 1] = load(xj + 16 * i + 8);
      }
      if (H) {
        if (pan > 0) ah = load(o + 16 * NW);
        xh[2 * NW] = load(xj + 16 * NW);
      }
      if (pan > 0)
        for (int64_t c = 0; c < m; ++c) at[c] = o[W + c];
      for (int64_t q = q0; q < q1; ++q) {
        const float w = v[q];
        const float* gi = g + int64_t(T.src[q]) * ld;
        vf d{};
#pragma GCC unroll 8
        for (int i = 0; i < NW; ++i) {
          const vw gv = *reinterpret_cast<const vwu*>(gi + 16 * i);
          a[i] += w * gv;
          d += __builtin_shufflevector(gv, gv, 0, 1, 2, 3, 4, 5, 6, 7) * xh[2 * i];
          d += __builtin_shufflevector(gv, gv, 8, 9, 10, 11, 12, 13, 14, 15) * xh[2 * i + 1];
        }
        if (H) {
          const vf gv = load(gi + 16 * NW);
          ah += w * gv;
          d += gv * xh[2 * NW];
        }
        // tree8(d) with two in-lane shuffles: lanes 0 and 4 end as (l0 + l1) + (l2 + l3)
        // and (l4 + l5) + (l6 + l7).
        const vf p = d + __builtin_shufflevector(d, d, 1, 0, 3, 2, 5, 4, 7, 6);
        const vf r = p + __builtin_shufflevector(p, p, 2, 3, 0, 1, 6, 7, 4, 5);
        float s = r[0] + r[4];
        for (int64_t c = 0; c < m; ++c) {
          at[c] = std::fma(w, gi[W + c], at[c]);
          s = std::fma(gi[W + c], xj[W + c], s);
        }
        dv[perm[q]] = s;
      }
#pragma GCC unroll 8
      for (int i = 0; i < NW; ++i) *reinterpret_cast<vwu*>(o + 16 * i) = a[i];
      if (H) store(o + 16 * NW, ah);
      for (int64_t c = 0; c < m; ++c) o[W + c] = at[c];
    }
  }
}
#endif

// Both gradients of block rows r0..r1 in one pass (above), where this CPU and batch
// allow it: true if it ran, false if the caller runs spmm_block and sampled_dots_block,
// which give the same bits.
static inline bool backward_one_pass(const Panels& T, const float* v, const float* g, const float* x, float* dx, float* dv,
                                     const int64_t* perm, int64_t r0, int64_t r1, int64_t n, int64_t ld) {
#if SL_HAVE_CLONES
  if (!one_pass_fits(n)) return false;
  switch (n / 8) {
#define SL_ONE_PASS(k)                                                                  \
  case k:                                                                               \
    backward_wide<k / 2, k % 2 == 1>(T, v, g, x, dx, dv, perm, r0, r1, n, ld);          \
    return true;
    SL_ONE_PASS(0) SL_ONE_PASS(1) SL_ONE_PASS(2) SL_ONE_PASS(3) SL_ONE_PASS(4) SL_ONE_PASS(5) SL_ONE_PASS(6)
    SL_ONE_PASS(7) SL_ONE_PASS(8) SL_ONE_PASS(9) SL_ONE_PASS(10) SL_ONE_PASS(11) SL_ONE_PASS(12) SL_ONE_PASS(13)
    SL_ONE_PASS(14) SL_ONE_PASS(15) SL_ONE_PASS(16)
#undef SL_ONE_PASS
  }
#endif
  (void)T, (void)v, (void)g, (void)x, (void)dx, (void)dv, (void)perm, (void)r0, (void)r1, (void)n, (void)ld;
  return false;
}

// Calls f(block e's panels, first global row of e, local rows lo..hi) for every block
// that global rows r0..r1 touch.
template <class F>
static inline void per_block(const Panels& P, int64_t r0, int64_t r1, F f) {
  for (int64_t e = r0 / P.rows; e * P.rows < r1; ++e) {
    const int64_t base = e * P.rows;
    f(P.block(e), base, std::max(r0, base) - base, std::min(r1, base + P.rows) - base);
  }
}

// Rows per task: about 512k multiply-adds (waking a pool thread costs more than
// smaller tasks save), so small layers stay on one thread.
static inline int64_t grain(int64_t rows, int64_t nnz, int64_t B) {
  const int64_t per_row = std::max<int64_t>(1, nnz / std::max<int64_t>(rows, 1) * B);
  return std::max<int64_t>(1, 524288 / per_row);
}

// The sizes of a plan's panels as the kernels read them, checked once per call
// (O(1)): ptr int64 [rows * panels + 1] (`rows` over all blocks), src int32 [nnz],
// perm int64 [nnz], contiguous on the CPU. Their index ranges (pointers ascending from
// 0 to nnz, sources below the source rows, perm a permutation) are what the plan's
// constructor verified once (src/compute/mod.rs, CsrPlan::verify); the kernels trust them.
static inline void check_panels(const char* what, const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& perm,
                                int64_t rows, int64_t nnz) {
  auto ok = [](const at::Tensor& t, at::ScalarType k) {
    return t.defined() && t.dim() == 1 && t.scalar_type() == k && t.device().is_cpu() && t.is_contiguous();
  };
  TORCH_CHECK(ok(ptr, at::kLong) && ok(src, at::kInt) && ok(perm, at::kLong), what,
              " panels must be contiguous 1-D CPU tensors (int64 ptr, int32 src, int64 perm)");
  TORCH_CHECK(rows > 0 && ptr.numel() > rows && (ptr.numel() - 1) % rows == 0, what, " panels: ", ptr.numel(),
              " row pointers for ", rows, " rows");
  TORCH_CHECK(src.numel() == nnz && perm.numel() == nnz, what, " panels: ", src.numel(), " sources and ", perm.numel(),
              " positions for ", nnz, " values");
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[ptr.numel() - 1] == nnz, what, " panels: pointers run ", p[0], "..", p[ptr.numel() - 1],
              ", expected 0..", nnz);
}

// A C++ exception's message for the Rust side, which frees it (malloc'ed).
static inline char* error_string(const char* what) {
  const size_t n = std::strlen(what) + 1;
  char* out = static_cast<char*>(std::malloc(n));
  std::memcpy(out, what, n);
  return out;
}

}  // namespace sparselab
