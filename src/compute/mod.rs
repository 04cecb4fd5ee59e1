//! Compact sparse kernels: a sparse linear layer that costs what its active weights
//! cost. The CPU kernel is a libtorch autograd function in C++
//! (`sparse_linear.cpp`, compiled by build.rs against the same libtorch headers),
//! because tch cannot define custom autograd functions; libtorch's own sparse CSR
//! matmul was measured and rejected (no faster than the dense product even at 1%
//! density for a 788 x 788 layer at batch 128; see benches/NOTES.md).
use crate::error::{Error, Result};
use std::ffi::{c_char, c_void, CStr};
use tch::{Device, Kind, Tensor};

mod fused;
pub use fused::{FusedLayer, FusedMlp};

/// The message of a C++ exception returned by our kernels (allocated with malloc), freed.
///
/// # Safety
/// `err` is null or a malloc'ed NUL-terminated string that nothing else owns.
pub(crate) unsafe fn take_error(err: *mut c_char) -> Option<String> {
    if err.is_null() {
        return None;
    }
    let msg = CStr::from_ptr(err).to_string_lossy().lines().next().unwrap_or("").to_string();
    free(err.cast());
    Some(msg)
}

extern "C" {
    fn sparselab_sparse_linear(out: *mut *mut c_void, x: *const c_void, values: *const c_void, plan: *const *const c_void, rows: i64, cols: i64, blocks: i64) -> *mut c_char;
    fn free(p: *mut c_void);
}

/// Source rows per panel: a panel of this many rows times a 64-float batch chunk is
/// 16 KB, which stays in L1 while the kernel walks every output row through it
/// (benches/NOTES.md item 7). Sparser layers get wider panels so that a row still
/// finds about a dozen entries in each.
fn panel_rows(density: f64, sources: i64) -> i64 {
    let want = (12.0 / density.max(1e-9)).ceil().min(sources as f64) as i64;
    want.max(64).min(sources.max(1))
}

/// The kernel's view of a mask: its entries grouped by panels of source rows.
/// `ptr [blocks * panels * rows + 1]` (int64) delimits the entries of each (block,
/// panel, row), `src [nnz]` (int32) is each entry's source row (global over blocks),
/// and `perm [nnz]` (int64) the index of its value in CSR order.
#[derive(Debug)]
struct Panels {
    ptr: Tensor,
    src: Tensor,
    perm: Tensor,
}

impl Panels {
    /// `rows`/`sources` per block; entry i (CSR order) is block `e[i]`, row `r[i]`, source `s[i]` (local).
    fn new(e: &Tensor, r: &Tensor, s: &Tensor, blocks: i64, rows: i64, sources: i64, density: f64) -> Self {
        let p = panel_rows(density, sources);
        let per_block = (sources + p - 1) / p;
        let key = (e * per_block + s.floor_divide_scalar(p)) * rows + r;
        // Stable: entries of one (block, panel, row) keep CSR order, so sums run in
        // ascending source order whatever the panel size.
        let (_, perm) = key.sort_stable(true, 0, false);
        let n = blocks * per_block * rows;
        let ptr = Tensor::cat(&[Tensor::zeros([1], (Kind::Int64, Device::Cpu)), key.bincount(None::<Tensor>, n).cumsum(0, Kind::Int64)], 0);
        let src = (e * sources + s).index_select(0, &perm).to_kind(Kind::Int).contiguous();
        Self { ptr, src, perm }
    }
}

/// The index structure of a fixed mask, for the compact kernel: its active entries
/// grouped by panels of input features (forward and weight gradient) and by panels of
/// output features (input gradient), plus their flat positions (to materialise or
/// gather a dense matrix). The compact values are kept in row-major (CSR) order.
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
    fwd: Panels,
    bwd: Panels,
    /// CSR row pointers over all `blocks * out` rows.
    rowptr: Tensor,
    /// Where each block's values start, plus the total.
    starts: Vec<i64>,
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
        let (e, r, c) = (nz.select(1, 0).contiguous(), nz.select(1, 1).contiguous(), nz.select(1, 2).contiguous());
        let nnz = e.size()[0];
        let density = nnz as f64 / (blocks * out * inp).max(1) as f64;
        let counts = Vec::<i64>::try_from(e.bincount(None::<Tensor>, blocks)).unwrap_or_default();
        let starts = std::iter::once(0).chain(counts.iter().scan(0, |acc, k| {
            *acc += k;
            Some(*acc)
        })).collect();
        let rows = &e * out + &r;
        let rowptr = Tensor::cat(&[Tensor::zeros([1], (Kind::Int64, Device::Cpu)), rows.bincount(None::<Tensor>, blocks * out).cumsum(0, Kind::Int64)], 0);
        Self {
            shape: [out, inp],
            blocks,
            rowptr,
            fwd: Panels::new(&e, &r, &c, blocks, out, inp, density),
            bwd: Panels::new(&e, &c, &r, blocks, inp, out, density),
            starts,
            flat: rows * inp + &c,
            flat_device: None,
        }
    }

    /// Where each block's values start in the compact values, plus the total (`blocks + 1` entries).
    pub fn offsets(&self) -> Vec<i64> {
        self.starts.clone()
    }

    /// The index tensors the C++ kernels take: forward panels (ptr, src, perm),
    /// input-gradient panels (ptr, src, perm) and the CSR row pointers.
    pub(crate) fn kernel_tensors(&self) -> [Tensor; 7] {
        self.index_tensors().map(Tensor::shallow_clone)
    }

    fn index_tensors(&self) -> [&Tensor; 7] {
        [&self.fwd.ptr, &self.fwd.src, &self.fwd.perm, &self.bwd.ptr, &self.bwd.src, &self.bwd.perm, &self.rowptr]
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
        // The C++ side reads the first six (the panels), not the row pointers.
        let plan = self.index_tensors().map(|t| t.as_ptr() as *const c_void);
        let [out_f, in_f] = self.shape;
        // SAFETY: every pointer is a live tensor handle for the duration of the call; on
        // success `out` is a new handle that the returned Tensor owns and frees.
        unsafe {
            let err = sparselab_sparse_linear(&mut out, xs.as_ptr().cast(), values.as_ptr().cast(), plan.as_ptr(), self.blocks * out_f, self.blocks * in_f, self.blocks);
            if let Some(msg) = take_error(err) {
                return Err(Error::Shape(msg));
            }
            Ok(Tensor::from_ptr(out.cast()))
        }
    }
}
