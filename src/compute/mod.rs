//! Compact sparse kernels: a sparse linear layer that costs what its active weights
//! cost. The CPU kernel is a libtorch autograd function in C++
//! (`sparse_linear.cpp`, compiled by build.rs against the same libtorch headers),
//! because tch cannot define custom autograd functions; libtorch's own sparse CSR
//! matmul was measured and rejected (no faster than the dense product even at 1%
//! density for a 788 x 788 layer at batch 128; see benches/NOTES.md).
use crate::error::{Error, Result};
use std::ffi::{c_char, c_void, CStr};
use tch::{Device, Kind, Tensor};

extern "C" {
    fn sparselab_sparse_linear(
        out: *mut *mut c_void,
        x: *const c_void,
        values: *const c_void,
        rowptr: *const c_void,
        col: *const c_void,
        cscptr: *const c_void,
        cscrow: *const c_void,
        cscperm: *const c_void,
    ) -> *mut c_char;
    fn free(p: *mut c_void);
}

/// The index structure of a fixed mask: CSR (row pointers and column indices, in
/// row-major order, which is the order of the compact values) plus its transpose
/// (CSC pointers, row indices and the permutation into the values).
///
/// A plan may hold several masks of the same shape as one block-diagonal matrix
/// ([`CsrPlan::from_blocks`]): member `e`'s rows and columns are offset by `e * out`
/// and `e * in`, so one kernel call multiplies every member of an ensemble by its own
/// weights, and the values are the members' compact values one after another.
#[derive(Debug)]
pub struct CsrPlan {
    /// `[out, in]` of one block.
    pub shape: [i64; 2],
    /// Blocks on the diagonal (1 for a single layer).
    pub blocks: i64,
    rowptr: Tensor,
    col: Tensor,
    cscptr: Tensor,
    cscrow: Tensor,
    cscperm: Tensor,
    /// Flat positions `(block * out + row) * in + col` of the active entries, in value order (CPU).
    pub flat: Tensor,
    /// `flat` on the last non-CPU device used.
    flat_device: Option<Tensor>,
}

impl CsrPlan {
    /// The plan of a 0/1 mask `[out, in]` (any device; the plan lives on the CPU).
    pub fn from_mask(mask: &Tensor) -> Self {
        let mut plan = Self::from_blocks(&mask.unsqueeze(0));
        plan.blocks = 1;
        plan
    }

    /// The block-diagonal plan of `E` masks `[E, out, in]`: `dense` and `gather` then
    /// work on `[E, out, in]` weights, and `linear` maps `[B, E * in]` to `[B, E * out]`.
    pub fn from_blocks(masks: &Tensor) -> Self {
        let _guard = tch::no_grad_guard();
        let size = masks.size();
        let (blocks, out, inp) = (size[0], size[1], size[2]);
        let nz = masks.to_device(Device::Cpu).nonzero(); // [nnz, 3], row-major order
        let (e, r, c) = (nz.select(1, 0), nz.select(1, 1), nz.select(1, 2));
        let rows = (&e * out + r).contiguous();
        let cols = (&e * inp + &c).contiguous();
        let pointers = |idx: &Tensor, n: i64| Tensor::cat(&[Tensor::zeros([1], (Kind::Int64, Device::Cpu)), idx.bincount(None::<Tensor>, n).cumsum(0, Kind::Int64)], 0);
        let flat = &rows * inp + c;
        let cscperm = (&cols * (blocks * out) + &rows).argsort(0, false);
        Self {
            shape: [out, inp],
            blocks,
            rowptr: pointers(&rows, blocks * out),
            cscptr: pointers(&cols, blocks * inp),
            cscrow: rows.index_select(0, &cscperm),
            cscperm,
            col: cols,
            flat,
            flat_device: None,
        }
    }

    /// Where each block's values start in the compact values, plus the total (`blocks + 1` entries).
    pub fn offsets(&self) -> Vec<i64> {
        let rowptr = Vec::<i64>::try_from(&self.rowptr).unwrap_or_default();
        (0..=self.blocks as usize).map(|e| rowptr.get(e * self.shape[0] as usize).copied().unwrap_or(0)).collect()
    }

    /// Active entries.
    pub fn nnz(&self) -> i64 {
        self.flat.size()[0]
    }

    fn flat_on(&mut self, device: Device) -> Tensor {
        if device == Device::Cpu {
            return self.flat.shallow_clone();
        }
        match &self.flat_device {
            Some(f) if f.device() == device => f.shallow_clone(),
            _ => {
                let f = self.flat.to_device(device);
                self.flat_device = Some(f.shallow_clone());
                f
            }
        }
    }

    /// The dense `[out, in]` matrix with `values` at the active positions and zeros
    /// elsewhere; differentiable with respect to `values`.
    /// (`[E, out, in]` for a block plan.)
    pub fn dense(&mut self, values: &Tensor) -> Tensor {
        let [out, inp] = self.shape;
        let flat = self.flat_on(values.device());
        let w = values.new_zeros([self.blocks * out * inp], (values.kind(), values.device())).index_put(&[Some(flat)], values, false);
        if self.blocks == 1 { w.view([out, inp]) } else { w.view([self.blocks, out, inp]) }
    }

    /// The compact values of a dense `[out, in]` (or `[E, out, in]`) matrix (entries at the active positions).
    pub fn gather(&mut self, dense: &Tensor) -> Tensor {
        let flat = self.flat_on(dense.device());
        dense.reshape([-1]).index_select(0, &flat)
    }

    /// `xs [B, in] -> [B, out]` with the compact `values` as the weight (a block plan:
    /// `[B, E * in] -> [B, E * out]`, member `e` owning columns `e * in ..`). On the CPU (float32)
    /// this is the compact kernel; elsewhere the dense matrix is materialised and multiplied.
    ///
    /// # Errors
    /// A shape or dtype the layer does not accept.
    pub fn linear(&mut self, xs: &Tensor, values: &Tensor) -> Result<Tensor> {
        if xs.device() != Device::Cpu || xs.kind() != Kind::Float {
            let w = self.dense(values);
            if self.blocks == 1 {
                return xs.f_linear(&w, None::<Tensor>).map_err(Error::from);
            }
            let [out, inp] = self.shape;
            let b = xs.size()[0];
            let y = xs.f_view([b, self.blocks, inp])?.f_transpose(0, 1)?.f_bmm(&w.f_transpose(1, 2)?)?;
            return Ok(y.f_transpose(0, 1)?.f_reshape([b, self.blocks * out])?);
        }
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: every pointer is a live tensor handle for the duration of the call; on
        // success `out` is a new handle that the returned Tensor owns and frees.
        unsafe {
            let err = sparselab_sparse_linear(
                &mut out,
                xs.as_ptr().cast(),
                values.as_ptr().cast(),
                self.rowptr.as_ptr().cast(),
                self.col.as_ptr().cast(),
                self.cscptr.as_ptr().cast(),
                self.cscrow.as_ptr().cast(),
                self.cscperm.as_ptr().cast(),
            );
            if !err.is_null() {
                let msg = CStr::from_ptr(err).to_string_lossy().lines().next().unwrap_or("").to_string();
                free(err.cast());
                return Err(Error::Shape(msg));
            }
            Ok(Tensor::from_ptr(out.cast()))
        }
    }
}
