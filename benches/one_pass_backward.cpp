// SparseProp's one-pass backward against sparselab's two compact backward kernels, on
// one core (benches/NOTES.md item 23). Not part of the crate: a measurement harness that
// includes src/compute/kernels.h, so it times the kernels training runs.
//
// A compact layer's backward needs the input gradient dX = W^T dY (over the active
// weights) and the weight gradient dW[i, j] = <dY[i, :], X[j, :]> at the active (i, j).
// The two-pass form: `spmm_block` on the transposed plan and `sampled_dots_block` on the
// forward plan, each loading a source row per active weight. The one pass
// (`backward_one_pass`, SparseProp, Nikdan et al. 2023): for an input feature j, X[j, :]
// and dX[j, :]'s accumulators stay in registers while each active (i, j) loads dY[i, :]
// once and feeds both. Both give the same bits (kernels.h, tree8); this checks it.
//
// Build and run on an AVX-512 CPU, from the repository root after `.ci/setup`:
//   T=.libtorch; g++ -O3 -std=c++17 -fno-math-errno -Wno-psabi -I$T/include \
//     -I$T/include/torch/csrc/api/include benches/one_pass_backward.cpp -o /tmp/one_pass \
//     -L$T/lib -ltorch_cpu -lc10 -Wl,-rpath,$T/lib && /tmp/one_pass [out in]   (788 788)
// Per density (min of 300 calls, batch 128): the two passes (and each alone), the one
// pass, GFLOP/s at 4 flops per active weight and column, how many dX and dW values
// differ from the two-pass dX and from the weight gradient's definition (dot_exact),
// the weight gradient alone by the transposed walk (what a first layer could gain), and
// a one pass summing each dot in 16 lanes (other bits: not used) at its best panel size.
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "../src/compute/kernels.h"

using namespace sparselab;

namespace {

struct Plan {
  std::vector<int64_t> ptr;   // [panels * rows + 1]
  std::vector<int32_t> src;   // source row per entry
  std::vector<int64_t> perm;  // CSR index per entry
  int64_t rows = 0, panels = 0;
  Panels view() const { return Panels{ptr.data(), src.data(), rows, panels}; }
};

// Entries (row r, source s, CSR index k) ordered by (panel of s, r, s), as
// src/compute/mod.rs builds them.
Plan plan(const std::vector<std::array<int64_t, 3>>& entries, int64_t rows, int64_t sources, int64_t prows) {
  Plan p;
  p.rows = rows;
  p.panels = (sources + prows - 1) / prows;
  std::vector<std::array<int64_t, 3>> e = entries;
  std::stable_sort(e.begin(), e.end(), [&](auto& a, auto& b) {
    const int64_t ka = (a[1] / prows) * rows + a[0], kb = (b[1] / prows) * rows + b[0];
    return ka != kb ? ka < kb : a[1] < b[1];
  });
  p.ptr.assign(p.panels * rows + 1, 0);
  for (auto& x : e) p.ptr[(x[1] / prows) * rows + x[0] + 1]++;
  for (size_t i = 1; i < p.ptr.size(); ++i) p.ptr[i] += p.ptr[i - 1];
  for (auto& x : e) {
    p.src.push_back(int32_t(x[1]));
    p.perm.push_back(x[2]);
  }
  return p;
}

// The one-pass backward over the transposed plan T (rows = input features j, sources =
// output rows i), the whole batch of n = 16 NW columns in registers.
template <int NW>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void one_pass(const Plan& T, const float* vb,
                                                                                    const float* dy, const float* x,
                                                                                    float* dx, float* dw, int64_t ld) {
  for (int64_t pan = 0; pan < T.panels; ++pan) {
    const int64_t* ptr = T.ptr.data() + pan * T.rows;
    for (int64_t j = 0; j < T.rows; ++j) {
      const int64_t q0 = ptr[j], q1 = ptr[j + 1];
      float* o = dx + j * ld;
      if (q0 == q1) {
        if (pan == 0)
          for (int i = 0; i < NW; ++i) _mm512_storeu_ps(o + 16 * i, _mm512_setzero_ps());
        continue;
      }
      __m512 a[NW], xj[NW];
      for (int i = 0; i < NW; ++i) {
        a[i] = pan == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(o + 16 * i);
        xj[i] = _mm512_loadu_ps(x + j * ld + 16 * i);
      }
      for (int64_t q = q0; q < q1; ++q) {
        const __m512 w = _mm512_set1_ps(vb[q]);
        const float* g = dy + int64_t(T.src[q]) * ld;
        __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
        for (int i = 0; i < NW; i += 2) {
          const __m512 g0 = _mm512_loadu_ps(g + 16 * i);
          a[i] = _mm512_fmadd_ps(w, g0, a[i]);
          d0 = _mm512_fmadd_ps(g0, xj[i], d0);
          if (i + 1 < NW) {
            const __m512 g1 = _mm512_loadu_ps(g + 16 * (i + 1));
            a[i + 1] = _mm512_fmadd_ps(w, g1, a[i + 1]);
            d1 = _mm512_fmadd_ps(g1, xj[i + 1], d1);
          }
        }
        dw[T.perm[q]] = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
      }
      for (int i = 0; i < NW; ++i) _mm512_storeu_ps(o + 16 * i, a[i]);
    }
  }
}

// The weight gradient alone by the same transposed walk (x[j, :] in registers, one g
// row load per active weight): what a first layer, which has no input gradient, would
// gain from walking its transposed plan instead of `sampled_dots_block`.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void dots_transposed(
    const Plan& T, const float* dy, const float* x, float* dw, int64_t ld) {
  constexpr int NW = 8;
  for (int64_t pan = 0; pan < T.panels; ++pan) {
    const int64_t* ptr = T.ptr.data() + pan * T.rows;
    for (int64_t j = 0; j < T.rows; ++j) {
      __m256 xh[2 * NW];
      for (int i = 0; i < 2 * NW; ++i) xh[i] = _mm256_loadu_ps(x + j * ld + 8 * i);
      for (int64_t q = ptr[j]; q < ptr[j + 1]; ++q) {
        const float* g = dy + int64_t(T.src[q]) * ld;
        __m256 d = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < NW; ++i) {
          const __m512 gv = _mm512_loadu_ps(g + 16 * i);
          d = _mm256_fmadd_ps(_mm512_castps512_ps256(gv), xh[2 * i], d);
          d = _mm256_fmadd_ps(_mm512_extractf32x8_ps(gv, 1), xh[2 * i + 1], d);
        }
        const __m256 p = _mm256_add_ps(d, _mm256_permute_ps(d, 0xB1));
        const __m256 r = _mm256_add_ps(p, _mm256_permute_ps(p, 0x4E));
        dw[T.perm[q]] = _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1)));
      }
    }
  }
}

