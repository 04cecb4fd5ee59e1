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
pub use fused::{fused_gemm, kernels_cloned, kernels_wide, FusedLayer, FusedMlp};

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

    /// What the kernels assume without looking: `ptr` delimits `rows` rows (all blocks)
    /// per panel, starting at 0, never decreasing and ending at `nnz`; every source is
    /// a row of the `sources` (all blocks) the kernel reads; `perm` is a permutation of
    /// the values. O(nnz), once per plan; the C++ entry points then check sizes only.
    fn verify(&self, what: &str, rows: i64, sources: i64, nnz: i64) -> Result<()> {
        let n = self.ptr.numel() as i64;
        if n < rows + 1 || (n - 1) % rows != 0 {
            return Err(Error::Shape(format!("compact plan: {what} panels have {n} row pointers for {rows} rows")));
        }
        verify_ptr(&format!("{what} panel pointers"), &self.ptr, nnz)?;
        verify_range(&format!("{what} sources"), &self.src, nnz, sources)?;
        verify_range(&format!("{what} permutation"), &self.perm, nnz, nnz)?;
        if nnz > 0 && self.perm.f_bincount(None::<Tensor>, nnz)?.f_max()?.int64_value(&[]) != 1 {
            return Err(Error::Shape(format!("compact plan: {what} permutation repeats an entry")));
        }
        Ok(())
    }
}

/// `t` is `[len]` with every entry in `0..bound`.
fn verify_range(what: &str, t: &Tensor, len: i64, bound: i64) -> Result<()> {
    if t.size() != [len] {
        return Err(Error::Shape(format!("compact plan: {what} {:?} != [{len}]", t.size())));
    }
    if len > 0 {
        let (lo, hi) = (t.f_min()?.int64_value(&[]), t.f_max()?.int64_value(&[]));
        if lo < 0 || hi >= bound {
            return Err(Error::Shape(format!("compact plan: {what} span {lo}..={hi}, outside 0..{bound}")));
        }
    }
    Ok(())
}

