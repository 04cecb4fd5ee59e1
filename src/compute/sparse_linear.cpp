// Sparse linear layer y = x W^T for a fixed random mask, with W stored as the
// compact values of its active entries (CSR order) and exact gradients:
//   forward  y^T[o, :] = sum_{j in row o} v[j] x^T[col[j], :]
//   dx       dx^T[k, :] = sum_{j in column k} v[j] g^T[row(j), :]
//   dv       dv[j]      = <g^T[row(j), :], x^T[col[j], :]>          (only active entries)
// Each active weight costs 3 x 2 x B flops, like its share of the dense product, and
// the inner loops run over the batch, contiguous in the transposed layout. Outputs
// are returned as transposed views, so a stack of these layers (with elementwise
// ops in between) never copies: x.t() of the previous output is already contiguous.
//
// The kernels themselves (panel blocking, register blocks) are in kernels.h. Every
// sum has a fixed order, so results do not depend on the thread count. Built by
// build.rs (cc) against the libtorch headers; called from src/compute/mod.rs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels.h"

namespace {
using namespace sparselab;

void spmm_rows(const Panels& P, const float* v, const float* x, float* out, int64_t r0, int64_t r1, int64_t B) {
  per_block(P, r0, r1, [&](const Panels& b, int64_t base, int64_t lo, int64_t hi) { spmm_block(b, v, x, out + base * B, lo, hi, B, B); });
}

void sampled_dots(const Panels& P, const float* g, const float* x, float* dv, const int64_t* perm, int64_t r0, int64_t r1,
                  int64_t B) {
  per_block(P, r0, r1, [&](const Panels& b, int64_t base, int64_t lo, int64_t hi) {
    sampled_dots_block(b, g + base * B, x, dv, perm, lo, hi, B, B);
  });
}

// v[perm[q]] for every q (libtorch's index_select costs a third of a kernel call here).
at::Tensor gather(const at::Tensor& v, const at::Tensor& perm) {
  auto out = at::empty({perm.numel()}, v.options());
  const float* vp = v.data_ptr<float>();
  const int64_t* pp = perm.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, perm.numel(), 1 << 16, [&](int64_t a, int64_t b) {
    for (int64_t q = a; q < b; ++q) op[q] = vp[pp[q]];
  });
  return out;
}

// `rows` rows in total, in `blocks` blocks.
Panels panels(const at::Tensor& ptr, const at::Tensor& src, int64_t rows, int64_t blocks) {
  return Panels::of(ptr.data_ptr<int64_t>(), ptr.numel(), src.data_ptr<int32_t>(), rows / blocks, blocks);
}

// [rows, B] = the panel product of the values `v` (panel order) with the source rows of `x`.
at::Tensor spmm(const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& v, const at::Tensor& x, int64_t rows,
                int64_t blocks) {
  const int64_t B = x.size(1);
  auto out = at::empty({rows, B}, x.options());
  const Panels P = panels(ptr, src, rows, blocks);
  const float* vp = v.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, grain(rows, src.numel(), B), [&](int64_t r0, int64_t r1) { spmm_rows(P, vp, xp, op, r0, r1, B); });
  return out;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The plan's tensors, in the order sparselab_sparse_linear receives them.
enum Plan { FwdPtr, FwdSrc, FwdPerm, BwdPtr, BwdSrc, BwdPerm, PlanLen };