// The definition, one entry at a time.
float dot_exact(const float* g, const float* x, int64_t n) {
  float l[8] = {};
  int64_t b = 0;
  for (; b + 8 <= n; b += 8)
    for (int c = 0; c < 8; ++c) l[c] = std::fma(g[b + c], x[b + c], l[c]);
  float s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  for (; b < n; ++b) s = std::fma(g[b], x[b], s);
  return s;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class F>
double best(F f, int reps = 300) {
  for (int i = 0; i < 10; ++i) f();
  double b = 1e9;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    f();
    b = std::min(b, now() - t0);
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t out = argc > 2 ? atoll(argv[1]) : 788, in = argc > 2 ? atoll(argv[2]) : 788, n = 128;
  if (!one_pass_fits(n)) {
    std::fprintf(stderr, "this CPU has no AVX-512: the one pass does not run here\n");
    return 2;
  }
  at::set_num_threads(1);
  int64_t ld = (n + 7) / 8 * 8;
  if (ld % 64 == 0) ld += 8;  // as the fused step lays out its buffers
  std::mt19937 rng(7);
  std::normal_distribution<float> N(0.f, 1.f);
  std::vector<float> x(in * ld), dy(out * ld);
  for (auto& v : x) v = N(rng);
  for (auto& v : dy) v = N(rng);
  at::Tensor Wd = at::randn({out, in}), Xd = at::randn({in, n}), Gd = at::randn({out, n});

  std::printf("one core, W %lld x %lld, batch %lld; min of 300 calls; GFLOP/s = 4 flops per active weight and column\n",
              (long long)out, (long long)in, (long long)n);
  const double mkl = best([&] {
    at::mm(Wd.t(), Gd);   // dX = W^T dY
    at::mm(Gd, Xd.t());   // dW = dY X^T
  });
  std::printf("MKL dense backward (two sgemm): %.3f ms, %.1f GFLOP/s\n\n", mkl * 1e3, 4.0 * out * in * n / mkl / 1e9);
  std::printf("density   two passes: ms = spmm + dots  GF/s   one pass ms  GF/s  one/two   bits off dX, dW two, dW one     "
              "dots transposed ms, /dots   16-lane sums ms  GF/s (panel rows)\n");
  auto flops = [&](int64_t nnz) { return 4.0 * nnz * n; };
  for (double density : {0.01, 0.05, 0.1, 0.25, 0.5}) {
    std::vector<std::array<int64_t, 3>> fw, bw;  // (row, source, CSR index)
    std::bernoulli_distribution keep(density);
    std::vector<float> values;
    for (int64_t i = 0; i < out; ++i)
      for (int64_t j = 0; j < in; ++j)
        if (keep(rng)) {
          const int64_t k = values.size();
          values.push_back(N(rng));
          fw.push_back({i, j, k});
          bw.push_back({j, i, k});
        }
    const int64_t nnz = values.size();
    auto prows = [&](int64_t sources) {  // panel_rows of src/compute/mod.rs
      const int64_t want = std::min<int64_t>(int64_t(std::ceil(12.0 / density)), sources);
      return std::min<int64_t>(std::max<int64_t>(want, 64), sources);
    };
    const Plan F = plan(fw, out, in, prows(in)), Bk = plan(bw, in, out, prows(out));
    std::vector<float> vb(nnz);
    for (int64_t q = 0; q < nnz; ++q) vb[q] = values[Bk.perm[q]];
    std::vector<float> dx1(in * ld), dw1(nnz), dx2(in * ld), dw2(nnz);
    const double two = best([&] {
      spmm_block(Bk.view(), vb.data(), dy.data(), dx1.data(), 0, in, n, ld);
      sampled_dots_block(F.view(), dy.data(), x.data(), dw1.data(), F.perm.data(), 0, out, n, ld);
    });
    // The one pass with panels of 32, 64, 128 rows of dY (16, 32, 64 KB) or none.
    double one = 1e9;
    int64_t one_rows = 0;
    for (int64_t pr : {int64_t(32), int64_t(64), int64_t(128), out}) {
      const Plan T = plan(bw, in, out, pr);
      std::vector<float> vt(nnz);
      for (int64_t q = 0; q < nnz; ++q) vt[q] = values[T.perm[q]];
      const double t = best([&] { one_pass<8>(T, vt.data(), dy.data(), x.data(), dx2.data(), dw2.data(), ld); });
      if (t < one) {
        one = t;
        one_rows = pr;
      }
    }
    // kernels.h's one pass (what training runs), with the plan's own panels.
    std::vector<float> dx3(in * ld), dw3(nnz);
    const double exact =
        best([&] { backward_one_pass(Bk.view(), vb.data(), dy.data(), x.data(), dx3.data(), dw3.data(), Bk.perm.data(), 0, in, n, ld); });
    const double dots_t = best([&] { dots_transposed(Bk, dy.data(), x.data(), dw3.data(), ld); });
    const double dots_two = best([&] { sampled_dots_block(F.view(), dy.data(), x.data(), dw1.data(), F.perm.data(), 0, out, n, ld); });
    const double spmm_two = best([&] { spmm_block(Bk.view(), vb.data(), dy.data(), dx1.data(), 0, in, n, ld); });
    backward_one_pass(Bk.view(), vb.data(), dy.data(), x.data(), dx3.data(), dw3.data(), Bk.perm.data(), 0, in, n, ld);
    int64_t off_one = 0, off_two = 0, off_dx = 0;
    for (int64_t k = 0; k < nnz; ++k) {
      const float want = dot_exact(dy.data() + fw[k][0] * ld, x.data() + fw[k][1] * ld, n);
      off_one += dw3[k] != want;
      off_two += dw1[k] != want;
    }
    for (int64_t j = 0; j < in; ++j)
      for (int64_t c = 0; c < n; ++c) off_dx += dx3[j * ld + c] != dx1[j * ld + c];
    std::printf("%7.2f   %6.3f = %5.3f + %5.3f %5.1f   %9.3f %5.1f   %5.2f    %lld, %lld, %lld of %lld    "
                "%6.3f %5.2f    %6.3f %5.1f (%4lld)\n",
                density, two * 1e3, spmm_two * 1e3, dots_two * 1e3, flops(nnz) / two / 1e9, exact * 1e3,
                flops(nnz) / exact / 1e9, exact / two, (long long)off_dx, (long long)off_two, (long long)off_one,
                (long long)nnz, dots_t * 1e3, dots_t / dots_two, one * 1e3, flops(nnz) / one / 1e9, (long long)one_rows);
  }
  return 0;
}