/// `ptr` starts at 0, never decreases and ends at `total`.
fn verify_ptr(what: &str, ptr: &Tensor, total: i64) -> Result<()> {
    let n = ptr.numel() as i64;
    let (first, last) = (ptr.int64_value(&[0]), ptr.int64_value(&[n - 1]));
    let step = if n > 1 { (ptr.f_narrow(0, 1, n - 1)? - ptr.f_narrow(0, 0, n - 1)?).f_min()?.int64_value(&[]) } else { 0 };
    if first != 0 || last != total || step < 0 {
        return Err(Error::Shape(format!("compact plan: {what} run {first}..{last} (smallest step {step}), expected 0..{total} ascending")));
    }
    Ok(())
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
///
/// A plan is only built by its constructors, which verify every index range once
/// (`Panels::verify`); its tensors are never handed out to be changed, so the C++
/// kernels, which trust those ranges, only need to check sizes on each call.
#[derive(Debug)]
pub struct CsrPlan {
    /// `[out, in]` of one block.
    shape: [i64; 2],
    /// Blocks on the diagonal (1 for a single layer).
    blocks: i64,
    fwd: Panels,
    bwd: Panels,
    /// CSR row pointers over all `blocks * out` rows.
    rowptr: Tensor,
    /// Where each block's values start, plus the total.
    starts: Vec<i64>,
    /// Flat positions `(block * out + row) * in + col` of the active entries, in value order (CPU).
    flat: Tensor,
    /// `flat` on the last non-CPU device used.
    flat_device: Option<Tensor>,
}

impl CsrPlan {
    /// The plan of a 0/1 mask `[out, in]` (any kind, any device; the plan lives on the CPU).
    ///
    /// # Errors
    /// A mask that is not 2-D with positive sizes, or too large for the kernel's
    /// 32-bit source rows.
    pub fn from_mask(mask: &Tensor) -> Result<Self> {
        let size = mask.size();
        if size.len() != 2 || size.iter().any(|&d| d < 1) {
            return Err(Error::Shape(format!("compact plan: mask {size:?} is not [out, in] with positive sizes")));
        }
        Self::from_blocks(&mask.f_unsqueeze(0)?)
    }

    /// The block-diagonal plan of `E` masks `[E, out, in]`: `dense` and `gather` then
    /// work on `[E, out, in]` weights, and `linear` maps `[B, E * in]` to `[B, E * out]`.
    ///
    /// # Errors
    /// Masks that are not 3-D with positive sizes, or too large for the kernel's 32-bit
    /// source rows.
    pub fn from_blocks(masks: &Tensor) -> Result<Self> {
        let _guard = tch::no_grad_guard();
        let size = masks.size();
        let [blocks, out, inp] = size[..] else {
            return Err(Error::Shape(format!("compact plan: masks {size:?} are not [blocks, out, in]")));
        };
        if blocks < 1 || out < 1 || inp < 1 {
            return Err(Error::Shape(format!("compact plan: masks {size:?} must have positive sizes")));
        }
        if blocks.checked_mul(out.max(inp)).is_none_or(|n| n > i64::from(i32::MAX)) {
            return Err(Error::Shape(format!("compact plan: masks {size:?} have more than {} rows or columns in all", i32::MAX)));
        }
        let nz = masks.f_to_device(Device::Cpu)?.f_nonzero()?; // [nnz, 3], row-major order
        let (e, r, c) = (nz.select(1, 0).contiguous(), nz.select(1, 1).contiguous(), nz.select(1, 2).contiguous());
        let nnz = e.size()[0];
        let density = nnz as f64 / (blocks * out * inp) as f64;
        let counts = Vec::<i64>::try_from(e.f_bincount(None::<Tensor>, blocks)?)?;
        let starts = std::iter::once(0)
            .chain(counts.iter().scan(0, |acc, k| {
                *acc += k;
                Some(*acc)
            }))
            .collect();
        let rows = &e * out + &r;
        let rowptr = Tensor::cat(&[Tensor::zeros([1], (Kind::Int64, Device::Cpu)), rows.bincount(None::<Tensor>, blocks * out).cumsum(0, Kind::Int64)], 0);
        let plan = Self {
            shape: [out, inp],
            blocks,
            rowptr,
            fwd: Panels::new(&e, &r, &c, blocks, out, inp, density),
            bwd: Panels::new(&e, &c, &r, blocks, inp, out, density),
            starts,
            flat: rows * inp + &c,
            flat_device: None,
        };
        plan.verify()?;
        Ok(plan)
    }

    /// Every index range the kernels trust (see [`CsrPlan`]).
    fn verify(&self) -> Result<()> {
        let ([out, inp], blocks, nnz) = (self.shape, self.blocks, self.nnz());
        self.fwd.verify("forward", blocks * out, blocks * inp, nnz)?;
        self.bwd.verify("input-gradient", blocks * inp, blocks * out, nnz)?;
        if self.rowptr.size() != [blocks * out + 1] {
            return Err(Error::Shape(format!("compact plan: row pointers {:?} != [{}]", self.rowptr.size(), blocks * out + 1)));
        }
        verify_ptr("row pointers", &self.rowptr, nnz)?;
        verify_range("flat positions", &self.flat, nnz, blocks * out * inp)?;
        if self.starts.len() as i64 != blocks + 1 || self.starts.last() != Some(&nnz) {
            return Err(Error::Shape(format!("compact plan: block offsets {:?} do not end at {nnz} after {blocks} blocks", self.starts)));
        }
        Ok(())
    }

    /// `[out, in]` of one block.
    pub fn shape(&self) -> [i64; 2] {
        self.shape
    }

    /// Blocks on the diagonal (1 for a single layer, `E` for an ensemble's layer).
    pub fn blocks(&self) -> i64 {
        self.blocks
    }

    /// Where each block's values start in the compact values, plus the total (`blocks + 1` entries).
    pub fn offsets(&self) -> Vec<i64> {
        self.starts.clone()
    }

    /// The index tensors the C++ kernels take: forward panels (ptr, src, perm),
    /// input-gradient panels (ptr, src, perm) and the CSR row pointers. Shallow
    /// clones: the crate only passes them to the kernels, never changes them.
    pub(crate) fn kernel_tensors(&self) -> [Tensor; 7] {
        self.index_tensors().map(Tensor::shallow_clone)
    }

    fn index_tensors(&self) -> [&Tensor; 7] {
        [&self.fwd.ptr, &self.fwd.src, &self.fwd.perm, &self.bwd.ptr, &self.bwd.src, &self.bwd.perm, &self.rowptr]
    }

    /// Flat positions `(block * out + row) * in + col` of the active entries, in value
    /// order (CPU int64).
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// Active entries (all blocks).
    pub fn nnz(&self) -> i64 {
        self.flat.size()[0]
    }

    /// `values` is `[nnz]`.
    fn check_values(&self, what: &str, values: &Tensor) -> Result<()> {
        if values.size() != [self.nnz()] {
            return Err(Error::Shape(format!("{what}: values {:?} != plan nnz {}", values.size(), self.nnz())));
        }
        Ok(())
    }

    /// The dense shape: `[out, in]`, or `[E, out, in]` for a block plan.
    fn dense_shape(&self) -> Vec<i64> {
        let [out, inp] = self.shape;
        if self.blocks == 1 {
            vec![out, inp]
        } else {
            vec![self.blocks, out, inp]
        }
    }

    fn flat_on(&mut self, device: Device) -> Result<Tensor> {
        if device == Device::Cpu {
            return Ok(self.flat.shallow_clone());
        }
        match &self.flat_device {
            Some(f) if f.device() == device => Ok(f.shallow_clone()),
            _ => {
                let f = self.flat.f_to_device(device)?;
                self.flat_device = Some(f.shallow_clone());
                Ok(f)
            }
        }
    }

    /// values: `[nnz]` -> the dense `[out, in]` matrix (`[E, out, in]` for a block
    /// plan) with `values` at the active positions and zeros elsewhere, of the values'
    /// kind and device; differentiable with respect to `values`.
    ///
    /// # Errors
    /// `values` not `[nnz]`.
    pub fn f_dense(&mut self, values: &Tensor) -> Result<Tensor> {
        self.check_values("compact plan", values)?;
        let [out, inp] = self.shape;
        let flat = self.flat_on(values.device())?;
        let w = values.f_new_zeros([self.blocks * out * inp], (values.kind(), values.device()))?.f_index_put(&[Some(flat)], values, false)?;
        Ok(w.f_view(self.dense_shape().as_slice())?)
    }

    /// [`CsrPlan::f_dense`] for values known to fit (the crate's own layers).
    ///
    /// # Panics
    /// `values` not `[nnz]`.
    pub fn dense(&mut self, values: &Tensor) -> Tensor {
        self.f_dense(values).unwrap_or_else(|e| panic!("{e}"))
    }

    /// dense: `[out, in]` (`[E, out, in]` for a block plan) -> its compact values
    /// `[nnz]`, the entries at the active positions.
    ///
    /// # Errors
    /// `dense` of another shape.
    pub fn f_gather(&mut self, dense: &Tensor) -> Result<Tensor> {
        let want = self.dense_shape();
        if dense.size() != want {
            return Err(Error::Shape(format!("compact plan: dense {:?} != {want:?}", dense.size())));
        }
        let flat = self.flat_on(dense.device())?;
        Ok(dense.f_reshape([-1])?.f_index_select(0, &flat)?)
    }

    /// [`CsrPlan::f_gather`] for matrices known to fit (the crate's own layers).
    ///
    /// # Panics
    /// `dense` of another shape.
    pub fn gather(&mut self, dense: &Tensor) -> Tensor {
        self.f_gather(dense).unwrap_or_else(|e| panic!("{e}"))
    }

    /// xs: `[B, in]` -> `[B, out]` with the compact `values` `[nnz]` as the weight (a
    /// block plan: `[B, E * in]` -> `[B, E * out]`, member `e` owning columns `e * in ..`).
    /// On the CPU (float32) this is the compact kernel; elsewhere the dense matrix is
    /// materialised and multiplied.
    ///
    /// # Errors
    /// `xs` not `[B, in]`, `values` not `[nnz]`, the two on different devices, or a
    /// kind the kernel does not take (float32 `values` with float32 `xs` on the CPU).
    pub fn linear(&mut self, xs: &Tensor, values: &Tensor) -> Result<Tensor> {
        self.check_values("sparse linear", values)?;
        let [out, inp] = self.shape;
        let size = xs.size();
        if size.len() != 2 || size[1] != self.blocks * inp {
            return Err(Error::Shape(format!("sparse linear: xs {size:?} != [batch, {}]", self.blocks * inp)));
        }
        if xs.device() != values.device() {
            return Err(Error::Shape(format!("sparse linear: values on {:?} != xs on {:?}", values.device(), xs.device())));
        }
        if xs.device() != Device::Cpu || xs.kind() != Kind::Float {
            let w = self.f_dense(values)?;
            if self.blocks == 1 {
                return xs.f_linear(&w, None::<Tensor>).map_err(Error::from);
            }
            let b = size[0];
            let y = xs.f_view([b, self.blocks, inp])?.f_transpose(0, 1)?.f_bmm(&w.f_transpose(1, 2)?)?;
            return Ok(y.f_transpose(0, 1)?.f_reshape([b, self.blocks * out])?);
        }
        let [fp, fs, fq, bp, bs, bq, _] = self.index_tensors();
        sparse_linear(xs, values, [fp, fs, fq, bp, bs, bq], self.blocks * out, self.blocks * inp, self.blocks)
    }
}

/// The C++ compact kernel `xs [B, cols] -> [B, rows]` (an autograd function) through
/// the six panel tensors of a plan; it checks every size it is given.
fn sparse_linear(xs: &Tensor, values: &Tensor, panels: [&Tensor; 6], rows: i64, cols: i64, blocks: i64) -> Result<Tensor> {
    let mut out: *mut c_void = std::ptr::null_mut();
    let plan = panels.map(|t| t.as_ptr() as *const c_void);
    // SAFETY: every pointer is a live tensor handle for the duration of the call; on
    // success `out` is a new handle that the returned Tensor owns and frees.
    unsafe {
        let err = sparselab_sparse_linear(&mut out, xs.as_ptr().cast(), values.as_ptr().cast(), plan.as_ptr(), rows, cols, blocks);
        if let Some(msg) = take_error(err) {
            return Err(Error::Shape(msg));
        }
        Ok(Tensor::from_ptr(out.cast()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(shape: &[i64]) -> Tensor {
        Tensor::ones(shape, (Kind::Float, Device::Cpu))
    }

    fn longs(v: &[i64]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn refused<T>(r: Result<T>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    /// A 2 x 3 plan with all 6 entries active: one panel each way, entries in CSR
    /// order (forward sources 0 1 2 0 1 2).
    fn full() -> CsrPlan {
        CsrPlan::from_mask(&ones(&[2, 3])).unwrap()
    }

    #[test]
    fn verification_names_the_index_a_corrupted_plan_gets_wrong() {
        assert!(full().verify().is_ok());
        let mut p = full();
        p.fwd.src = Tensor::from_slice(&[3i32, 1, 2, 0, 1, 2]);
        assert_eq!(refused(p.verify()), "compact plan: forward sources span 0..=3, outside 0..3");
        let mut p = full();
        p.fwd.perm = longs(&[0, 0, 2, 3, 4, 5]);
        assert_eq!(refused(p.verify()), "compact plan: forward permutation repeats an entry");
        let mut p = full();
        p.bwd.perm = longs(&[0, 1, 2, 3, 4, 6]);
        assert_eq!(refused(p.verify()), "compact plan: input-gradient permutation span 0..=6, outside 0..6");
        let mut p = full();
        p.bwd.ptr = p.bwd.ptr.narrow(0, 0, 3);
        assert_eq!(refused(p.verify()), "compact plan: input-gradient panels have 3 row pointers for 3 rows");
        let mut p = full();
        p.fwd.ptr = longs(&[0, 4, 5]);
        assert_eq!(refused(p.verify()), "compact plan: forward panel pointers run 0..5 (smallest step 1), expected 0..6 ascending");
        let mut p = full();
        p.rowptr = longs(&[0, 7, 6]);
        assert_eq!(refused(p.verify()), "compact plan: row pointers run 0..6 (smallest step -1), expected 0..6 ascending");
        let mut p = full();
        p.flat = longs(&[0, 1, 2, 3, 4, 6]);
        assert_eq!(refused(p.verify()), "compact plan: flat positions span 0..=6, outside 0..6");
        let mut p = full();
        p.fwd.src = Tensor::from_slice(&[0i32, 1, 2, 0, 1]);
        assert_eq!(refused(p.verify()), "compact plan: forward sources [5] != [6]");
    }

    /// The C++ entry point checks every size itself (behind CsrPlan::linear's checks).
    #[test]
    fn the_kernel_entry_point_refuses_sizes_that_do_not_fit() {
        let p = full();
        let [fp, fs, fq, bp, bs, bq, _] = p.index_tensors();
        let panels = [fp, fs, fq, bp, bs, bq];
        let (x, v) = (ones(&[4, 3]), ones(&[6]));
        assert!(sparse_linear(&x, &v, panels, 2, 3, 1).is_ok());
        assert_eq!(refused(sparse_linear(&x, &v, panels, 2, 3, 2)), "sparse linear: 2 x 3 is not 2 blocks of positive sizes");
        assert_eq!(refused(sparse_linear(&x, &v, panels, 0, 3, 1)), "sparse linear: 0 x 3 is not 1 blocks of positive sizes");
        assert_eq!(refused(sparse_linear(&x, &v, panels, 2, 4, 1)), "sparse linear: input has 3 features, layer expects 4");
        assert_eq!(refused(sparse_linear(&x, &ones(&[5]), panels, 2, 3, 1)), "sparse linear: values [5] != plan nnz 6");
        assert_eq!(refused(sparse_linear(&x.view([4, 3, 1]), &v, panels, 2, 3, 1)), "sparse linear: input must be [batch, in], got [4, 3, 1]");
        assert_eq!(refused(sparse_linear(&x, &v, panels, 4, 3, 1)), "sparse linear: forward panels: 3 row pointers for 4 rows");
        assert_eq!(refused(sparse_linear(&x, &v, [fp, fq, fq, bp, bs, bq], 2, 3, 1)), "sparse linear: forward panels must be contiguous 1-D CPU tensors (int64 ptr, int32 src, int64 perm)");
        let short = Tensor::from_slice(&[0i32, 1, 2, 0, 1]);
        assert_eq!(refused(sparse_linear(&x, &v, [fp, fs, fq, bp, &short, bq], 2, 3, 1)), "sparse linear: input-gradient panels: 5 sources and 6 positions for 6 values");
        let ptr = longs(&[0, 3, 5]);
        assert_eq!(refused(sparse_linear(&x, &v, [&ptr, fs, fq, bp, bs, bq], 2, 3, 1)), "sparse linear: forward panels: pointers run 0..5, expected 0..6");
    }
}