struct SparseLinearFn : public torch::autograd::Function<SparseLinearFn> {
  // x [B, in], values [nnz] (CSR order); forward panels over the input features
  // (FwdPtr [blocks * panels * out/blocks + 1], FwdSrc [nnz] int32 input feature,
  // FwdPerm [nnz] value index) and input-gradient panels over the output features
  // (Bwd*, rows = in). `out` and `in` count every block.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& values, const at::Tensor& fptr,
                            const at::Tensor& fsrc, const at::Tensor& fperm, const at::Tensor& bptr,
                            const at::Tensor& bsrc, const at::Tensor& bperm, int64_t out, int64_t in, int64_t blocks) {
    // Every size the kernels rely on, once per call (the plan's index ranges were
    // verified when it was built).
    TORCH_CHECK(blocks > 0 && out > 0 && in > 0 && out % blocks == 0 && in % blocks == 0, "sparse linear: ", out, " x ", in,
                " is not ", blocks, " blocks of positive sizes");
    TORCH_CHECK(x.dim() == 2, "sparse linear: input must be [batch, in], got ", x.sizes());
    TORCH_CHECK(x.scalar_type() == at::kFloat && values.scalar_type() == at::kFloat,
                "sparse linear: float32 only, got ", x.scalar_type(), " input and ", values.scalar_type(), " values");
    TORCH_CHECK(x.device().is_cpu() && values.device().is_cpu(), "sparse linear: the compact kernel runs on the CPU");
    TORCH_CHECK(x.size(1) == in, "sparse linear: input has ", x.size(1), " features, layer expects ", in);
    const int64_t nnz = fperm.numel();
    TORCH_CHECK(values.dim() == 1 && values.size(0) == nnz, "sparse linear: values ", values.sizes(), " != plan nnz ", nnz);
    check_panels("sparse linear: forward", fptr, fsrc, fperm, out, nnz);
    check_panels("sparse linear: input-gradient", bptr, bsrc, bperm, in, nnz);
    auto xt = x.t().contiguous();
    auto v = values.contiguous();
    auto yt = spmm(fptr, fsrc, gather(v, fperm), xt, out, blocks);
    ctx->save_for_backward({xt, v, fptr, fsrc, fperm, bptr, bsrc, bperm});
    ctx->saved_data["out"] = out;
    ctx->saved_data["in"] = in;
    ctx->saved_data["blocks"] = blocks;
    return yt.t();
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &xt = s[0], &v = s[1], &fptr = s[2], &fsrc = s[3], &fperm = s[4], &bptr = s[5], &bsrc = s[6], &bperm = s[7];
    const int64_t out = ctx->saved_data["out"].toInt(), in = ctx->saved_data["in"].toInt();
    const int64_t blocks = ctx->saved_data["blocks"].toInt();
    TORCH_CHECK(grads[0].defined() && grads[0].dim() == 2 && grads[0].size(0) == xt.size(1) && grads[0].size(1) == out &&
                    grads[0].scalar_type() == at::kFloat && grads[0].device().is_cpu(),
                "sparse linear: output gradient must be float32 [", xt.size(1), ", ", out, "] on the CPU");
    auto gt = grads[0].t().contiguous();  // [out, B]
    const int64_t rows = gt.size(0), B = gt.size(1);
    at::Tensor dx, dv;
    if (ctx->needs_input_grad(0) && ctx->needs_input_grad(1) && one_pass_fits(B)) {
      // Both in one pass over the nonzeros (kernels.h: the same bits as the two below).
      auto dxt = at::empty({in, B}, gt.options());
      dv = at::empty_like(v);
      const auto vb = gather(v, bperm);
      const Panels T = panels(bptr, bsrc, in, blocks);
      const float *gp = gt.data_ptr<float>(), *xp = xt.data_ptr<float>(), *vp = vb.data_ptr<float>();
      const int64_t* pp = bperm.data_ptr<int64_t>();
      float *dxp = dxt.data_ptr<float>(), *dp = dv.data_ptr<float>();
      at::parallel_for(0, in, grain(in, bsrc.numel(), B), [&](int64_t r0, int64_t r1) {
        per_block(T, r0, r1, [&](const Panels& b, int64_t base, int64_t lo, int64_t hi) {
          backward_one_pass(b, vp, gp, xp + base * B, dxp + base * B, dp, pp, lo, hi, B, B);
        });
      });
      dx = dxt.t();
    }
    if (ctx->needs_input_grad(0) && !dx.defined()) dx = spmm(bptr, bsrc, gather(v, bperm), gt, in, blocks).t();
    if (ctx->needs_input_grad(1) && !dv.defined()) {
      dv = at::empty_like(v);
      const Panels P = panels(fptr, fsrc, rows, blocks);
      const float* gp = gt.data_ptr<float>();
      const float* xp = xt.data_ptr<float>();
      const int64_t* pp = fperm.data_ptr<int64_t>();
      float* dp = dv.data_ptr<float>();
      at::parallel_for(0, rows, grain(rows, fsrc.numel(), B),
                       [&](int64_t r0, int64_t r1) { sampled_dots(P, gp, xp, dp, pp, r0, r1, B); });
    }
    return {dx, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

// Returns null and sets *out (a new tensor handle, owned by the caller), or returns
// an error message allocated with malloc (the caller frees it). `plan` points to the
// PlanLen tensors of enum Plan.
extern "C" char* sparselab_sparse_linear(at::Tensor** out, const at::Tensor* x, const at::Tensor* values,
                                        const at::Tensor* const* plan, int64_t rows, int64_t cols, int64_t blocks) {
  try {
    *out = new at::Tensor(SparseLinearFn::apply(*x, *values, *plan[FwdPtr], *plan[FwdSrc], *plan[FwdPerm], *plan[BwdPtr],
                                                *plan[BwdSrc], *plan[BwdPerm], rows, cols, blocks));
    return nullptr;
  } catch (const std::exception& e) {
    return error_string(e.what());
  }
}
